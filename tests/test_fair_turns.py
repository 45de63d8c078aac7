"""Fair turns: when submits wait for the rate budget, the member with the fewest recent
submits goes next, in arrival order within a member; a batch never takes more than its
owner's turn; members see their real place; polls keep their priority."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from generations import planner, tasks, turns
from generations.models import Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client
from tests.conftest import rapid_generation

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_turns_alternate_owners_in_arrival_order_within_each():
    at = [T0 + timedelta(seconds=s) for s in range(6)]
    rows = [(1, "a", at[0]), (2, "a", at[1]), (3, "a", at[2]), (4, "b", at[3]), (5, "a", at[4])]
    assert turns.in_turn(rows, {}) == [1, 4, 2, 3, 5]


def test_the_member_with_fewest_recent_submits_goes_first():
    rows = [(1, "a", T0), (2, "b", T0 + timedelta(seconds=1))]
    assert turns.in_turn(rows, {"a": 3}) == [2, 1]
    assert turns.in_turn(rows, {"a": 1, "b": 1}) == [1, 2]


def queued(owner, n, start, **fields):
    made = []
    for i in range(n):
        created = start + timedelta(seconds=i)
        made.append(
            rapid_generation(
                owner, prompt=f"{owner.username} {i}", created_at=created, due_at=created, **fields
            )
        )
    return made


def submitted(owner, n, when):
    for i in range(n):
        rapid_generation(
            owner, prompt=f"sent {i}", state=State.PENDING, created_at=when, submitted_at=when
        )


@pytest.fixture
def budget(monkeypatch):
    """The dispatcher sees ``budget.remaining`` free calls; what it sends is recorded."""
    sent = SimpleNamespace(remaining=0, submits=[], polls=[])
    limiter = SimpleNamespace(peek=lambda: SimpleNamespace(remaining=sent.remaining))
    monkeypatch.setattr(tasks, "get_limiter", lambda: limiter)
    monkeypatch.setattr(tasks, "_wallet_due", lambda now: False)
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda pk, token: sent.submits.append(pk))
    monkeypatch.setattr(tasks.poll_generation, "delay", lambda pk, token: sent.polls.append(pk))
    return sent


def test_a_teammates_one_generation_is_next_after_a_60_item_batch(member, second_member, budget):
    now = timezone.now()
    batch = queued(member, 60, now - timedelta(minutes=5))
    (mine,) = queued(second_member, 1, now - timedelta(seconds=10))
    budget.remaining = 2
    tasks.dispatch()
    assert budget.submits == [batch[0].pk, mine.pk]


def test_a_batch_with_recent_submits_waits_for_the_teammate(member, second_member, budget):
    now = timezone.now()
    submitted(member, 3, now - timedelta(seconds=30))
    batch = queued(member, 20, now - timedelta(minutes=2))
    (mine,) = queued(second_member, 1, now - timedelta(seconds=5))
    budget.remaining = 1
    tasks.dispatch()
    assert budget.submits == [mine.pk]
    assert Generation.objects.get(pk=batch[0].pk).state == State.QUEUED


def test_polls_keep_their_priority(member, second_member, budget):
    now = timezone.now()
    queued(second_member, 1, now - timedelta(minutes=1))
    polled = rapid_generation(member, state=State.IN_PROGRESS, due_at=now - timedelta(seconds=1))
    budget.remaining = 1
    tasks.dispatch()
    assert budget.polls == [polled.pk] and budget.submits == []


def test_only_due_generations_are_submitted(member, second_member, budget):
    now = timezone.now()
    (later,) = queued(second_member, 1, now + timedelta(minutes=1))  # backing off
    (due,) = queued(member, 1, now - timedelta(minutes=1))
    budget.remaining = 3
    tasks.dispatch()
    assert budget.submits == [due.pk]
    assert later.pk not in budget.submits


def test_members_see_their_place_under_the_rule(member, second_member, monkeypatch):
    from generations import ratelimit

    monkeypatch.setattr(ratelimit, "effective_limit", lambda: 3)  # not what Redis learned
    now = timezone.now()
    submitted(member, 3, now - timedelta(seconds=30))
    batch = queued(member, 10, now - timedelta(minutes=1))
    (mine,) = queued(second_member, 1, now)
    assert turns.queue_position(mine) == 1
    assert turns.queue_position(batch[0]) == 2
    assert turns.queue_position(batch[9]) == 11
    body = token_client(second_member).get(f"/api/v1/generations/{mine.pk}/").json()
    assert body["queue_position"] == 1
    start = planner.estimated_start(mine, now)
    later = planner.estimated_start(batch[9], now)
    assert start < later


def test_submits_older_than_the_recent_windows_do_not_count(member, second_member, settings):
    settings.UPSTREAM_RATE_WINDOW = 60.0
    now = timezone.now()
    submitted(member, 5, now - timedelta(minutes=turns.RECENT_WINDOWS + 1))
    assert turns.recent_submits([member.pk], now) == {}
    submitted(member, 2, now - timedelta(minutes=1))
    assert turns.recent_submits([member.pk, second_member.pk], now) == {member.pk: 2}


def test_a_doorbell_does_not_jump_generations_waiting_for_the_budget(member, second_member):
    now = timezone.now()
    (waiting,) = queued(member, 1, now - timedelta(minutes=1))
    (rung,) = queued(second_member, 1, now + timedelta(seconds=10))
    tasks.submit_generation(rung.pk)
    rung.refresh_from_db()
    assert rung.state == State.QUEUED and rung.submit_attempts == 0
    assert rung.due_at <= timezone.now()  # the dispatcher's next tick sees it
    waiting.refresh_from_db()
    assert waiting.state == State.QUEUED
