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


# --- concept jobs, conversions and finishing steps ------------------------------------------


def concept_job(owner, minute, **fields):
    from generations.models import ConceptJob

    return ConceptJob.objects.create(
        owner=owner,
        image_model="gemini_3_pro",
        prompt="a ceramic fox",
        count=2,
        credit_estimate=100,
        created_at=at(minute),
        **fields,
    )


def step(owner, minute, kind="remesh", **fields):
    from generations.models import Conversion

    source = generation(owner, state=State.FINISHED, submitted_at=at(minute - 30))
    return Conversion.objects.create(
        generation=source,
        requested_by=owner,
        kind=kind,
        output_format="glb",
        via=Conversion.Via.UPSTREAM,
        credit_estimate=20,
        **{"created_at": at(minute), **fields},
    )


def test_a_concept_job_whose_submit_is_unknown_keeps_the_drift_from_a_generation(member):
    snapshot("1000.00", 0)
    charged = generation(member, state=State.FINISHED, submitted_at=at(5))
    ledger(charged, "charge", -35, 5)
    # Sent at 3 and never heard of again: our ledger holds its price, charges nothing.
    unknown = concept_job(member, 3, state=State.NEEDS_ATTENTION)
    answered = concept_job(member, 4, state=State.NEEDS_ATTENTION, upstream_task_id="t-1")
    stale = concept_job(member, -2 * 24 * 60, state=State.NEEDS_ATTENTION)  # two days before
    # Queued for two days, sent and lost at 6: a person was asked inside the interval.
    queued_long = concept_job(
        member, -2 * 24 * 60, state=State.NEEDS_ATTENTION, attention_since=at(6)
    )
    snapshot("865.00", 10)  # the upstream took the image job's 100 too
    (interval,) = reconcile.intervals()
    assert interval.drift == Decimal("-100.00")
    assert [g.pk for g in interval.candidates] == [charged.pk]
    assert [job.pk for job in interval.jobs] == [queued_long.pk, unknown.pk]
    assert interval.jobs[1].what == f"concept job #{unknown.pk} on Gemini 3 Pro (concept images)"
    assert interval.attributed is None  # never tied to the generation
    assert {answered.pk, stale.pk}.isdisjoint(
        job.pk for job in interval.jobs if type(job) is type(unknown)
    )


def test_charged_concept_jobs_and_steps_are_named_with_a_drift(member):
    snapshot("1000.00", 0)
    concept = concept_job(member, 1, state=State.PENDING, upstream_task_id="t-2")
    LedgerEntry.objects.create(
        kind="charge",
        user=member,
        amount=-100,
        provider="gemini_3_pro",
        concept_job=concept,
        note=f"concept job {concept.pk}: image task t-2",
        created_at=at(2),
    )
    remesh = step(member, 2, state=State.PENDING, upstream_task_id="t-3")
    LedgerEntry.objects.create(
        kind="charge",
        user=member,
        conversion=remesh,
        amount=-20,
        provider="convert",
        created_at=at(3),
    )
    lost = step(member, 4, kind="texture", state=State.NEEDS_ATTENTION)
    earlier = concept_job(member, -5, state=State.FINISHED, upstream_task_id="t-0")
    snapshot("860.00", 10)  # 120 charged; the wallet lost 140
    (interval,) = reconcile.intervals()
    assert interval.expected == -120  # their charges are in the ledger's figure
    assert interval.drift == Decimal("-20.00")
    assert interval.candidates == []
    assert {(type(job).__name__, job.pk, job.what, job.who) for job in interval.jobs} == {
        (
            "ConceptJob",
            concept.pk,
            f"concept job #{concept.pk} on Gemini 3 Pro (concept images)",
            "member",
        ),
        ("Conversion", remesh.pk, f"Remesh of #{remesh.generation_id}", "member"),
        ("Conversion", lost.pk, f"Texture edit of #{lost.generation_id}", "member"),
    }
    assert earlier.pk not in {job.pk for job in interval.jobs if type(job) is type(earlier)}


def test_matching_jobs_make_no_drift_and_no_candidates(member):
    snapshot("1000.00", 0)
    remesh = step(member, 2, state=State.PENDING, upstream_task_id="t-3")
    LedgerEntry.objects.create(
        kind="charge", user=member, conversion=remesh, amount=-20, provider="convert",
        created_at=at(3),
    )  # fmt: skip
    snapshot("980.00", 10)
    (interval,) = reconcile.intervals()
    assert (interval.drift, interval.candidates, interval.jobs) == (0, [], [])


def test_a_drift_read_now_is_not_tied_to_the_generation_beside_an_unknown_job(member):
    """Through ``record``, as the wallet read does: no attribution, a narrowing instead."""
    from django.utils import timezone

    from credits.models import DriftAttribution, DriftNarrowing

    now = timezone.now()
    WalletSnapshot.objects.create(balance=Decimal("1000.00"), fetched_at=now - timedelta(minutes=9))
    charged = generation(member, state=State.FINISHED, submitted_at=now - timedelta(minutes=5))
    LedgerEntry.objects.create(
        kind="charge", user=member, generation=charged, amount=-35, provider="hunyuan_rapid",
        created_at=now - timedelta(minutes=5),
    )  # fmt: skip
    # A finishing step sent at the same time, never heard of again.
    step(member, 0, state=State.NEEDS_ATTENTION, created_at=now - timedelta(minutes=6))
    reconcile.record(Decimal("945.00"), 3)  # 20 more than the ledger's 35
    assert not DriftAttribution.objects.exists()
    assert DriftNarrowing.objects.get().candidates == 1
