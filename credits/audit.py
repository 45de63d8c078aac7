"""Hand credit events to the audit log, when the project has one.

``reviews.audit`` is built by another part of the project; until it exists,
changes to prices and budgets and ledger adjustments are still logged here.
It is imported at call time so that this app works with or without it.
"""

import logging

log = logging.getLogger(__name__)


def record(actor, action, summary, target=None, details=None):
    log.info("%s by %s: %s", action, actor, summary)
    try:
        from reviews.audit import record as audit_record
    except ModuleNotFoundError as exc:
        if exc.name in ("reviews", "reviews.audit"):
            return
        raise  # the module exists but is broken: say so rather than lose the record
    audit_record(actor, action, summary, target=target, details=details)
