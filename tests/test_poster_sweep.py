"""A lost poster task is swept: the beat queues again the poster of a finished model that
has none a few minutes on, bounded per run, and never again a model that could not be drawn
(the failure is recorded in the drawn model's facts) or that used up its attempts."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile

from generations import posters, tasks
from generations.models import Asset, Generation, State
from tests.test_posters import green_box_glb
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)  # a fixed day: no test depends on the calendar
BOX = green_box_glb()


def finished(member, minutes_ago, prompt="a box", glb=BOX, **fields):
    generation = make_finished(member, prompt, glb_bytes=glb, **fields)
    Generation.objects.filter(pk=generation.pk).update(
        finished_at=NOW - timedelta(minutes=minutes_ago)
    )
    return generation


def model_facts(generation):
    return generation.assets.get(role=Asset.Role.MODEL).facts


def test_it_finds_a_finished_model_without_a_picture_a_few_minutes_on(member):
    lost = finished(member, 10, "lost")
    finished(member, 2, "its poster task may still be on its way")
    finished(member, 60 * 24 * 8, "older than the lookback: backfill_posters' job")
    pictured = finished(member, 10, "pictured")
    posters.make_poster(pictured)
    finished(member, 10, "failed upstream", state=State.FAILED)
    bare = finished(member, 10, "no model")
    bare.assets.all().delete()
    assert posters.lost(NOW) == [lost.pk]


def test_it_is_one_query_and_bounded_newest_first(member, django_assert_num_queries):
    made = [finished(member, 10 + i, f"lost {i}") for i in range(4)]
    with django_assert_num_queries(1):
        assert posters.lost(NOW, limit=3) == [g.pk for g in made[:3]]


def test_a_model_that_could_not_be_drawn_is_recorded_and_not_swept_again(member):
    stub = finished(member, 10, "a GLB header and nothing else", glb=b"glTF\x02\x00\x00\x00")
    assert posters.lost(NOW) == [stub.pk]
    assert posters.make_poster(stub) is None
    facts = model_facts(stub)
    assert "could not be read" in facts[posters.FAILED]
    assert facts[posters.ATTEMPTS] == 1
    assert facts["faces"] == 12  # the model's own facts are kept
    assert posters.lost(NOW) == []


def test_an_attempt_is_counted_before_drawing_so_a_model_that_kills_workers_stops(
    member, monkeypatch
):
    generation = finished(member, 10)
    seen = []

    def killed(path, **kwargs):
        seen.append(model_facts(generation).get(posters.ATTEMPTS))
        raise SystemExit("the worker died drawing it")

    monkeypatch.setattr(posters, "render_png", killed)
    for _ in range(posters.MAX_ATTEMPTS):
        assert posters.lost(NOW) == [generation.pk]
        with pytest.raises(SystemExit):
            posters.make_poster(generation)
        generation = Generation.objects.prefetch_related("assets").get(pk=generation.pk)
    assert seen == [1, 2, 3]  # stored before each drawing started
    assert posters.lost(NOW) == []


def test_a_preview_that_failed_stops_the_sweep_even_beside_an_unmarked_original(member):
    generation = finished(member, 10)
    Asset.objects.create(
        generation=generation,
        role=Asset.Role.PREVIEW,
        file=ContentFile(BOX, name="preview.glb"),
        format="glb",
        original_name="preview:glb",
        bytes=len(BOX),
        sha256="0" * 64,
        facts={posters.FAILED: "its geometry could not be decoded"},
    )
    assert posters.lost(NOW) == []


def test_the_sweep_task_queues_the_lost_and_the_poster_is_drawn_once(member, monkeypatch):
    now = datetime.now(UTC)
    lost = make_finished(member, "lost", glb_bytes=BOX)
    Generation.objects.filter(pk=lost.pk).update(finished_at=now - timedelta(minutes=10))
    queued = []
    monkeypatch.setattr(tasks.render_poster, "delay", queued.append)
    tasks.sweep_posters()
    assert queued == [lost.pk]
    # Queued twice (the first message was only late): drawn once.
    tasks.render_poster(lost.pk)
    tasks.render_poster(lost.pk)
    assert lost.assets.filter(role=Asset.Role.THUMBNAIL).count() == 1
    queued.clear()
    tasks.sweep_posters()
    assert queued == []


def test_the_beat_runs_the_sweep_every_few_minutes():
    from studio_dashboard.celery import _beat_schedule, app

    (entry,) = [e for e in _beat_schedule().values() if e["task"].endswith("sweep_posters")]
    assert 60 <= entry["schedule"] <= 600
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
