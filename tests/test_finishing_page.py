"""The "Finish this model" section of a generation's page, and a new version's page."""

import io
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from credits.models import Budget, LedgerEntry
from generations import finishing, tasks
from generations.models import Asset, Conversion, Generation, State
from tests.test_workspace_detail import finished, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def doorbell(monkeypatch):
    rung = []
    monkeypatch.setattr(tasks.submit_conversion, "delay", rung.append)
    return rung


def finish_url(generation, kind):
    return reverse("generations:finish", args=[generation.pk, kind])


def post(client, generation, kind, data, **extra):
    data = {f"{kind}-{name}": value for name, value in data.items()}
    data.setdefault(f"{kind}-form_token", str(uuid.uuid4()))
    return client.post(finish_url(generation, kind), data, **extra)


def test_a_finished_model_offers_every_step_with_its_cost(member_client, member, media):
    generation = finished(member)
    page = member_client.get(url("detail", generation)).content.decode()
    assert 'id="finishing"' in page
    for label, cost in [
        ("Remesh", 10),
        ("Texture edit", 20),
        ("Repair", 60),
        ("Optimize for the web", 10),
        ("Render", 5),
    ]:
        assert f"{label} · from {cost} credits" in page
    assert "Quads (+10 credits)" in page
    assert 'hx-trigger="every 2s"' not in page.split('id="finishing"')[1]  # nothing running


def test_a_step_is_held_and_queued_once_per_form(
    member_client, member, media, doorbell, django_capture_on_commit_callbacks
):
    generation = finished(member)
    token = str(uuid.uuid4())
    data = {"engine": "tripo", "polygons": "quads", "face_limit": "2000", "form_token": token}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(member_client, generation, "remesh", data)
        post(member_client, generation, "remesh", data)  # a double click
    assert response.status_code == 302
    job = Conversion.objects.get()
    assert (job.kind, job.options, job.credit_estimate, job.state) == (
        "remesh",
        {"engine": "tripo", "polygons": "quads", "face_limit": 2000},
        20,
        State.QUEUED,
    )
    assert [(e.kind, e.amount) for e in LedgerEntry.objects.all()] == [("hold", -20)]
    assert doorbell == [job.pk]


