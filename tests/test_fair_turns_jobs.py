"""Fair turns across the upstream's jobs: concept jobs' and finishing steps' (and
conversions') submits spend the same rate budget as generations', so they count among a
member's recent submits; and one queue orders the due submits of every kind."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from credits.models import LedgerEntry
from generations import tasks, turns
from generations.models import ConceptJob, Conversion, Generation, State
from tests.conftest import rapid_generation
from tests.test_fair_turns import budget, queued, submitted  # noqa: F401 - a fixture
from tests.test_spend_labels import charged_concept, charged_step

pytestmark = pytest.mark.django_db


def waiting_concept(owner, created_at, image_model="gemini_25_flash"):
    return ConceptJob.objects.create(
        owner=owner,
        image_model=image_model,
        prompt="a ceramic fox",
        credit_estimate=5,
        created_at=created_at,
        due_at=created_at,
    )


def waiting_step(owner, created_at, kind="remesh", via=Conversion.Via.UPSTREAM):
    source = rapid_generation(owner, prompt="a chair", state=State.FINISHED)
    return Conversion.objects.create(
        generation=source,
        requested_by=owner,
        kind=kind,
        output_format="glb",
        via=via,
        credit_estimate=10,
        created_at=created_at,
        due_at=created_at,
    )


# --- recent submits count every kind ------------------------------------------------------


def test_concept_jobs_and_steps_count_among_recent_submits(member, second_member, settings):
    settings.UPSTREAM_RATE_WINDOW = 60.0
    charged_concept(member)
    charged_concept(member, "seedream_v5_lite", fail=True)  # refunded, still a submit
    charged_step(member, "remesh", 20)
    charged_step(second_member, "convert", 10, output_format="fbx")
    submitted(second_member, 1, timezone.now() - timedelta(seconds=20))
    held = ConceptJob.objects.create_queued(
        owner=second_member,
        image_model="gemini_25_flash",
        prompt="held, not sent",
        options={},
        count=1,
        form_token=uuid.uuid4(),
    )
    assert held.state == State.QUEUED  # only a hold: not a submit
    now = timezone.now()
    assert turns.recent_submits([member.pk, second_member.pk], now) == {
        member.pk: 3,
        second_member.pk: 2,
    }


def test_a_generations_own_charge_is_not_counted_twice(member):
    now = timezone.now()
    generation = rapid_generation(member, state=State.PENDING, created_at=now, submitted_at=now)
    LedgerEntry.objects.create(
        kind="charge", user=member, generation=generation, amount=-35, provider="hunyuan_rapid"
    )
    assert turns.recent_submits([member.pk], now) == {member.pk: 1}


def test_job_submits_older_than_the_recent_windows_do_not_count(member, settings):
    settings.UPSTREAM_RATE_WINDOW = 60.0
    charged_concept(member)
    later = timezone.now() + timedelta(minutes=turns.RECENT_WINDOWS + 1)
    assert turns.recent_submits([member.pk], later) == {}


def test_a_member_who_spent_the_budget_on_images_waits_for_the_teammate(
    member,
    second_member,
    budget,  # noqa: F811 - the fixture imported above
):
    charged_concept(member)
    charged_concept(member, options={"resolution": "4K"})
    now = timezone.now()
    # Their polls are not due yet (due polls go before any submit).
    ConceptJob.objects.update(due_at=now + timedelta(minutes=1))
    (first,) = queued(member, 1, now - timedelta(minutes=2))
    (mine,) = queued(second_member, 1, now - timedelta(seconds=5))
    assert turns.queue_position(mine) == 1
    budget.remaining = 1
    tasks.dispatch()
    assert budget.submits == [mine.pk]
    assert Generation.objects.get(pk=first.pk).state == State.QUEUED


# --- one queue for every kind ---------------------------------------------------------------


def test_a_teammates_concept_job_is_next_after_a_60_item_batch(member, second_member):
    now = timezone.now()
    batch = queued(member, 60, now - timedelta(minutes=5))
    concept = waiting_concept(second_member, now - timedelta(seconds=10))
    picked = turns.next_jobs(now, budget=2)
    assert [(kind, row.pk) for kind, row in picked] == [
        ("generation", batch[0].pk),
        ("concept", concept.pk),
    ]
    assert isinstance(picked[1][1], ConceptJob)


def test_a_members_jobs_of_every_kind_take_turns_in_arrival_order(member, second_member):
    now = timezone.now()
    start = now - timedelta(minutes=5)
    step = waiting_step(member, start)
    (generation,) = queued(member, 1, start + timedelta(seconds=1))
    concept = waiting_concept(member, start + timedelta(seconds=2))
    (theirs,) = queued(second_member, 1, start + timedelta(seconds=3))
    picked = [(kind, row.pk) for kind, row in turns.next_jobs(now, budget=10)]
    assert picked == [
        ("conversion", step.pk),
        ("generation", theirs.pk),
        ("generation", generation.pk),
        ("concept", concept.pk),
    ]


def test_recent_image_submits_put_a_member_behind_in_the_one_queue(member, second_member):
    charged_concept(member)
    charged_concept(member)
    now = timezone.now()
    mine = waiting_concept(member, now - timedelta(minutes=1))
    theirs = waiting_step(second_member, now - timedelta(seconds=1), kind="render")
    picked = [(kind, row.pk) for kind, row in turns.next_jobs(now, budget=1)]
    assert picked == [("conversion", theirs.pk)]
    assert ("concept", mine.pk) not in picked


def test_only_due_queued_upstream_jobs_wait_in_the_queue(member):
    now = timezone.now()
    waiting_concept(member, now + timedelta(minutes=1))  # backing off
    waiting_step(member, now - timedelta(minutes=1), kind="convert", via=Conversion.Via.LOCAL)
    running = waiting_concept(member, now - timedelta(minutes=1))
    ConceptJob.objects.filter(pk=running.pk).update(state=State.PENDING)
    assert turns.next_jobs(now, budget=5) == []


def test_a_generation_that_takes_three_calls_is_not_jumped(member, second_member):
    now = timezone.now()
    (first,) = queued(member, 1, now - timedelta(minutes=1))
    waiting_concept(second_member, now - timedelta(seconds=30))
    waiting_concept(member, now - timedelta(seconds=20))
    # Narrowing drift: a generation's submit takes three calls; two are left.
    assert turns.next_jobs(now, budget=2, generation_calls=3) == []
    picked = turns.next_jobs(now, budget=4, generation_calls=3)
    assert [kind for kind, _row in picked] == ["generation", "concept"]
    assert picked[0][1].pk == first.pk


def test_nothing_is_asked_with_no_budget(member):
    now = timezone.now()
    queued(member, 2, now - timedelta(minutes=1))
    assert turns.next_jobs(now, budget=0) == []


# --- the dispatcher hands out the one queue ------------------------------------------------


@pytest.fixture
def handed(budget, monkeypatch):  # noqa: F811 - the fixture imported above
    """``budget`` (tests/test_fair_turns.py) with the other kinds' tasks recorded too."""
    from generations import concepts

    budget.concepts, budget.steps, budget.step_polls = [], [], []
    monkeypatch.setattr(
        concepts.submit_concept, "delay", lambda pk, token: budget.concepts.append(pk)
    )
    monkeypatch.setattr(tasks.submit_conversion, "delay", lambda pk, token: budget.steps.append(pk))
    monkeypatch.setattr(
        tasks.poll_conversion, "delay", lambda pk, token: budget.step_polls.append(pk)
    )
    return budget


