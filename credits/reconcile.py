"""Our ledger against the upstream wallet, between consecutive snapshots.

Between two wallet snapshots the wallet should move by exactly the credits our
ledger says the upstream took or gave back: charges (generations, concept jobs,
conversions and finishing steps) and refunds. Holds and releases never reach the
upstream, and adjustments correct our own accounting (budgets), not the wallet. Any
difference is drift, shown with the generations that could explain it, and the
concept jobs and conversions or finishing steps that could (``job_candidates``): a
drift is tied to a generation only when nothing else could explain it.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from generations.models import ConceptJob, Conversion, Generation, State
from generations.ratelimit import effective_limit
from generations.upstream import CODE_MESSAGES

from .models import DriftAttribution, DriftNarrowing, LedgerEntry, WalletSnapshot
from .spend import CONVERT, day_bounds, item_label, job_edition

WALLET_KINDS = [LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.REFUND]


@dataclass
class Interval:
    before: WalletSnapshot
    after: WalletSnapshot
    expected: int  # what our ledger says the wallet should have moved by
    candidates: list
    # Concept jobs and upstream conversions or finishing steps that may explain a drift.
    jobs: list = field(default_factory=list)

    @property
    def actual(self):
        return self.after.balance - self.before.balance

    @property
    def drift(self):
        return self.actual - Decimal(self.expected)

    @property
    def tied(self):
        """The drift attribution stored for this interval, if any (see ``record``)."""
        try:
            return self.after.attribution
        except DriftAttribution.DoesNotExist:
            return None

    @property
    def attributed(self):
        """The one generation a drift is tied to: the only candidate of its interval, when
        no concept job, conversion or finishing step could explain it either."""
        if self.drift and len(self.candidates) == 1 and not self.jobs:
            return self.candidates[0]
        return None


def intervals(limit=12):
    """The last ``limit`` intervals between snapshots, newest first.

    Query count: one for the snapshots, one for every interval's expected change,
    three per drifting interval for its candidates (``_explain``).
    """
    snapshots = list(
        WalletSnapshot.objects.select_related("attribution__generation").order_by(
            "-fetched_at", "-id"
        )[: limit + 1]
    )
    snapshots.reverse()
    pairs = list(zip(snapshots, snapshots[1:], strict=False))
    if not pairs:
        return []
    sums = {
        f"i{n}": Sum(
            "amount", filter=Q(created_at__gt=before.fetched_at, created_at__lte=after.fetched_at)
        )
        for n, (before, after) in enumerate(pairs)
    }
    totals = LedgerEntry.objects.filter(
        kind__in=WALLET_KINDS,
        created_at__gt=pairs[0][0].fetched_at,
        created_at__lte=pairs[-1][1].fetched_at,
    ).aggregate(**sums)
    out = []
    for n, (before, after) in enumerate(pairs):
        out.append(_explain(Interval(before, after, totals[f"i{n}"] or 0, [])))
    out.reverse()
    return out


def candidates(since, until, limit=50):
    """Generations that may explain a drift between ``since`` and ``until``: only
    what was charged inside the window.

    Those our ledger charged in the window, and those whose submit in the window
    has an unknown outcome (never marked submitted: the upstream may have charged
    without our knowing). A generation submitted before the window cannot have
    been charged inside it, whatever happened to it since.
    """
    charged = Q(
        ledger__kind=LedgerEntry.Kind.CHARGE,
        ledger__created_at__gt=since,
        ledger__created_at__lte=until,
    )
    unknown = Q(
        state=State.NEEDS_ATTENTION,
        submitted_at__isnull=True,
        state_changed_at__gt=since,
        state_changed_at__lte=until,
    )
    return list(
        Generation.objects.filter(charged | unknown)
        .select_related("owner")
        .distinct()
        .order_by("-id")[:limit]
    )


# A job in NEEDS_ATTENTION whose submit's outcome is unknown keeps no submit time: it was
# sent soon after it was asked for unless the queue was long, and a person was asked at
# once or by the next sweep. Asked for this long before an interval began (and not sent
# to a person within it), it is not taken as an explanation of the interval's drift.
UNKNOWN_SUBMIT_AGE = timedelta(days=1)


def job_candidates(since, until, limit=50):
    """Concept jobs and upstream conversions or finishing steps that may explain a drift
    between ``since`` and ``until``, as ``candidates`` for generations: those our ledger
    charged in the window, and those whose submit's outcome is unknown (a person is asked;
    never marked submitted, so never charged by us) asked for or sent to a person around
    the window. Each has ``what`` and ``who``: what it is in words, and whose credits."""
    charged = Q(
        ledger__kind=LedgerEntry.Kind.CHARGE,
        ledger__created_at__gt=since,
        ledger__created_at__lte=until,
    )
    unknown = Q(state=State.NEEDS_ATTENTION, upstream_task_id="") & (
        Q(created_at__gt=since - UNKNOWN_SUBMIT_AGE, created_at__lte=until)
        | Q(attention_since__gt=since, attention_since__lte=until)
    )
    concepts = list(
        ConceptJob.objects.filter(charged | unknown)
        .select_related("owner")
        .distinct()
        .order_by("-id")[:limit]
    )
    for job in concepts:
        job.what = f"concept job #{job.pk} on {item_label(job.image_model)}"
        job.who = job.owner.get_username()
    conversions = list(
        Conversion.objects.filter(Q(via=Conversion.Via.UPSTREAM) & (charged | unknown))
        .select_related("generation__owner")
        .distinct()
        .order_by("-id")[:limit]
    )
    for job in conversions:
        step = item_label(CONVERT, job_edition(job.kind, job.output_format))
        job.what = f"{step} of #{job.generation_id}"
        job.who = job.generation.owner.get_username()
    return concepts + conversions


def low_balance(snapshot):
    """True when the latest wallet balance is below ``LOW_BALANCE_WARNING``."""
    return snapshot is not None and snapshot.balance < settings.LOW_BALANCE_WARNING


def insufficient_credit_failures(days=30, limit=20):
    """Generations the upstream refused with 402 (insufficient credits) lately."""
    since = timezone.now() - timedelta(days=days)
    return list(
        Generation.objects.filter(state=State.FAILED, finished_at__gte=since)
        .filter(
            Q(failure_reason__icontains=CODE_MESSAGES["insufficient_credits"])
            | Q(failure_reason__icontains="insufficient credits")
            | Q(failure_reason__icontains="insufficient_credits")
        )
        .select_related("owner")
        .order_by("-finished_at")[:limit]
    )


# --- narrowing: tying a drift to its generation -------------------------------------------

# Bracketed submits a narrowing makes before it stops without a tie: each takes three
# calls of the shared budget (a minute of it at the default 3 a minute).
MAX_NARROWED_SUBMITS = 10
# A narrowed submit's calls: the wallet read before it, the submit, the read after it.
CALLS_PER_NARROWED_SUBMIT = 3


def open_narrowing():
    """The narrowing in progress, or None."""
    return DriftNarrowing.objects.filter(state=DriftNarrowing.State.OPEN).first()


def calls_per_submit(limit):
    """Calls of the rate budget one submit takes now: three while drift is being narrowed
    (``limit``, the calls a window allows, must hold them all), else one."""
    if limit >= CALLS_PER_NARROWED_SUBMIT and open_narrowing() is not None:
        return CALLS_PER_NARROWED_SUBMIT
    return 1


def record(balance, rate_limit, bracket="", generation=None, before=None):
    """Store one wallet read and examine the interval it closes.

    A read after a bracketed submit closes the bracket (``before`` is the read just
    before that submit); any other read closes the interval since the newest read.
    """
    snapshot = WalletSnapshot.objects.create(
        balance=balance, rate_limit=rate_limit, bracket=bracket, bracket_generation=generation
    )
    if bracket == WalletSnapshot.Bracket.AFTER and before is not None:
        _close_bracket(before, snapshot, generation)
    else:
        previous = (
            WalletSnapshot.objects.filter(
                Q(fetched_at__lt=snapshot.fetched_at)
                | Q(fetched_at=snapshot.fetched_at, pk__lt=snapshot.pk)
            )
            .order_by("-fetched_at", "-id")
            .first()
        )
        if previous is not None:
            _examine(_interval(previous, snapshot))
    return snapshot


def _interval(before, after):
    expected = LedgerEntry.objects.filter(
        kind__in=WALLET_KINDS, created_at__gt=before.fetched_at, created_at__lte=after.fetched_at
    ).balance()
    return _explain(Interval(before, after, expected, []))


def _explain(interval):
    """``interval`` with what may explain its drift, if it has one."""
    if interval.drift:
        since, until = interval.before.fetched_at, interval.after.fetched_at
        interval.candidates = candidates(since, until)
        interval.jobs = job_candidates(since, until)
    return interval


def _tie(interval):
    """The generation a drifting interval is tied to, or None.

    Its only candidate, and only when no other credits moved in the interval: a refund
    (or another charge) lands in our ledger when we see it, which may be well after the
    upstream moved the wallet, so a window that holds one cannot be read as one charge.
    Nor when a concept job, conversion or finishing step may explain it (``attributed``):
    one whose submit's outcome is unknown moved no credits in our ledger, but may have
    in the wallet.
    """
    only = interval.attributed
    if only is None:
        return None
    others = LedgerEntry.objects.filter(
        kind__in=WALLET_KINDS,
        created_at__gt=interval.before.fetched_at,
        created_at__lte=interval.after.fetched_at,
    ).exclude(generation=only)
    return None if others.exists() else only


def _attribute(interval, generation, method):
    try:
        with transaction.atomic():
            return DriftAttribution.objects.create(
                generation=generation,
                amount=interval.drift,
                before=interval.before,
                after=interval.after,
                method=method,
            )
    except IntegrityError:  # the interval was tied already
        return None


def _examine(interval):
    """Tie a drifting interval to its generation, or open a narrowing when it has several
    candidates (none: no submit of ours to narrow, something else moved the wallet)."""
    if not interval.drift:
        return
    generation = _tie(interval)
    if generation is not None:
        _attribute(interval, generation, DriftAttribution.Method.ONLY_CHARGE)
    elif interval.candidates:
        try:
            with transaction.atomic():
                DriftNarrowing.objects.create(
                    drift=interval.drift,
                    since=interval.before,
                    until=interval.after,
                    candidates=len(interval.candidates),
                )
        except IntegrityError:
            pass  # one is open already: it goes on


def _close_bracket(before, after, generation):
    """The two reads around one submit: tie their drift to it, and count the submit
    against the open narrowing, which ends at a tie or after MAX_NARROWED_SUBMITS."""
    interval = _interval(before, after)
    tied = _tie(interval) if interval.drift else None
    with transaction.atomic():
        attribution = None
        if tied is not None:
            # Another generation's charge alone in the bracket: a submit that went
            # unbracketed (sent as the narrowing opened); still the only explanation.
            bracketed = generation is not None and tied.pk == generation.pk
            method = (
                DriftAttribution.Method.NARROWED
                if bracketed
                else DriftAttribution.Method.ONLY_CHARGE
            )
            attribution = _attribute(interval, tied, method)
        narrowing = (
            DriftNarrowing.objects.select_for_update()
            .filter(state=DriftNarrowing.State.OPEN)
            .first()
        )
        if narrowing is None:
            return attribution
        narrowing.submits += 1
        if attribution is not None:
            narrowing.state = DriftNarrowing.State.TIED
            narrowing.attribution = attribution
        elif narrowing.submits >= MAX_NARROWED_SUBMITS:
            narrowing.state = DriftNarrowing.State.GAVE_UP
        if narrowing.state != DriftNarrowing.State.OPEN:
            narrowing.ended_at = timezone.now()
        narrowing.save()
    return attribution


def attributions(limit=20):
    """The newest drifts tied to a generation, for the wallet page."""
    return list(
        DriftAttribution.objects.select_related("generation__owner", "before", "after")[:limit]
    )


def attributed_between(start, end, user=None, provider=""):
    """Drifts tied to a generation whose interval ended within the days [start, end]
    (of ``user``'s generations, on ``provider``, as the spend review is filtered)."""
    since, until = day_bounds(start, end)
    drifts = DriftAttribution.objects.filter(
        after__fetched_at__gte=since, after__fetched_at__lt=until
    )
    if user is not None:
        drifts = drifts.filter(generation__owner=user)
    if provider:
        drifts = drifts.filter(generation__provider=provider)
    return list(
        drifts.select_related("generation__owner", "before", "after").order_by(
            "after__fetched_at", "id"
        )
    )


@dataclass
class NarrowingCost:
    """What narrowing costs at the key's rate limit: every submit takes three calls."""

    limit: int  # calls the upstream allows a window
    window: int  # seconds
    calls: int = CALLS_PER_NARROWED_SUBMIT

    @property
    def possible(self):
        return self.limit >= self.calls

    @property
    def submits(self):
        """Submits a window while narrowing (``limit`` when it is off)."""
        return self.limit // self.calls

    @property
    def most_calls(self):
        return MAX_NARROWED_SUBMITS * self.calls


def narrowing_cost(latest=None):
    """The cost at the limit we count by (an override, else the one the wallet told us)."""
    try:
        limit = effective_limit()
    except Exception:  # the limiter's store is away: the last limit the wallet named
        limit = (latest and latest.rate_limit) or settings.UPSTREAM_RATE_LIMIT
    return NarrowingCost(int(limit), int(settings.UPSTREAM_RATE_WINDOW))


def last_narrowing():
    """The newest narrowing (open or ended), with what it found."""
    return (
        DriftNarrowing.objects.select_related("since", "until", "attribution__generation")
        .order_by("-started_at", "-id")
        .first()
    )
