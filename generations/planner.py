"""When to poll: spend the upstream's few calls where they find results.

The upstream allows R calls a window, shared by submits and polls, and a
generation cannot be seen before it finishes upstream. So:

- Each provider has a duration profile (10th, 50th and 90th percentile of
  submit-to-done), learned from our own finished generations where the finish
  was observed precisely (see Generation._observed_duration); until there are
  enough, the documented typical duration (10th percentile at 60%, 90th at 125%).
- When calls are scarce (submits are waiting for budget), the first poll comes
  at the 90th percentile: one poll nearly always finds the result, so a
  generation costs about two calls (submit + poll) and the queue drains at
  the rate limit.
- When calls are plentiful, the first poll comes early (10th percentile); its
  progress figure predicts the finish, and the next poll lands there, so the
  member sees the result moments after it is done.
- After a poll that found it still running, the next one goes where the
  upstream's progress says it will finish (progress rises with time), never
  sooner than a small minimum interval.

``PLANNER_MODE=fixed`` polls every ``FIXED_POLL_INTERVAL`` seconds instead: the
naive baseline the pipeline benchmark compares against.
"""

import statistics
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

HISTORY = 50  # finished generations considered per provider
MIN_HISTORY = 5  # below this, the documented typical duration is used
FINISH_MARGIN = 1.03  # land a predicted-finish poll just after the prediction


@dataclass(frozen=True)
class Profile:
    p10: float
    p50: float
    p90: float


def duration_profile(provider_key: str) -> Profile:
    """Seconds from submit to upstream done for this provider (cached a minute, and kept
    by each process for ``LOCAL_SECONDS`` more: the polled status card asks for it on
    every request)."""
    key = f"planner:profile:{provider_key}:{settings.PLANNER_DURATION_SCALE}"
    now = time.monotonic()
    kept = _kept.get(key)
    if kept is not None and kept[1] > now:
        return kept[0]
    value = cache.get(key)
    if value is None:
        value = _duration_profile(provider_key)
        cache.set(key, value, 60)
    # One entry per provider and scale: a handful, so nothing is ever evicted. A plain
    # dict is enough across threads: each assignment replaces one entry whole.
    _kept[key] = (value, now + LOCAL_SECONDS)
    return value


LOCAL_SECONDS = 10.0
# key -> (profile, monotonic time it expires)
_kept = {}


def forget_profiles():
    """Drop the profiles this process keeps (the shared cache is cleared apart)."""
    _kept.clear()


def _duration_profile(provider_key: str) -> Profile:
    from .catalogue import PROVIDERS
    from .models import Generation, State

    # Only precise observations: a poll that found it done says little about when
    # it finished, and learning from late looks would make us look later still.
    durations = sorted(
        Generation.objects.filter(
            provider=provider_key, state=State.FINISHED, observed_duration__isnull=False
        )
        .order_by("-finished_at")
        .values_list("observed_duration", flat=True)[:HISTORY]
    )
    if len(durations) >= MIN_HISTORY:
        deciles = statistics.quantiles(durations, n=10, method="inclusive")
        return Profile(p10=deciles[0], p50=statistics.median(durations), p90=deciles[-1])
    spec = PROVIDERS.get(provider_key)
    typical = (spec.typical_seconds if spec else 120.0) * settings.PLANNER_DURATION_SCALE
    # Wide on the early side: without history, a first poll that comes too late
    # costs the member time, one that comes early costs one call.
    return Profile(p10=typical * 0.6, p50=typical, p90=typical * 1.25)


def expected_duration(provider_key: str) -> float:
    return duration_profile(provider_key).p50


def min_interval() -> float:
    return max(0.1, 2.0 * settings.PLANNER_DURATION_SCALE)


def calls_are_scarce() -> bool:
    """Submits are waiting for the rate budget: every call should find something.

    Any QUEUED generation counts, whatever its due time: one that the budget
    turned away waits with its due time set to when a slot frees, and one just
    created waits for its doorbell with a due time some seconds ahead (only a
    fallback). Counting only the overdue ones made a saturated queue look idle
    right after each burst of submits, so first polls came early and wasted calls.
    """
    from .models import Generation, State

    return Generation.objects.filter(state=State.QUEUED).exists()


def _fixed():
    return settings.PLANNER_MODE == "fixed"


def first_poll_at(generation, now=None):
    now = now or timezone.now()
    if _fixed():
        return now + timedelta(seconds=settings.FIXED_POLL_INTERVAL)
    profile = duration_profile(generation.provider)
    wait = profile.p90 if calls_are_scarce() else profile.p10
    return now + timedelta(seconds=max(min_interval(), wait))


def next_poll_at(generation, progress, now=None):
    """The next poll after one that found the generation still running."""
    now = now or timezone.now()
    if _fixed():
        return now + timedelta(seconds=settings.FIXED_POLL_INTERVAL)
    profile = duration_profile(generation.provider)
    remaining = _remaining(generation, progress, now, profile)
    if remaining:
        wait = remaining * FINISH_MARGIN  # where it should be done
    elif calls_are_scarce():
        wait = 0.15 * profile.p50  # cannot tell: wait a good stretch
    else:
        wait = 0.05 * profile.p50  # calls to spare: look again soon
    return now + timedelta(seconds=max(min_interval(), wait))


def _remaining(generation, progress, now, profile):
    """Seconds until the upstream should be done, from its progress or our profile."""
    if not generation.submitted_at:
        return None
    elapsed = (now - generation.submitted_at).total_seconds()
    if progress and 5 <= progress < 100:
        return elapsed * (100 - progress) / progress
    left = profile.p50 - elapsed
    return left if left > 0 else None


def estimated_start(generation, now=None, position=None, polling=None):
    """When a queued generation should be sent: after the submits ahead of it in fair
    turns (turns.py) and about one poll for each generation in flight, at the rate
    budget's pace. A page estimating many at once passes each one's queue ``position``
    and the number ``polling``, read once."""
    from . import ratelimit, turns
    from .models import POLLING_STATES, Generation, State

    now = now or timezone.now()
    if generation.state != State.QUEUED:
        return None
    ahead = (position or turns.queue_position(generation, now)) - 1
    if polling is None:
        polling = Generation.objects.filter(state__in=POLLING_STATES).count()
    calls = ahead + polling
    limit = ratelimit.effective_limit()
    # Calls beyond the free slots of this window wait for later windows.
    wait = max(0, calls + 1 - limit) / limit * ratelimit.window()
    return now + timedelta(seconds=wait)


def estimated_finish(generation, now=None, **place):
    """When we expect to show the result (the member's ETA); ``place`` as for
    ``estimated_start``."""
    now = now or timezone.now()
    profile = duration_profile(generation.provider)
    if generation.submitted_at:
        remaining = _remaining(generation, generation.progress, now, profile)
        return now + timedelta(seconds=remaining or min_interval())
    start = estimated_start(generation, now, **place) or now
    return start + timedelta(seconds=profile.p50)