def test_the_dispatcher_submits_a_teammates_concept_job_after_one_of_a_batch(
    member, second_member, handed
):
    now = timezone.now()
    batch = queued(member, 60, now - timedelta(minutes=5))
    concept = waiting_concept(second_member, now - timedelta(seconds=10))
    handed.remaining = 2
    sent = tasks.dispatch()
    assert handed.submits == [batch[0].pk]
    assert handed.concepts == [concept.pk]
    assert (sent["submit"], sent["concepts"]) == (1, 1)
    assert ConceptJob.objects.get(pk=concept.pk).claim  # claimed for its submit


def test_the_dispatcher_polls_a_step_before_any_submit(member, second_member, handed):
    now = timezone.now()
    queued(member, 3, now - timedelta(minutes=5))
    submitted(member, 1, now - timedelta(seconds=30))
    running = waiting_step(second_member, now - timedelta(minutes=1))
    Conversion.objects.filter(pk=running.pk).update(state=State.PENDING, upstream_task_id="t-1")
    step = waiting_step(second_member, now - timedelta(seconds=30), kind="render")
    handed.remaining = 2
    sent = tasks.dispatch()
    assert handed.step_polls == [running.pk]  # the poll first
    assert len(handed.submits) + len(handed.steps) == 1  # then one submit in turn
    assert handed.steps == [step.pk]  # the member with no recent submit goes first
    assert sent["conversions"] == 2


def test_a_generations_doorbell_waits_behind_a_due_concept_job(member, second_member):
    now = timezone.now()
    (mine,) = queued(member, 1, now)
    assert not turns.others_waiting(mine, now)
    waiting_concept(second_member, now - timedelta(seconds=5))
    assert turns.others_waiting(mine, now)


@pytest.mark.parametrize("kind", ["concept", "step"])
def test_a_jobs_doorbell_waits_behind_a_due_job_of_another_kind(member, second_member, kind):
    from generations import concepts

    now = timezone.now()
    (theirs,) = queued(second_member, 1, now - timedelta(minutes=1))
    if kind == "concept":
        mine, ring = waiting_concept(member, now), concepts.submit_concept
    else:
        mine, ring = waiting_step(member, now), tasks.submit_conversion
    assert turns.others_waiting(mine, now)
    ring(mine.pk)  # no claim: the doorbell rung at create (no upstream is called)
    mine.refresh_from_db()
    assert mine.state == State.QUEUED  # left for the dispatcher's turns, due now
    assert mine.due_at <= timezone.now()
    Generation.objects.filter(pk=theirs.pk).update(state=State.PENDING)
    assert not turns.others_waiting(mine)
