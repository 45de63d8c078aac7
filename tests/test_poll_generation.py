"""poll_generation against answers faked at the client seam (a canned server on loopback).

The clock is a fixed day moved by hand, so the timing rules are checked without
waiting and without depending on the calendar.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from generations import ratelimit, tasks
from generations.models import State
from tests.conftest import rapid_generation

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def upstream(canned, settings):
    settings.UPSTREAM_BASE_URL = canned.url
    settings.RATE_LIMITER = "database"
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 10_000
    ratelimit.reset_limiter_cache()
    yield canned
    ratelimit.reset_limiter_cache()


@pytest.fixture
def clock(monkeypatch):
    now = [DAY]
    monkeypatch.setattr(timezone, "now", lambda: now[0])
    return now


def in_flight(owner):
    return rapid_generation(
        owner,
        prompt="a lamp",
        state=State.PENDING,
        upstream_task_id="t-1",
        submitted_at=DAY - timedelta(minutes=3),
        due_at=DAY,
    )


def test_the_old_shapes_thumbnail_inside_a_result_item_is_ingested(upstream, clock, member):
    upstream.answer(
        200,
        {
            "status": "FINISHED",
            "progress": 100,
            "results": [
                {
                    "asset_url": "https://storage.3daistudio.com/m.glb",
                    "asset_type": "3D_MODEL",
                    "thumbnail": "https://storage.3daistudio.com/m.png",
                }
            ],
        },
    )
    generation = in_flight(member)
    tasks.poll_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.INGESTING
    assert generation.results == [
        {"url": "https://storage.3daistudio.com/m.glb", "asset_type": "3D_MODEL"},
        {"url": "https://storage.3daistudio.com/m.png", "asset_type": "IMAGE"},
    ]


def test_finished_without_a_file_backs_off_within_the_grace_period(upstream, clock, member):
    upstream.answer(200, {"status": "FINISHED", "progress": 100, "results": []})
    generation = in_flight(member)
    looks = []
    while generation.state != State.NEEDS_ATTENTION and len(looks) < 100:
        clock[0] = generation.due_at
        looks.append(clock[0])
        tasks.poll_generation(generation.pk)
        generation.refresh_from_db()
    assert generation.state == State.NEEDS_ATTENTION
    assert "no result file" in generation.attention_reason
    assert len(upstream.requests) == len(looks)
    # It still looks for the whole grace period, but a few times, not every 2 s
    # (which was 60 calls: the whole budget of 3 a minute, for two minutes).
    assert looks[-1] - looks[0] > tasks.FINISHED_WITHOUT_ASSET_GRACE
    assert len(looks) <= 9
    first_minute = [t for t in looks if t - looks[0] < timedelta(minutes=1)]
    assert len(first_minute) <= 6
    gaps = [b - a for a, b in zip(looks, looks[1:], strict=False)]
    assert gaps[-2] > timedelta(seconds=30)  # the waits grow
