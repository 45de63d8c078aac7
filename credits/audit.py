"""Credit events (price and budget changes, ledger adjustments, and an admin's resolution
of a conversion, finishing step or concept job that needed attention: its credits
charged, released or refunded) for the audit log.

The log lives in the reviews app, which listens to ``credit_event``: credits imports
nothing of it (reviews reads generations, which calls credits). Each event is also logged.
"""

import logging

from django.dispatch import Signal

log = logging.getLogger(__name__)

# Sent with ``actor``, ``action``, ``summary``, ``target`` and ``details``.
credit_event = Signal()


def record(actor, action, summary, target=None, details=None):
    log.info("%s by %s: %s", action, actor, summary)
    credit_event.send(
        sender=record, actor=actor, action=action, summary=summary, target=target, details=details
    )
