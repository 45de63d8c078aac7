"""The recovery sweep at scale (a large backlog): it reads only the rows it acts on,
each provider keeps its own time-out, and two sweeps at once move each row once.

The figures for 10k rows in flight come from tests/bench/bench_sweep.py.
"""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations import tasks
from generations.models import Alert, Generation, State
from tests.conftest import at_once

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the sweep also empties .incoming


def make(owner, state, provider="hunyuan_rapid", **fields):
    return Generation.objects.create(
        owner=owner,
        provider=provider,
        prompt="a chair",
        form_token=uuid.uuid4(),
        state=state,
        credit_estimate=35,
        **fields,
    )


def healthy(owner, count):
    now = timezone.now()
    for i in range(count):
        make(
            owner,
            State.IN_PROGRESS if i % 2 else State.PENDING,
            provider="hunyuan_pro" if i % 3 else "tripo_v3",
            upstream_task_id=f"t-{i}",
            submitted_at=now - timedelta(seconds=60 + i),
            due_at=now + timedelta(seconds=30),
        )


def stuck(owner):
    """One submit interrupted by a kill and one poll far beyond any plausible duration."""
    now = timezone.now()
    return [
        make(owner, State.SUBMITTING, due_at=now - timedelta(seconds=5)),
        make(
            owner,
            State.IN_PROGRESS,
            upstream_task_id="t-late",
            submitted_at=now - timedelta(days=1),
            due_at=now + timedelta(seconds=30),
        ),
    ]


@pytest.fixture
def loaded_rows(monkeypatch):
    """The generations the code under test reads into Python, by id."""
    loaded = []
    from_db = Generation.from_db.__func__

    def counting(cls, *args, **kwargs):
        row = from_db(cls, *args, **kwargs)
        loaded.append(row.pk)
        return row

    monkeypatch.setattr(Generation, "from_db", classmethod(counting))
    return loaded


def counted_sweep(loaded_rows):
    from django.core.cache import cache

    from generations import planner

    cache.clear()  # each run starts with the planner's profiles uncached
    planner.forget_profiles()
    loaded_rows.clear()
    with CaptureQueriesContext(connection) as queries:
        tasks.sweep()
    return len(queries), sorted(loaded_rows)


def test_the_sweep_reads_only_the_rows_it_flags(member, loaded_rows):
    tasks.sweep()  # the first heartbeat ever inserts its row; later ones update it
    healthy(member, 10)
    first = stuck(member)
    few_queries, few_loaded = counted_sweep(loaded_rows)

    healthy(member, 190)
    second = stuck(member)
    many_queries, many_loaded = counted_sweep(loaded_rows)

    assert many_queries == few_queries
    assert few_loaded == sorted(g.pk for g in first)
    assert many_loaded == sorted(g.pk for g in second)
    assert set(
        Generation.objects.filter(state=State.NEEDS_ATTENTION).values_list("pk", flat=True)
    ) == {g.pk for g in first + second}
    assert Generation.objects.filter(state__in=[State.PENDING, State.IN_PROGRESS]).count() == 200


def test_each_provider_times_out_after_its_own_limit(member):
    now = timezone.now()
    ago = now - timedelta(minutes=80)

    def polled(provider, submitted_at):
        return make(
            member,
            State.IN_PROGRESS,
            provider=provider,
            upstream_task_id=f"t-{provider}",
            submitted_at=submitted_at,
            due_at=now + timedelta(seconds=30),
        )

    # Limits: the larger of an hour and 20x the expected duration (Pro 270 s: 90 min).
    slow = polled("hunyuan_pro", ago)
    fast = polled("hunyuan_rapid", ago)
    retired = polled("a_retired_provider", now - timedelta(hours=2))
    recent = polled("a_retired_provider", now - timedelta(minutes=50))
    tasks.sweep()
    states = dict(Generation.objects.values_list("pk", "state"))
    assert states[slow.pk] == State.IN_PROGRESS
    assert states[fast.pk] == State.NEEDS_ATTENTION
    assert states[retired.pk] == State.NEEDS_ATTENTION
    assert states[recent.pk] == State.IN_PROGRESS
    fast.refresh_from_db()
    assert fast.attention_reason.startswith("Still not finished upstream after 1:20:")


def test_two_sweeps_at_once_flag_each_stuck_row_once(member, monkeypatch):
    healthy(member, 20)
    rows = [g for _ in range(5) for g in stuck(member)]
    moved = []
    # Both sweeps must have read their candidates before either moves one: each
    # waits for the other at its first transition of each kind.
    barriers = {"submit": threading.Barrier(2), "late": threading.Barrier(2)}
    local = threading.local()
    transition = Generation.mark_needs_attention

    def racing(self, reason, raw=""):
        kind = "late" if reason.startswith("Still not finished") else "submit"
        seen = getattr(local, "seen", set())
        local.seen = seen
        if kind not in seen:
            seen.add(kind)
            barriers[kind].wait(timeout=10)
        transition(self, reason, raw)
        moved.append(self.pk)  # only reached when this sweep's conditional UPDATE won

    monkeypatch.setattr(Generation, "mark_needs_attention", racing)

    assert at_once(tasks.sweep, tasks.sweep) == []
    assert sorted(moved) == sorted(g.pk for g in rows)
    submits = [g for g in rows if g.state == State.SUBMITTING]
    for generation in submits:
        assert Alert.objects.filter(message__contains=f"Generation {generation.pk} ").count() == 1
    assert Generation.objects.filter(state=State.NEEDS_ATTENTION).count() == len(rows)
