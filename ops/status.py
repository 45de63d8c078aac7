"""The figures the status page and /metrics show, computed on demand.

A handful of small queries: generations by state (one GROUP BY), the latest
wallet snapshot, the heartbeats; plus the rate budget (a peek, which takes no
slot) and the broker's queue length from Redis.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from credits.models import WalletSnapshot
from generations.models import (
    IN_FLIGHT_STATES,
    ConceptJob,
    Conversion,
    Generation,
    State,
    needs_attention_count,
)
from generations.ratelimit import effective_limit, get_limiter

from .models import Heartbeat

log = logging.getLogger(__name__)

# kombu's Redis transport keeps one list per queue and priority step.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


def uses_redis_broker():
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def stale_after(name):
    """How old a heartbeat may be before we flag it: three missed runs, at least a minute."""
    if name == "dispatcher":
        return timedelta(seconds=max(60.0, 3 * settings.DISPATCH_INTERVAL))
    if name == "sweep":
        return timedelta(seconds=max(60.0, 3 * settings.SWEEP_INTERVAL))
    from .heartbeat import WORKER_BEAT_EVERY

    return timedelta(seconds=max(60.0, 4 * WORKER_BEAT_EVERY))


@dataclass
class Beat:
    name: str
    beat_at: datetime | None
    age: timedelta | None
    stale: bool

    @property
    def is_worker(self):
        return self.name.startswith("worker:")


@dataclass
class RateBudget:
    limit: int
    used: int
    next_slot_in: float  # seconds; 0 when a slot is free now
    blocked_until: datetime | None


@dataclass
class Status:
    now: datetime
    by_state: dict = field(default_factory=dict)  # state -> count (in flight + attention)
    oldest_by_state: dict = field(default_factory=dict)  # state -> created_at
    # Conversions, finishing steps and concept jobs waiting for a person.
    jobs_needing_attention: int = 0
    broker_queue: int | None = None
    rate: RateBudget | None = None
    wallet: WalletSnapshot | None = None
    beats: list = field(default_factory=list)

    @property
    def queued(self):
        return self.by_state.get(State.QUEUED, 0)

    @property
    def in_flight(self):
        return [(State(s).label, s, self.by_state.get(s, 0)) for s in IN_FLIGHT_STATES]

    @property
    def in_flight_total(self):
        return sum(self.by_state.get(s, 0) for s in IN_FLIGHT_STATES)

    @property
    def generations_needing_attention(self):
        return self.by_state.get(State.NEEDS_ATTENTION, 0)

    @property
    def needs_attention(self):
        """Everything the attention page lists: generations and the other upstream jobs."""
        return self.generations_needing_attention + self.jobs_needing_attention

    @property
    def oldest_waiting(self):
        """The creation time of the oldest generation still in flight."""
        times = [self.oldest_by_state[s] for s in IN_FLIGHT_STATES if s in self.oldest_by_state]
        return min(times) if times else None

    @property
    def oldest_waiting_age(self):
        oldest = self.oldest_waiting
        return (self.now - oldest) if oldest else None


def broker_queue_length():
    """Messages waiting in the broker's default queue, or None without a Redis broker."""
    if not uses_redis_broker():
        return None
    import redis

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    names = [queue] + [f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS]
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        return sum(pipe.execute())
    finally:
        client.close()


def rate_budget(now):
    limit = effective_limit()
    decision = get_limiter().peek()
    if decision.allowed:
        return RateBudget(limit, max(0, limit - decision.remaining), 0.0, None)
    # No slot now: either the window is full or a 429 told us to wait. Either way
    # nothing is sent upstream before this moment.
    return RateBudget(limit, limit, decision.wait, now + timedelta(seconds=decision.wait))


def heartbeats(now):
    beats = []
    for row in Heartbeat.objects.all():
        age = now - row.beat_at
        beats.append(Beat(row.name, row.beat_at, age, age > stale_after(row.name)))
    # The dispatcher and sweep are always listed: never having beaten is stale too.
    present = {b.name for b in beats}
    for name in ("dispatcher", "sweep"):
        if name not in present:
            beats.append(Beat(name, None, None, True))
    beats.sort(key=lambda b: (b.is_worker, b.name))
    return beats


def gather(now=None):
    """Everything at once; a part whose backend is down is left as None (and logged)."""
    now = now or timezone.now()
    status = Status(now=now)
    rows = (
        Generation.objects.filter(state__in=[*IN_FLIGHT_STATES, State.NEEDS_ATTENTION])
        .values("state")
        .annotate(n=Count("id"), oldest=Min("created_at"))
        .order_by()
    )
    for row in rows:
        status.by_state[row["state"]] = row["n"]
        status.oldest_by_state[row["state"]] = row["oldest"]
    status.jobs_needing_attention = needs_attention_count(kinds=(Conversion, ConceptJob))
    status.wallet = WalletSnapshot.objects.order_by("-fetched_at").first()
    status.beats = heartbeats(now)
    try:
        status.broker_queue = broker_queue_length()
    except Exception:  # noqa: BLE001 - the page must render with Redis down
        log.warning("broker queue length unavailable", exc_info=True)
    try:
        status.rate = rate_budget(now)
    except Exception:  # noqa: BLE001
        log.warning("rate budget unavailable", exc_info=True)
    return status
