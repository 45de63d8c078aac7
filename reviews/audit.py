"""The audit log's one entry point: ``record(actor, action, summary, target, details)``.

Other parts of the dashboard call it for budget changes, price changes and
needs-attention resolutions; this app calls it for review decisions and role
changes. ``actor`` may be None (the system, a task) or a user; when None, the
person behind the current web request (see ``middleware``) is used, if any.
"""

import contextvars

_request_actor = contextvars.ContextVar("audit_request_actor", default=None)


def record(actor, action, summary, target=None, details=None):
    from .models import AuditLog

    if actor is None:
        actor = _request_actor.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    entry = AuditLog(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action[:60],
        summary=summary[:300],
        details=details or {},
    )
    if target is not None:
        entry.target_type = target._meta.label_lower
        entry.target_id = str(target.pk)
        entry.target_repr = str(target)[:200]
    entry.save()
    return entry


def set_request_actor(user):
    """Remember who is acting in this request/context; returns a token for ``reset``."""
    return _request_actor.set(user)


def reset_request_actor(token):
    _request_actor.reset(token)
