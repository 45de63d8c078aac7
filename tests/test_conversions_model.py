"""A conversion's state changes: one method each, a conditional UPDATE on the state it expects."""

from datetime import UTC, datetime, timedelta

import pytest

from credits.models import LedgerEntry
from generations.models import Conversion, IllegalTransition, State
from tests.conftest import at_once, rapid_generation

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def make_conversion(owner, **fields):
    generation = rapid_generation(owner, state=State.FINISHED, finished_at=NOW)
    defaults = {
        "output_format": "fbx",
        "via": Conversion.Via.UPSTREAM,
        "state": State.QUEUED,
        "credit_estimate": 10,
        "due_at": NOW,
    }
    return Conversion.objects.create(
        generation=generation, requested_by=owner, **{**defaults, **fields}
    )


def ledger(conversion):
    return [(e.kind, e.amount) for e in LedgerEntry.objects.filter(conversion=conversion)]


def test_a_queued_conversion_is_claimed_for_submit_once(member):
    conversion = make_conversion(member)
    twin = Conversion.objects.get(pk=conversion.pk)
    conversion.claim_for_submit(NOW + timedelta(minutes=2))
    with pytest.raises(IllegalTransition):
        twin.claim_for_submit(NOW + timedelta(minutes=2))
    conversion.refresh_from_db()
    assert (conversion.state, conversion.due_at) == (State.SUBMITTING, NOW + timedelta(minutes=2))


def test_a_transition_from_the_wrong_state_is_refused_and_changes_nothing(member):
    conversion = make_conversion(member, state=State.FINISHED, progress=100)
    with pytest.raises(IllegalTransition, match="conversion .* cannot go to pending from finished"):
        conversion.mark_submitted("task-1", NOW)
    with pytest.raises(IllegalTransition):
        conversion.record_progress("IN_PROGRESS", 40, NOW)
    with pytest.raises(IllegalTransition):
        conversion.mark_failed("too late")
    queued = make_conversion(member, output_format="usdz")
    with pytest.raises(IllegalTransition):
        queued.mark_finished(None)
    conversion.refresh_from_db()
    queued.refresh_from_db()
    assert (conversion.state, conversion.progress, conversion.failure_reason) == (
        State.FINISHED,
        100,
        "",
    )
    assert queued.state == State.QUEUED
    assert ledger(conversion) == [] and ledger(queued) == []


def test_the_hold_becomes_one_charge_when_the_upstream_accepts(member):
    conversion = make_conversion(member)
    conversion.hold("held for fbx")
    conversion.claim_for_submit(NOW)
    conversion.mark_submitted("task-1", NOW + timedelta(seconds=15))
    with pytest.raises(IllegalTransition):
        conversion.mark_submitted("task-1", NOW + timedelta(seconds=15))
    conversion.refresh_from_db()
    assert (conversion.state, conversion.upstream_task_id) == (State.PENDING, "task-1")
    assert ledger(conversion) == [("hold", -10), ("release", 10), ("charge", -10)]


def test_a_failure_before_the_upstream_accepted_releases_the_hold(member):
    conversion = make_conversion(member)
    conversion.hold("held for fbx")
    conversion.claim_for_submit(NOW)
    conversion.mark_failed("The upstream refused it.")
    assert ledger(conversion) == [("hold", -10), ("release", 10)]
    assert LedgerEntry.objects.filter(user=member).balance() == 0


def test_a_failure_upstream_refunds_the_charge_once(member):
    conversion = make_conversion(member)
    conversion.hold("held for fbx")
    conversion.claim_for_submit(NOW)
    conversion.mark_submitted("task-1", NOW)
    conversion.record_progress("IN_PROGRESS", 40, NOW + timedelta(seconds=5))
    assert (conversion.state, conversion.progress) == (State.IN_PROGRESS, 40)
    conversion.mark_failed("Mesh is broken.")
    with pytest.raises(IllegalTransition):
        Conversion.objects.get(pk=conversion.pk).mark_failed("Mesh is broken.")
    assert ledger(conversion) == [("hold", -10), ("release", 10), ("charge", -10), ("refund", 10)]
    assert LedgerEntry.objects.filter(user=member).balance() == 0


def test_of_two_dispatchers_with_the_same_due_row_one_gets_a_claim(member):
    conversion = make_conversion(member)
    stale = Conversion.objects.get(pk=conversion.pk)
    token = conversion.claim_for_dispatch(NOW, timedelta(minutes=2))
    assert token and stale.claim_for_dispatch(NOW, timedelta(minutes=2)) is None
    conversion.refresh_from_db()
    assert (conversion.claim, conversion.deliveries) == (token, 1)
    assert conversion.due_at == NOW + timedelta(minutes=2)
    # The task that was sent the token takes the step; a second delivery of it does not.
    assert Conversion.objects.take_step(conversion.pk, token, [State.QUEUED]) == conversion
    assert Conversion.objects.take_step(conversion.pk, token, [State.QUEUED]) is None


def test_a_failed_local_conversion_is_retried_by_one_click_of_two(member):
    conversion = make_conversion(
        member, via=Conversion.Via.LOCAL, output_format="stl", state=State.FAILED
    )
    twin = Conversion.objects.get(pk=conversion.pk)
    conversion.retry_locally()
    with pytest.raises(IllegalTransition):
        twin.retry_locally()
    assert conversion.state == State.INGESTING


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_one_conversion_at_once_cannot_both_win(member):
    conversion = make_conversion(member)
    won = []

    def claim():
        mine = Conversion.objects.get(pk=conversion.pk)
        try:
            mine.claim_for_submit(NOW + timedelta(minutes=2))
        except IllegalTransition:
            return
        won.append(mine)

    for _ in range(5):
        Conversion.objects.filter(pk=conversion.pk).update(state=State.QUEUED)
        won.clear()
        assert at_once(claim, claim, claim) == []
        assert len(won) == 1
