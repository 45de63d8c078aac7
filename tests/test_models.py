"""State transitions and the ledger's rules, on the real database."""

import uuid

import pytest
from django.db import IntegrityError
from django.utils import timezone

from credits.models import LedgerEntry
from generations.models import Asset, Generation, IllegalTransition, State

pytestmark = pytest.mark.django_db


def make_generation(owner, **fields):
    defaults = {
        "provider": "hunyuan_rapid",
        "prompt": "a red chair",
        "options": {"enable_pbr": False},
        "credit_estimate": 35,
        "due_at": timezone.now(),
    }
    defaults.update(fields)
    return Generation.objects.create(owner=owner, **defaults)


def test_a_queued_generation_is_claimed_once(member):
    generation = make_generation(member)
    twin = Generation.objects.get(pk=generation.pk)
    generation.claim_for_submit()
    with pytest.raises(IllegalTransition):
        twin.claim_for_submit()
    generation.refresh_from_db()
    assert generation.state == State.SUBMITTING
    assert generation.submit_attempts == 1


def test_submitted_records_the_task_id_and_one_charge(member):
    generation = make_generation(member, credit_estimate=55)
    generation.claim_for_submit()
    generation.mark_submitted("task-1", timezone.now())
    generation.refresh_from_db()
    assert generation.state == State.PENDING
    assert generation.upstream_task_id == "task-1"
    charges = LedgerEntry.objects.filter(generation=generation, kind="charge")
    assert [c.amount for c in charges] == [-55]


def test_a_second_charge_for_one_generation_is_impossible(member):
    generation = make_generation(member)
    LedgerEntry.objects.create(kind="charge", user=member, generation=generation, amount=-35)
    with pytest.raises(IntegrityError):
        LedgerEntry.objects.create(kind="charge", user=member, generation=generation, amount=-35)


def test_refund_seen_three_times_gives_one_entry(member):
    generation = make_generation(member)
    generation.claim_for_submit()
    generation.mark_submitted("task-2", timezone.now())
    generation.mark_failed("The model could not be generated.")
    generation.refund("sweep saw it again")
    generation.refund("redelivery saw it again")
    refunds = LedgerEntry.objects.filter(generation=generation, kind="refund")
    assert [r.amount for r in refunds] == [35]
    assert LedgerEntry.objects.filter(generation=generation).balance() == 0


def test_a_queued_generation_holds_its_estimate_and_cancel_releases_it(member, monkeypatch):
    monkeypatch.setattr("generations.tasks.submit_generation.delay", lambda pk: None)
    generation = Generation.objects.create_queued(
        owner=member, provider="hunyuan_rapid", mode="text", prompt="a cup",
        options={"enable_pbr": True}, form_token=uuid.uuid4(),
    )  # fmt: skip
    assert LedgerEntry.objects.filter(user=member).balance() == -55
    generation.cancel()
    assert generation.state == State.CANCELED
    assert LedgerEntry.objects.filter(user=member).balance() == 0
    with pytest.raises(IllegalTransition):
        generation.cancel()
    assert LedgerEntry.objects.filter(generation=generation).count() == 2


def test_no_refund_without_a_charge(member):
    generation = make_generation(member)
    generation.claim_for_submit()
    generation.mark_rejected("The upstream refused the request as invalid: prompt")
    generation.refund("should not happen")
    assert not LedgerEntry.objects.filter(generation=generation).exists()
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert "prompt" in generation.failure_reason


def test_ledger_entries_cannot_be_changed_or_deleted(member):
    entry = LedgerEntry.objects.create(kind="adjustment", user=member, amount=100, note="top-up")
    entry.amount = 1
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=5)
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 100


@pytest.mark.parametrize(
    "method, args",
    [
        ("mark_submitted", ("t", None)),
        ("mark_finished", ()),
        ("start_ingest", ([], None)),
        ("mark_failed", ("x",)),
    ],
)
def test_illegal_transitions_from_queued_raise(member, method, args):
    generation = make_generation(member)
    with pytest.raises(IllegalTransition):
        getattr(generation, method)(*args)
    generation.refresh_from_db()
    assert generation.state == State.QUEUED


def test_it_never_finishes_without_a_stored_model(member):
    generation = make_generation(member, state=State.INGESTING)
    with pytest.raises(IllegalTransition):
        generation.mark_finished()
    Asset.objects.create(
        generation=generation, role="model", file="assets/x.glb", format="glb", bytes=10, sha256="0"
    )
    generation.mark_finished()
    assert generation.state == State.FINISHED


def test_final_generations_cannot_be_sent_to_attention(member):
    generation = make_generation(member, state=State.FINISHED)
    with pytest.raises(IllegalTransition):
        generation.mark_needs_attention("late")


def test_create_queued_is_one_generation_per_form_token(
    member, second_member, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("generations.tasks.submit_generation.delay", sent.append)
    token = uuid.uuid4()
    kwargs = {
        "provider": "hunyuan_rapid",
        "mode": "text",
        "prompt": "a mug",
        "options": {},
        "form_token": token,
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = Generation.objects.create_queued(owner=member, **kwargs)
    with django_capture_on_commit_callbacks(execute=True):
        second = Generation.objects.create_queued(owner=member, **kwargs)
    assert first.pk == second.pk
    assert sent == [first.pk]
    assert Generation.objects.create_queued(owner=second_member, **kwargs) is None


def test_the_due_query_uses_only_in_flight_rows(member):
    now = timezone.now()
    due = make_generation(member, due_at=now)
    make_generation(member, due_at=now, state=State.FINISHED)
    make_generation(member, due_at=now + timezone.timedelta(hours=1))
    assert list(Generation.objects.due(now)) == [due]


def test_needs_attention_without_an_answer_keeps_the_rows_latest_answer(member):
    generation = make_generation(member, state=State.PENDING)
    stale = Generation.objects.get(pk=generation.pk)  # loaded before the newer answer
    Generation.objects.filter(pk=generation.pk).update(last_raw_response='{"status": "newer"}')
    stale.mark_needs_attention("Still not finished upstream.")
    generation.refresh_from_db()
    assert generation.state == State.NEEDS_ATTENTION
    assert generation.last_raw_response == '{"status": "newer"}'
