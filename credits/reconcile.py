"""Our ledger against the upstream wallet, between consecutive snapshots.

Between two wallet snapshots the wallet should move by exactly the credits our
ledger says the upstream took or gave back: charges (generations and convert
tool) and refunds. Holds and releases never reach the upstream, and
adjustments correct our own accounting (budgets), not the wallet. Any
difference is drift, shown with the generations that could explain it.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from generations.models import Generation, State
from generations.upstream import CODE_MESSAGES

from .models import LedgerEntry, WalletSnapshot

WALLET_KINDS = [LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.REFUND]


@dataclass
class Interval:
    before: WalletSnapshot
    after: WalletSnapshot
    expected: int  # what our ledger says the wallet should have moved by
    candidates: list

    @property
    def actual(self):
        return self.after.balance - self.before.balance

    @property
    def drift(self):
        return self.actual - Decimal(self.expected)

    @property
    def attributed(self):
        """The one generation a drift is tied to: the only candidate of its interval."""
        return self.candidates[0] if self.drift and len(self.candidates) == 1 else None


def intervals(limit=12):
    """The last ``limit`` intervals between snapshots, newest first.

    Query count: one for the snapshots, one for every interval's expected change,
    one per drifting interval for its candidates.
    """
    snapshots = list(WalletSnapshot.objects.order_by("-fetched_at", "-id")[: limit + 1])
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
        interval = Interval(before, after, totals[f"i{n}"] or 0, [])
        if interval.drift:
            interval.candidates = candidates(before.fetched_at, after.fetched_at)
        out.append(interval)
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
