"""Fair turns: whose submit goes next when submits wait for the rate budget.

The next submit goes to the member who has had the fewest submits recently, and
within a member in arrival order: a generation's turn is its owner's submits in
the last ``RECENT_WINDOWS`` rate windows plus its place among its owner's queued
generations, and the smallest turn goes first (the earlier arrival on a tie). So a
teammate's one generation queued behind a 60-item batch waits for one submit of
the batch at most, never for the batch: a batch never takes more than its owner's
turn. Polls keep their priority (the dispatcher spends the budget on them first).

The dispatcher takes submits in this order, and a member's queue position and
start estimate are read from it, so what the pages and the API say is what happens.
"""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from .models import Generation, State

RECENT_WINDOWS = 5
# Queued rows read to order them; beyond it, the newest wait for the next dispatch.
MAX_ORDERED = 5000
# A submit counts as recent by its submit time; the scan stays on the owner's recent
# rows (generation_owner_recent_idx): one queued for longer than this is not counted.
MAX_QUEUE_AGE = timedelta(days=1)


def recent_submits(owners, now=None):
    """{owner id: submits in the last RECENT_WINDOWS rate windows} for ``owners``."""
    from . import ratelimit

    now = now or timezone.now()
    since = now - timedelta(seconds=RECENT_WINDOWS * ratelimit.window())
    rows = (
        Generation.objects.filter(
            owner_id__in=list(owners),
            created_at__gte=since - MAX_QUEUE_AGE,
            submitted_at__gte=since,
        )
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["owner_id"]: row["n"] for row in rows}


def in_turn(rows, recent):
    """``rows`` ((id, owner id, created_at) in arrival order) in the order of their turns."""
    places = defaultdict(int)
    keyed = []
    for pk, owner, created_at in rows:
        places[owner] += 1
        keyed.append((recent.get(owner, 0) + places[owner], created_at, pk))
    keyed.sort()
    return [pk for _turn, _created_at, pk in keyed]


def fair_queue(queryset, now=None):
    """The ids of ``queryset``'s QUEUED generations in the order of their turns."""
    rows = list(
        queryset.filter(state=State.QUEUED)
        .order_by("created_at", "id")
        .values_list("pk", "owner_id", "created_at")[:MAX_ORDERED]
    )
    return in_turn(rows, recent_submits({owner for _pk, owner, _c in rows}, now))


def next_submits(now, limit):
    """The due QUEUED generations the dispatcher should submit now, at most ``limit``."""
    if limit <= 0:
        return []
    order = fair_queue(Generation.objects.filter(due_at__lte=now), now)[:limit]
    rows = Generation.objects.in_bulk(order)
    return [rows[pk] for pk in order if pk in rows]


def others_waiting(generation, now=None):
    """Whether other generations are due and waiting for a submit: then a doorbell does not
    jump them, and leaves the order to the dispatcher."""
    now = now or timezone.now()
    return (
        Generation.objects.filter(state=State.QUEUED, due_at__lte=now)
        .exclude(pk=generation.pk)
        .exists()
    )


def queue_position(generation, now=None):
    """1 for the next generation to be submitted; None once it is no longer queued."""
    if generation.state != State.QUEUED:
        return None
    order = fair_queue(Generation.objects.all(), now)
    try:
        return order.index(generation.pk) + 1
    except ValueError:  # beyond MAX_ORDERED
        return len(order) + 1
