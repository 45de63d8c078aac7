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

Concept jobs and upstream conversions and finishing steps spend the same rate budget:
their submits count among a member's recent submits (by their charges in the ledger),
so a member who spent the budget on images does not also get the next generation turn
ahead of a teammate. ``next_jobs`` orders the due submits of every kind in one queue
by the same rule, for a dispatcher that submits them all from it.
"""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from credits.models import LedgerEntry

from .models import ConceptJob, Conversion, Generation, State

RECENT_WINDOWS = 5
# Queued rows read to order them; beyond it, the newest wait for the next dispatch.
MAX_ORDERED = 5000
# A submit counts as recent by its submit time; the scan stays on the owner's recent
# rows (generation_owner_recent_idx): one queued for longer than this is not counted.
MAX_QUEUE_AGE = timedelta(days=1)


def recent_submits(owners, now=None):
    """{owner id: submits in the last RECENT_WINDOWS rate windows} for ``owners``: their
    generations', and their concept jobs' and upstream conversions' and finishing steps'."""
    from . import ratelimit

    now = now or timezone.now()
    owners = list(owners)
    since = now - timedelta(seconds=RECENT_WINDOWS * ratelimit.window())
    generations = (
        Generation.objects.filter(
            owner_id__in=owners,
            created_at__gte=since - MAX_QUEUE_AGE,
            submitted_at__gte=since,
        )
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {row["owner_id"]: row["n"] for row in generations}
    # The other jobs keep no submit time: each accepted submit is one charge in the ledger,
    # made with the transition (mark_submitted), to the member whose credits it spends.
    # A generation's charge has its generation: counted above. (credits_ledger_created_idx)
    jobs = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.CHARGE,
            generation=None,
            user_id__in=owners,
            created_at__gte=since,
        )
        .values("user_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in jobs:
        counts[row["user_id"]] = counts.get(row["user_id"], 0) + row["n"]
    return counts


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


# The kinds of upstream job whose submits wait in one queue, and how to read them:
# (QUEUED rows due for a submit, the owner whose turn it is). A conversion's turn is its
# source's owner's: the one its charge spends (Conversion._ledger).
JOB_KINDS = {
    "generation": (lambda: Generation.objects.all(), "owner_id"),
    "concept": (lambda: ConceptJob.objects.all(), "owner_id"),
    "conversion": (
        lambda: Conversion.objects.filter(via=Conversion.Via.UPSTREAM),
        "generation__owner_id",
    ),
}


def next_jobs(now, budget, generation_calls=1):
    """The due submits of every kind, [(kind, row)], in fair turns across kinds, as many as
    ``budget`` calls hold (a generation's submit takes ``generation_calls``: three while
    drift is narrowed, reconcile.calls_per_submit; any other one call).

    One queue for generations, concept jobs and upstream conversions and finishing steps:
    a member's turn counts all their recent submits (``recent_submits``) and their place
    among all their waiting jobs in arrival order, so a teammate's one concept job queued
    behind a 60-item batch waits for one submit of it, as a generation would. When the
    next turn's submit does not fit in what is left, nothing after it jumps it.
    """
    waiting = []
    for kind, (rows, owner) in JOB_KINDS.items():
        due = rows().filter(state=State.QUEUED, due_at__lte=now).order_by("created_at", "id")
        waiting += [
            ((kind, pk), owner_id, created_at)
            for pk, owner_id, created_at in due.values_list("pk", owner, "created_at")[:MAX_ORDERED]
        ]
    waiting.sort(key=lambda row: (row[2], row[0]))  # arrival order across the kinds
    order = in_turn(waiting, recent_submits({owner for _key, owner, _c in waiting}, now))
    picked, calls = [], 0
    for kind, pk in order:
        calls += generation_calls if kind == "generation" else 1
        if calls > budget:
            break
        picked.append((kind, pk))
    rows = {
        kind: JOB_KINDS[kind][0]().in_bulk([pk for k, pk in picked if k == kind])
        for kind in JOB_KINDS
    }
    return [(kind, rows[kind][pk]) for kind, pk in picked if pk in rows[kind]]


def others_waiting(job, now=None):
    """Whether other jobs of any kind (JOB_KINDS) are due and waiting for a submit: then a
    doorbell (a generation's, a concept job's or a step's) does not jump them, and leaves
    the order to the dispatcher."""
    now = now or timezone.now()
    return any(
        rows()
        .filter(state=State.QUEUED, due_at__lte=now)
        .exclude(pk=job.pk if rows().model is type(job) else None)
        .exists()
        for rows, _owner in JOB_KINDS.values()
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
