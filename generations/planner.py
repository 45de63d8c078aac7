"""When to poll: spend the upstream's few calls where they are most likely to find a result.

A generation cannot be seen before it finishes upstream, and each poll costs
one of R calls a minute. So the first poll waits for the expected duration of
that provider (learned from our own finished generations, the documented
typical duration until there is enough history), and later polls come at a
fraction of it, sooner when the upstream's progress says it is nearly done.
"""

import statistics
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

HISTORY = 50  # finished generations considered per provider
MIN_HISTORY = 5  # below this, the documented typical duration is used


def expected_duration(provider_key: str) -> float:
    """Seconds from submit to upstream done, typical for this provider (cached a minute)."""
    key = f"planner:expected:{provider_key}:{settings.PLANNER_DURATION_SCALE}"
    value = cache.get(key)
    if value is None:
        value = _expected_duration(provider_key)
        cache.set(key, value, 60)
    return value


def _expected_duration(provider_key: str) -> float:
    from .catalogue import PROVIDERS
    from .models import Generation, State

    rows = (
        Generation.objects.filter(
            provider=provider_key,
            state=State.FINISHED,
            submitted_at__isnull=False,
            upstream_done_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("submitted_at", "upstream_done_at")[:HISTORY]
    )
    durations = [(done - sub).total_seconds() for sub, done in rows if done > sub]
    if len(durations) >= MIN_HISTORY:
        return max(0.5, statistics.median(durations))
    return PROVIDERS[provider_key].typical_seconds * settings.PLANNER_DURATION_SCALE


def min_interval() -> float:
    return max(0.5, 2.0 * settings.PLANNER_DURATION_SCALE)


def first_poll_at(generation, now=None):
    now = now or timezone.now()
    return now + timedelta(seconds=expected_duration(generation.provider))


def next_poll_at(generation, progress, now=None):
    """The next poll after one that found the generation still running."""
    now = now or timezone.now()
    expected = expected_duration(generation.provider)
    interval = max(min_interval(), 0.08 * expected)
    if progress and 5 <= progress < 100 and generation.submitted_at:
        elapsed = (now - generation.submitted_at).total_seconds()
        remaining = elapsed * (100 - progress) / progress
        interval = max(min_interval(), min(interval * 3, remaining))
    return now + timedelta(seconds=interval)


def estimated_finish(generation, now=None):
    """When we expect to show the result (for the member's ETA), or None."""
    now = now or timezone.now()
    expected = expected_duration(generation.provider)
    if generation.submitted_at:
        eta = generation.submitted_at + timedelta(seconds=expected)
        if generation.progress and 5 <= generation.progress < 100:
            elapsed = (now - generation.submitted_at).total_seconds()
            eta = now + timedelta(
                seconds=elapsed * (100 - generation.progress) / generation.progress
            )
        return max(eta, now)
    return now + timedelta(seconds=expected)
