"""When to poll: the planner's choices, with and without history and budget pressure."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generations import planner
from generations.models import Generation, State

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def make(owner, **fields):
    defaults = {"provider": "hunyuan_rapid", "prompt": "p", "credit_estimate": 35}
    defaults.update(fields)
    return Generation.objects.create(owner=owner, **defaults)


@pytest.fixture(autouse=True)
def scale(settings):
    settings.PLANNER_DURATION_SCALE = 1.0
    settings.PLANNER_MODE = "adaptive"


def test_without_history_it_uses_the_documented_duration(member):
    profile = planner.duration_profile("hunyuan_rapid")
    assert (profile.p10, profile.p50, profile.p90) == (90.0, 150.0, 187.5)


def test_it_learns_the_duration_from_finished_generations(member):
    for seconds in [100, 110, 120, 130, 140, 150, 160, 170, 180, 190]:
        make(member, state=State.FINISHED, finished_at=NOW, observed_duration=seconds)
    # A late look is not learned from: it would only say "done before 900 s".
    make(member, state=State.FINISHED, finished_at=NOW, observed_duration=None)
    profile = planner.duration_profile("hunyuan_rapid")
    assert profile.p50 == 145
    assert 100 <= profile.p10 < 115
    assert 175 < profile.p90 <= 190


def test_when_calls_are_scarce_the_first_poll_waits_for_the_90th_percentile(member):
    make(member, state=State.QUEUED, due_at=NOW - timedelta(seconds=1))  # a submit is waiting
    generation = make(member, state=State.PENDING, submitted_at=NOW)
    assert planner.first_poll_at(generation, NOW) == NOW + timedelta(seconds=187.5)


def test_a_submit_waiting_for_its_slot_makes_calls_scarce_too(member):
    # Turned away by the budget: due again when a slot frees, a few seconds ahead.
    make(member, state=State.QUEUED, due_at=NOW + timedelta(seconds=5))
    generation = make(member, state=State.PENDING, submitted_at=NOW)
    assert planner.first_poll_at(generation, NOW) == NOW + timedelta(seconds=187.5)


def test_when_calls_are_plentiful_the_first_poll_comes_early(member):
    generation = make(member, state=State.PENDING, submitted_at=NOW)
    assert planner.first_poll_at(generation, NOW) == NOW + timedelta(seconds=90)


def test_the_next_poll_goes_where_progress_says_it_finishes(member):
    generation = make(member, state=State.IN_PROGRESS, submitted_at=NOW - timedelta(seconds=100))
    # 80% after 100 s: 25 s to go, plus a small margin.
    assert planner.next_poll_at(generation, 80, NOW) == NOW + timedelta(seconds=25 * 1.03)


def test_without_progress_it_looks_again_soon_or_later_by_pressure(member):
    late = make(member, state=State.IN_PROGRESS, submitted_at=NOW - timedelta(seconds=400))
    assert planner.next_poll_at(late, None, NOW) == NOW + timedelta(seconds=7.5)
    make(member, state=State.QUEUED, due_at=NOW - timedelta(seconds=1))
    assert planner.next_poll_at(late, None, NOW) == NOW + timedelta(seconds=22.5)


def test_polls_never_come_sooner_than_the_minimum_interval(member):
    generation = make(member, state=State.IN_PROGRESS, submitted_at=NOW - timedelta(seconds=100))
    assert planner.next_poll_at(generation, 99, NOW) == NOW + timedelta(seconds=2)


def test_the_fixed_baseline_polls_at_a_fixed_interval(member, settings):
    settings.PLANNER_MODE = "fixed"
    settings.FIXED_POLL_INTERVAL = 10
    generation = make(member, state=State.PENDING, submitted_at=NOW)
    assert planner.first_poll_at(generation, NOW) == NOW + timedelta(seconds=10)
    assert planner.next_poll_at(generation, 50, NOW) == NOW + timedelta(seconds=10)


def test_the_eta_follows_progress(member):
    generation = make(
        member, state=State.IN_PROGRESS, progress=50, submitted_at=NOW - timedelta(seconds=60)
    )
    assert planner.estimated_finish(generation, NOW) == NOW + timedelta(seconds=60)


def test_a_precise_finish_is_the_midpoint_of_the_last_two_looks(member):
    now = timezone.now()
    generation = make(
        member, state=State.IN_PROGRESS, submitted_at=now - timedelta(seconds=100),
        seen_running_at=now - timedelta(seconds=5),
    )  # fmt: skip
    generation.start_ingest([], now)
    assert generation.observed_duration == pytest.approx(97.5, abs=0.5)


def test_a_late_look_falls_back_to_the_progress_estimate(member):
    generation = make(
        member, state=State.IN_PROGRESS, submitted_at=NOW - timedelta(seconds=300),
        seen_running_at=NOW - timedelta(seconds=200),
    )  # fmt: skip
    assert generation.start_ingest([], NOW) is None
    assert generation.observed_duration is None
    running = make(
        member, state=State.IN_PROGRESS, submitted_at=timezone.now() - timedelta(seconds=60)
    )
    running.record_progress("IN_PROGRESS", 40, NOW)
    running.refresh_from_db()
    assert running.duration_estimate == pytest.approx(150, rel=0.02)


def test_a_queued_generation_waits_for_the_calls_ahead_of_it(member, settings, redis_limiter):
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 3
    settings.UPSTREAM_RATE_WINDOW = 60
    for i in range(4):
        make(member, state=State.QUEUED, created_at=NOW - timedelta(seconds=10 - i))
    make(member, state=State.PENDING, submitted_at=NOW)
    mine = make(member, state=State.QUEUED, created_at=NOW)
    # 4 submits ahead + 1 poll + mine = 6 calls; 3 fit this window, 3 wait: one window.
    assert planner.estimated_start(mine, NOW) == NOW + timedelta(seconds=61)
    assert planner.estimated_finish(mine, NOW) == NOW + timedelta(seconds=61 + 150)
    assert planner.estimated_start(make(member, state=State.PENDING), NOW) is None


def test_each_process_keeps_a_profile_for_ten_seconds_then_asks_again(member, monkeypatch):
    from django.core.cache import cache

    clock = [1000.0]
    monkeypatch.setattr(planner.time, "monotonic", lambda: clock[0])
    for seconds in [100] * 10:
        make(member, state=State.FINISHED, finished_at=NOW, observed_duration=seconds)
    assert planner.duration_profile("hunyuan_rapid").p50 == 100
    later = NOW + timedelta(seconds=1)
    for seconds in [300] * 30:
        make(member, state=State.FINISHED, finished_at=later, observed_duration=seconds)
    cache.clear()  # the shared copy gone: the process's own is still used
    assert planner.duration_profile("hunyuan_rapid").p50 == 100
    clock[0] += planner.LOCAL_SECONDS + 1
    assert planner.duration_profile("hunyuan_rapid").p50 == 300
    cache.clear()
    latest = NOW + timedelta(seconds=2)
    for seconds in [200] * planner.HISTORY:
        make(member, state=State.FINISHED, finished_at=latest, observed_duration=seconds)
    planner.forget_profiles()
    assert planner.duration_profile("hunyuan_rapid").p50 == 200
