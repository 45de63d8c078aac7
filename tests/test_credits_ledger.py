"""The ledger: append-only in the database itself, rollups equal to sums, invariants
under random sequences of the real transitions."""

import uuid
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits.models import Budget, LedgerEntry, SpendRollup
from credits.rollups import buckets, group_rows
from generations.models import Asset, BudgetExceeded, Generation, IllegalTransition, State

pytestmark = pytest.mark.django_db


def queue(owner, pbr=False, provider="hunyuan_rapid", options=None, edition=""):
    return Generation.objects.create_queued(
        owner=owner,
        provider=provider,
        mode="text",
        prompt="a red chair",
        options={"enable_pbr": pbr} if options is None else options,
        form_token=uuid.uuid4(),
        edition=edition,
    )


def submit(generation):
    generation.claim_for_submit()
    generation.mark_submitted(f"task-{generation.pk}", timezone.now())


def finish(generation):
    generation.start_ingest([], timezone.now())
    Asset.objects.create(
        generation=generation,
        role=Asset.Role.MODEL,
        file=f"assets/{generation.pk}.glb",
        format="glb",
        original_name="model.glb",
        bytes=1,
        sha256="0" * 64,
    )
    generation.mark_finished()


def rollups_by_group():
    return {
        (r.grain, r.key, r.day, r.kind): (r.amount, r.entries)
        for r in SpendRollup.objects.all()
        if r.amount or r.entries
    }


def sums_by_group():
    """What the rollups must be, computed from the ledger entry by entry."""
    expected = defaultdict(lambda: [0, 0])
    for entry in LedgerEntry.objects.select_related("generation"):
        edition = entry.generation.edition if entry.generation_id else ""
        for key, *_ in group_rows(entry.user_id, entry.provider, edition):
            for grain, day in buckets(entry.created_at):
                row = expected[(grain, key, day, entry.kind)]
                row[0] += entry.amount
                row[1] += 1
    return {group: tuple(value) for group, value in expected.items()}


# --- append-only, in the database --------------------------------------------------


def test_the_database_refuses_to_update_a_ledger_entry(member):
    generation = queue(member)
    entry = LedgerEntry.objects.get(generation=generation)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE generations_ledgerentry SET amount = 0 WHERE id = %s", [entry.pk]
            )
    assert LedgerEntry.objects.get(pk=entry.pk).amount == -35


def test_the_database_refuses_to_delete_a_ledger_entry(member):
    generation = queue(member)
    entry = LedgerEntry.objects.get(generation=generation)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM generations_ledgerentry WHERE id = %s", [entry.pk])
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_the_orm_refuses_bulk_updates_and_deletes_too(member):
    queue(member)
    with pytest.raises(TypeError):
        LedgerEntry.objects.all().update(amount=0)
    with pytest.raises(TypeError):
        LedgerEntry.objects.all().delete()


# --- refunds and rollups ------------------------------------------------------------


def test_a_refund_seen_three_times_is_one_entry(member):
    generation = queue(member, pbr=True)
    submit(generation)
    generation.mark_failed("The model could not be generated.")
    generation.refund("the sweep saw FAILED again")
    generation.refund("a redelivered poll saw FAILED again")
    refunds = LedgerEntry.objects.filter(generation=generation, kind="refund")
    assert [r.amount for r in refunds] == [55]
    assert LedgerEntry.objects.filter(user=member).balance() == 0
    team = SpendRollup.objects.get(grain="d", key="t", kind="refund")
    assert (team.amount, team.entries) == (55, 1)


def test_rollups_follow_each_transition_with_the_edition(member):
    generation = queue(member, provider="hunyuan_pro", options={}, edition="3.1")
    submit(generation)
    rows = {
        (r.scope, r.kind): (r.amount, r.entries)
        for r in SpendRollup.objects.filter(provider="hunyuan_pro", edition="3.1", grain="m")
    }
    assert rows == {
        ("p", "hold"): (-60, 1),
        ("p", "release"): (60, 1),
        ("p", "charge"): (-60, 1),
        ("up", "hold"): (-60, 1),
        ("up", "release"): (60, 1),
        ("up", "charge"): (-60, 1),
    }
    assert rollups_by_group() == sums_by_group()


def test_an_adjustment_is_rolled_up_like_any_entry(member):
    LedgerEntry.objects.create(kind="adjustment", user=member, amount=-7, note="manual fix")
    rows = SpendRollup.objects.filter(key=f"u{member.pk}", kind="adjustment")
    assert sorted((r.grain, r.amount) for r in rows) == [("d", -7), ("m", -7)]
    assert rollups_by_group() == sums_by_group()


def test_a_failed_insert_leaves_the_rollups_untouched(member):
    generation = queue(member)
    before = rollups_by_group()
    generation._ledger(LedgerEntry.Kind.HOLD, -35, "a second hold")  # unique: a no-op
    assert rollups_by_group() == before
    assert LedgerEntry.objects.filter(generation=generation, kind="hold").count() == 1


def finished_in_report(day, **filters):
    from credits import spend

    return spend.report(day, day, **filters).finished


