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
    assert (profile.p10, profile.p50, profile.p90) == (120.0, 150.0, 187.5)


def test_it_learns_the_duration_from_finished_generations(member):
    for seconds in [100, 110, 120, 130, 140, 150, 160, 170, 180, 190]:
        make(
            member, state=State.FINISHED, submitted_at=NOW, finished_at=NOW,
            upstream_done_at=NOW + timedelta(seconds=seconds),
        )  # fmt: skip
    profile = planner.duration_profile("hunyuan_rapid")
    assert profile.p50 == 145
    assert 100 <= profile.p10 < 115
    assert 175 < profile.p90 <= 190


def test_when_calls_are_scarce_the_first_poll_waits_for_the_90th_percentile(member):
    make(member, state=State.QUEUED, due_at=NOW - timedelta(seconds=1))  # a submit is waiting
    generation = make(member, state=State.PENDING, submitted_at=NOW)
    assert planner.first_poll_at(generation, NOW) == NOW + timedelta(seconds=187.5)


def test_when_calls_are_plentiful_the_first_poll_comes_early(member):
    generation = make(member, state=State.PENDING, submitted_at=NOW)
    assert planner.first_poll_at(generation, NOW) == NOW + timedelta(seconds=120)


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
