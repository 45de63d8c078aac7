"""Role changes are audited wherever they happen (admin, shell, code): m2m_changed on groups;
and resolutions of generations that needed attention (generations.signals)."""

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from credits.audit import credit_event
from generations.signals import generation_resolved

from . import audit

User = get_user_model()


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="reviews_audit_role_changes")
def audit_role_change(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action == "pre_clear":
        # Clearing sends no pk_set: remember what is about to go.
        if reverse:
            instance._audit_cleared = list(instance.user_set.all())
        else:
            instance._audit_cleared = list(instance.groups.all())
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    verb = "added to" if action == "post_add" else "removed from"
    if action == "post_clear":
        others = getattr(instance, "_audit_cleared", [])
    else:
        others = list(model.objects.filter(pk__in=pk_set or ()))
    pairs = [(other, instance) if reverse else (instance, other) for other in others]
    for user, group in pairs:
        audit.record(
            None,
            "role.added" if action == "post_add" else "role.removed",
            f"{user.get_username()} {verb} {group.name}",
            target=user,
            details={"group": group.name},
        )


@receiver(generation_resolved, dispatch_uid="reviews_audit_resolutions")
def audit_resolution(sender, request, action, generation, details, **kwargs):
    """An admin's resolution of a generation that needed attention, in the audit log."""
    audit.record(
        request.user, action, f"Generation #{generation.pk}: {action}", generation, details
    )


@receiver(credit_event, dispatch_uid="reviews_audit_credit_events")
def audit_credit_event(sender, actor, action, summary, target, details, **kwargs):
    """Price and budget changes and ledger adjustments, in the audit log."""
    audit.record(actor, action, summary, target=target, details=details)