def test_finished_generations_are_counted_by_the_day_they_finished(member, second_member):
    generation = queue(member, provider="hunyuan_pro", options={}, edition="3.1")
    submit(generation)
    finish(generation)
    today = timezone.localdate()
    assert finished_in_report(today) == 1
    assert finished_in_report(today, user=member, provider="hunyuan_pro") == 1
    assert finished_in_report(today, user=second_member) == 0
    assert finished_in_report(today - timedelta(days=1)) == 0
    assert rollups_by_group() == sums_by_group()


@pytest.mark.parametrize(
    "change, counted",
    [
        ({"state": State.FAILED}, 0),  # leaves FINISHED
        ({"finished_at": timezone.now() - timedelta(days=45)}, 0),  # another day
        ({"provider": "tripo_v3"}, 1),  # counted under its new provider
        ({"progress": 99}, 1),  # nothing counted changes
    ],
)
def test_the_finished_count_follows_any_update_of_the_row(member, change, counted):
    generation = queue(member, provider="hunyuan_pro", options={}, edition="3.1")
    submit(generation)
    finish(generation)
    # A bare UPDATE, as a transition, a script or a benchmark makes it: not through save().
    Generation.objects.filter(pk=generation.pk).update(**change)
    today = timezone.localdate()
    assert finished_in_report(today) == counted
    provider = change.get("provider", "hunyuan_pro")
    assert finished_in_report(today, provider=provider) == counted


def test_a_deleted_finished_generation_is_no_longer_counted(member):
    generation = make_finished_without_ledger(member)
    assert finished_in_report(timezone.localdate()) == 1
    generation.delete()
    assert finished_in_report(timezone.localdate()) == 0
    assert rollups_by_group() == sums_by_group() == {}


def make_finished_without_ledger(owner):
    return Generation.objects.create(
        owner=owner,
        provider="hunyuan_rapid",
        prompt="a chair",
        credit_estimate=35,
        form_token=uuid.uuid4(),
        state=State.FINISHED,
        finished_at=timezone.now(),
    )


# --- property: random sequences of the real transitions ---------------------------

ACTIONS = ["create", "submit", "fail", "refund_again", "cancel", "reject", "finish", "gift"]

steps = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(min_value=0, max_value=5),  # which generation (modulo)
        st.booleans(),  # PBR on create; which user
        st.integers(min_value=1, max_value=50),  # gift size
    ),
    min_size=1,
    max_size=25,
)


def _act(action, generations, users, pick, flag, gift):
    if action == "create":
        generations.append(queue(users[int(flag)], pbr=flag))
        return
    if action == "gift":
        LedgerEntry.objects.create(kind="adjustment", user=users[int(flag)], amount=gift, note="g")
        return
    if not generations:
        return
    generation = generations[pick % len(generations)]
    generation.refresh_from_db()
    if action == "submit":
        submit(generation)
    elif action == "fail":
        generation.mark_failed("upstream FAILED")
    elif action == "refund_again":
        generation.refund("seen again")
    elif action == "cancel":
        generation.cancel()
    elif action == "reject":
        generation.claim_for_submit()
        generation.mark_rejected("HTTP 402: The upstream wallet does not have enough credits")
    elif action == "finish":
        finish(generation)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps, limit=st.integers(min_value=0, max_value=300))
def test_ledger_invariants_hold_under_random_sequences(member, second_member, steps, limit):
    with transaction.atomic():
        Budget.objects.create(user=member, monthly_limit=limit)
        users = [member, second_member]
        generations = []
        refused = 0
        for action, pick, flag, gift in steps:
            try:
                with transaction.atomic():
                    _act(action, generations, users, pick, flag, gift)
            except IllegalTransition:
                pass
            except BudgetExceeded:
                refused += 1
            # Never over budget: gifts only give credits back, so spend <= limit always.
            assert -LedgerEntry.objects.filter(user=member).balance() <= limit
        entries = list(LedgerEntry.objects.all())
        by_generation = defaultdict(Counter)
        for entry in entries:
            if entry.generation_id:
                by_generation[entry.generation_id][entry.kind] += 1
        for generation in Generation.objects.all():
            kinds = by_generation[generation.pk]
            # At most one of each kind; a refund only of a charge; never refunded and finished.
            assert max(kinds.values(), default=0) <= 1
            assert kinds["refund"] <= kinds["charge"]
            assert not (generation.state == State.FINISHED and kinds["refund"])
            # What the generation costs, from its state alone, is the sum of its entries.
            net = sum(e.amount for e in entries if e.generation_id == generation.pk)
            given_back = generation.state in (State.FAILED, State.CANCELED)
            assert net == (0 if given_back else -generation.credit_estimate)
            if kinds["charge"]:
                assert kinds["release"] == 1  # the hold became the charge
        gifts = sum(e.amount for e in entries if e.kind == "adjustment")
        balance = sum(
            0 if g.state in (State.FAILED, State.CANCELED) else -g.credit_estimate
            for g in Generation.objects.all()
        )
        assert LedgerEntry.objects.balance() == balance + gifts
        assert rollups_by_group() == sums_by_group()
        transaction.set_rollback(True)
