"""The one rate budget: shared through Redis (or a locked row), never overrun."""

import time

import pytest

from generations import ratelimit
from tests.conftest import at_once


@pytest.fixture
def short_window(settings):
    settings.UPSTREAM_RATE_WINDOW = 1.0
    settings.UPSTREAM_RATE_LIMIT = 3
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 0


def test_it_allows_the_limit_then_says_how_long_to_wait(redis_limiter, short_window):
    decisions = [redis_limiter.acquire() for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 0.5 < decisions[3].wait <= ratelimit.window()


def test_slots_free_up_when_the_window_passes(redis_limiter, short_window):
    for _ in range(3):
        assert redis_limiter.acquire().allowed
    time.sleep(ratelimit.window() + 0.05)
    assert redis_limiter.acquire().allowed


def test_peek_takes_no_slot(redis_limiter, short_window):
    assert redis_limiter.peek().remaining == 3
    assert redis_limiter.peek().remaining == 3
    redis_limiter.acquire()
    assert redis_limiter.peek().remaining == 2


def test_a_block_stops_everyone_until_it_passes(redis_limiter, short_window):
    redis_limiter.block(0.5)
    decision = redis_limiter.acquire()
    assert not decision.allowed
    assert 0.3 < decision.wait <= 0.5
    redis_limiter.block(0.1)  # a shorter block never shortens a longer one
    assert not redis_limiter.acquire().allowed
    time.sleep(0.55)
    assert redis_limiter.acquire().allowed


def test_the_limit_learned_from_the_wallet_applies(redis_limiter, short_window):
    redis_limiter.learn_limit(5)
    assert sum(redis_limiter.acquire().allowed for _ in range(8)) == 5


def test_an_override_beats_the_learned_limit(redis_limiter, short_window, settings):
    redis_limiter.learn_limit(5)
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 2
    assert sum(redis_limiter.acquire().allowed for _ in range(8)) == 2


def test_concurrent_takers_never_exceed_the_limit(redis_limiter, short_window):
    granted = []

    def take():
        limiter = ratelimit.RedisLimiter()
        for _ in range(5):
            granted.append(limiter.acquire().allowed)

    assert at_once(*[take] * 8) == []
    assert sum(granted) == 3
    assert len(granted) == 40


@pytest.mark.django_db(transaction=True)
def test_the_database_limiter_keeps_the_same_rules(short_window, settings):
    settings.RATE_LIMITER = "database"
    ratelimit.reset_limiter_cache()
    limiter = ratelimit.get_limiter()
    try:
        assert isinstance(limiter, ratelimit.DatabaseLimiter)
        assert [limiter.acquire().allowed for _ in range(4)] == [True, True, True, False]
        assert limiter.peek().remaining == 0
        limiter.learn_limit(4)
        assert limiter.acquire().allowed
        limiter.block(5)
        assert 4 < limiter.acquire().wait <= 5
    finally:
        ratelimit.reset_limiter_cache()


def test_the_window_has_a_safety_margin(settings):
    settings.UPSTREAM_RATE_WINDOW = 60
    assert ratelimit.window() == 61


def settled_slot_rules(limiter):
    """A slot settled 0.6 s after it was taken frees a window after the settle, not the take."""
    for _ in range(2):
        assert limiter.acquire().allowed
    slow = limiter.acquire()
    assert slow.allowed and slow.token
    time.sleep(0.6)  # the call is slow to leave, or to come back
    limiter.settle(slow)
    time.sleep(ratelimit.window() - 0.6 + 0.1)
    # The two quick calls have left the window; the slow one, counted from its answer, has not.
    assert [(d.allowed, d.remaining) for d in (limiter.acquire(), limiter.acquire())] == [
        (True, 1),
        (True, 0),
    ]
    assert not limiter.acquire().allowed
    time.sleep(0.6)
    assert limiter.acquire().allowed


def test_a_settled_slot_counts_from_when_the_answer_came_back(redis_limiter, short_window):
    settled_slot_rules(redis_limiter)


def test_a_refused_or_peeked_decision_settles_nothing(redis_limiter, short_window):
    assert redis_limiter.peek().token == ""
    for _ in range(3):
        redis_limiter.acquire()
    refused = redis_limiter.acquire()
    assert not refused.allowed and refused.token == ""
    redis_limiter.settle(refused)
    assert redis_limiter.redis.zcard(redis_limiter.calls_key) == 3


def test_settling_a_slot_that_left_the_window_does_not_bring_it_back(redis_limiter, short_window):
    decision = redis_limiter.acquire()
    redis_limiter.redis.zrem(redis_limiter.calls_key, decision.token)
    redis_limiter.settle(decision)
    assert redis_limiter.redis.zcard(redis_limiter.calls_key) == 0


@pytest.mark.django_db(transaction=True)
def test_the_database_limiter_settles_slots_too(short_window, settings):
    settings.RATE_LIMITER = "database"
    ratelimit.reset_limiter_cache()
    try:
        settled_slot_rules(ratelimit.get_limiter())
    finally:
        ratelimit.reset_limiter_cache()


def test_an_upstream_call_settles_its_slot_even_when_it_fails(redis_limiter, short_window):
    from generations.tasks import _counted
    from generations.upstream import Unavailable

    decision = redis_limiter.acquire()
    taken = redis_limiter.redis.zscore(redis_limiter.calls_key, decision.token)

    def slow_failure(task_id):
        assert task_id == "task-1"
        time.sleep(0.3)
        raise Unavailable("the upstream answered 503")

    with pytest.raises(Unavailable):
        _counted(decision, slow_failure, "task-1")
    settled = redis_limiter.redis.zscore(redis_limiter.calls_key, decision.token)
    assert settled - taken >= 0.3
