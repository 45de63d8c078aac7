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