def test_a_bad_option_is_refused_in_words_and_nothing_is_held(member_client, member, media):
    generation = finished(member)
    response = post(member_client, generation, "remesh", {"polygons": "hexagons"}, follow=True)
    assert b"Remesh was not asked for" in response.content
    response = post(
        member_client, generation, "render", {"output": "video", "angle": "front"}, follow=True
    )
    assert b"An animation is a turntable" in response.content
    response = post(
        member_client,
        generation,
        "remesh",
        {"engine": "tencent", "polygons": "quads", "face_limit": "3000"},
        follow=True,
    )
    assert b"Tencent takes a face level, not a number of faces." in response.content
    response = post(member_client, generation, "texture", {"prompt": "   "}, follow=True)
    assert b"Texture edit was not asked for" in response.content
    assert not Conversion.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_tencent_topology_without_a_glb_url_is_refused_in_words(member_client, member, media):
    generation = finished(member, results=[{"url": "http://x/m.zip", "asset_type": "ARCHIVE"}])
    data = {"engine": "tencent", "polygons": "triangles", "face_level": "medium"}
    response = post(member_client, generation, "remesh", data, follow=True)
    assert b"no live GLB" in response.content
    assert not Conversion.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_the_owners_unchanged_page_reads_no_files_for_the_forms(
    member_client, member, media, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    generation = finished(member)
    member_client.get(url("detail", generation))  # fills the fragment cache
    with CaptureQueriesContext(connection) as queries:
        page = member_client.get(url("detail", generation)).content
    assert b"Optimize for the web" in page
    assert not any('FROM "generations_asset"' in q["sql"] for q in queries)


def test_an_unknown_step_is_404(member_client, member, media):
    generation = finished(member)
    assert post(member_client, generation, "paint", {}).status_code == 404


def test_the_budget_is_checked_before_anything_is_held(member_client, member, media):
    generation = finished(member)
    Budget.objects.create(user=member, monthly_limit=30)
    response = post(member_client, generation, "repair", {"quality": "default"}, follow=True)
    assert b"This step costs 60 credits" in response.content
    assert not Conversion.objects.exists()


def test_render_says_in_words_when_it_is_impossible(member_client, member, media):
    generation = finished(member, upstream_done_at=timezone.now() - timedelta(hours=30))
    page = member_client.get(url("detail", generation)).content.decode()
    assert 'data-testid="impossible-render"' in page
    assert "takes only a URL" in page
    assert f'action="/generations/{generation.pk}/finish/render/"' not in page
    # Steps that upload our own file stay offered.
    assert f'action="/generations/{generation.pk}/finish/optimize/"' in page


def test_only_the_owner_or_an_admin_may_finish_a_model(client, member, second_member, media):
    generation = finished(member)
    client.force_login(second_member)
    response = post(client, generation, "optimize", {"preset": "low"})
    assert response.status_code in (403, 404)
    assert not Conversion.objects.exists()
    page = client.get(url("detail", generation)).content.decode()
    assert f'action="/generations/{generation.pk}/finish/' not in page


def test_the_section_polls_while_a_step_runs_and_stops_after(member_client, member, media):
    generation = finished(member)
    job = Conversion.objects.create(
        generation=generation, requested_by=member, kind="texture", via="upstream",
        options={"prompt": "oak"}, state=State.IN_PROGRESS, progress=40, credit_estimate=20,
    )  # fmt: skip
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "finishing"}
    response = member_client.get(url("detail", generation), **headers)
    assert response.status_code == 200
    assert b'id="finishing"' in response.content
    assert b"<html" not in response.content
    assert b'hx-trigger="every 2s"' in response.content
    assert b'value="40"' in response.content
    # The conversions list is the convert tool's only.
    assert b'data-format="' not in response.content
    Conversion.objects.filter(pk=job.pk).update(state=State.FAILED, failure_reason="No.")
    assert member_client.get(url("detail", generation), **headers).status_code == 286


def test_the_post_under_htmx_returns_the_section(member_client, member, media, doorbell):
    generation = finished(member)
    response = post(
        member_client, generation, "optimize", {"preset": "low"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b'id="finishing"' in response.content
    assert b"<html" not in response.content
    assert b"10 credits held" in response.content


def make_version(member, source, kind="render", options=None):
    job = Conversion.objects.create(
        generation=source, requested_by=member, kind=kind, via="upstream",
        options=options or {"output": "image", "angle": "front"}, state=State.PENDING,
        credit_estimate=5, upstream_task_id="t",
    )  # fmt: skip
    return job


def test_a_new_version_page_shows_its_lineage_and_renders(member_client, member, media):
    source = finished(member)
    job = make_version(member, source)
    version = finishing.make_version(job, [], [], timezone.now())
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "PNG")
    Asset.objects.create(
        generation=version, role=Asset.Role.RENDER, file=ContentFile(buffer.getvalue(), "r.png"),
        format="png", bytes=len(buffer.getvalue()), sha256="y", original_name="0:render:r.png",
    )  # fmt: skip
    page = member_client.get(url("detail", version)).content.decode()
    assert "Rendered front as images, from" in page
    assert f'href="/generations/{source.pk}/"' in page
    assert reverse("reviews:compare", args=[version.pk]) in page
    assert 'data-testid="renders"' in page
    render = version.assets.get(role=Asset.Role.RENDER)
    assert member_client.get(url("asset-view", version, render.pk)).status_code == 200
    # The source's page links the new version.
    source_page = member_client.get(url("detail", source)).content.decode()
    assert f"new version #{version.pk}" in source_page
    # Reviewable like any version: it is finished and awaits review; comparable.
    assert Generation.objects.get(pk=version.pk).state == State.FINISHED
    assert member_client.get(reverse("reviews:compare", args=[version.pk])).status_code == 200
