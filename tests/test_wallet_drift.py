"""Wallet drift names only what was charged inside its interval (issue 16, item 9).

Built from a fixed day, so no test depends on the calendar.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from credits import reconcile
from credits.models import LedgerEntry, WalletSnapshot
from generations.models import State
from tests.test_credits_views import make_generation as generation

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes):
    return DAY + timedelta(minutes=minutes)


def snapshot(balance, minute):
    return WalletSnapshot.objects.create(balance=Decimal(balance), fetched_at=at(minute))


def ledger(generation, kind, amount, minute):
    LedgerEntry.objects.create(
        kind=kind,
        user=generation.owner,
        generation=generation,
        amount=amount,
        provider="hunyuan_rapid",
        created_at=at(minute),
    )


def test_only_generations_charged_inside_the_interval_are_candidates(member):
    snapshot("1000.00", 0)
    # Submitted and charged before the interval; what happened to them since
    # (a refund, a refused result, a failure) moves no charge inside it.
    refunded = generation(member, state=State.FAILED, finished_at=at(15))
    ledger(refunded, "charge", -35, -20)
    ledger(refunded, "refund", 35, 15)
    refused = generation(
        member, state=State.NEEDS_ATTENTION, state_changed_at=at(12), submitted_at=at(-30)
    )
    ledger(refused, "charge", -35, -30)
    failed = generation(member, state=State.FAILED, finished_at=at(14))
    # Inside: two charged, and one whose submit outcome is unknown.
    first = generation(member, state=State.FINISHED, submitted_at=at(5))
    ledger(first, "charge", -35, 5)
    second = generation(member, state=State.FINISHED, submitted_at=at(8))
    ledger(second, "charge", -35, 8)
    unknown = generation(member, state=State.NEEDS_ATTENTION, state_changed_at=at(10))
    snapshot("860.00", 20)  # 35 + 35 charged, 35 refunded: expected -35, actual -140
    (interval,) = reconcile.intervals()
    assert interval.drift == Decimal("-105.00")
    assert {g.pk for g in interval.candidates} == {first.pk, second.pk, unknown.pk}
    assert not {refunded.pk, refused.pk, failed.pk} & {g.pk for g in interval.candidates}
    assert interval.attributed is None


def test_a_drifting_interval_with_one_charge_is_tied_to_that_generation(member):
    snapshot("1000.00", 0)
    only = generation(member, state=State.FINISHED, submitted_at=at(5))
    ledger(only, "charge", -35, 5)
    snapshot("930.00", 6)  # charged 35 more than its price
    (interval,) = reconcile.intervals()
    assert interval.drift == Decimal("-35.00")
    assert interval.attributed == only
