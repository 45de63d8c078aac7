"""Whose submit goes next when submits wait for the rate budget.

A member's place in the queue and their start estimate are read from here, so
what the pages and the API say is the order the dispatcher keeps.
"""

from datetime import timedelta

from django.utils import timezone

from .models import POLLING_STATES, Generation, State


def queue_position(generation):
    """1 for the next generation to be submitted; None once it is no longer queued."""
    if generation.state != State.QUEUED:
        return None
    ahead = Generation.objects.filter(state=State.QUEUED, created_at__lt=generation.created_at)
    return ahead.count() + 1


def estimated_start(generation, now=None):
    """When a queued generation should be sent: after the submits ahead of it and
    about one poll for each generation in flight, at the rate budget's pace."""
    from . import ratelimit

    position = queue_position(generation)
    if position is None:
        return None
    now = now or timezone.now()
    calls = position - 1 + Generation.objects.filter(state__in=POLLING_STATES).count()
    limit = ratelimit.effective_limit()
    # Calls beyond the free slots of this window wait for later windows.
    wait = max(0, calls + 1 - limit) / limit * ratelimit.window()
    return now + timedelta(seconds=wait)
