"""The generation page: state in words, viewer, inputs, downloads, conversions, duplicate, poster."""

import io
import time
import uuid
import zipfile
from datetime import timedelta

import pytest
import trimesh
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from credits.models import LedgerEntry
from generations import conversions, tasks
from generations.models import Asset, Conversion, Generation, State

pytestmark = pytest.mark.django_db


def png(size=(256, 256)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def glb_bytes():
    from sandbox import meshes

    return meshes.glb_bytes(meshes.model_from_prompt("a chair", 1))


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def finished(owner, **fields):
    defaults = {
        "provider": "hunyuan_rapid",
        "prompt": "a red chair",
        "credit_estimate": 35,
        "state": State.FINISHED,
        "progress": 100,
        "finished_at": timezone.now(),
        "upstream_done_at": timezone.now(),
        "results": [{"url": "http://127.0.0.1:1/storage/t/model.glb", "asset_type": "3D_MODEL"}],
    }
    defaults.update(fields)
    generation = Generation.objects.create(owner=owner, **defaults)
    Asset.objects.create(
        generation=generation,
        role=Asset.Role.MODEL,
        file=ContentFile(glb_bytes(), name="m.glb"),
        format="glb",
        bytes=10,
        sha256="x",
        original_name="0:.glb:model.glb",
        facts={"vertices": 8, "faces": 12, "materials": 1, "textures": [], "dimensions": [1, 2, 3]},
    )
    return generation


def url(name, generation, *args):
    return reverse(f"generations:{name}", args=[generation.pk, *args])


def test_the_state_is_told_in_words_with_queue_position(member_client, member):
    Generation.objects.create(
        owner=member, provider="hunyuan_rapid", prompt="a", credit_estimate=35
    )
    second = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", prompt="b", credit_estimate=35
    )
    page = member_client.get(url("detail", second))
    assert b"number 2 in the queue" in page.content
    fragment = member_client.get(url("detail", second), HTTP_HX_REQUEST="true")
    assert b"number 2 in the queue" in fragment.content
    assert b"<html" not in fragment.content


def test_a_failure_is_explained_and_polling_stops(member_client, member):
    generation = Generation.objects.create(
        owner=member,
        provider="tripo_v3",
        prompt="x",
        credit_estimate=20,
        state=State.FAILED,
        failure_reason="The prompt was refused by content moderation.",
        upstream_task_id="t-1",
    )
    response = member_client.get(url("detail", generation), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert b"It failed: The prompt was refused by content moderation." in response.content
    assert b"credits were given back" in response.content


def test_the_finished_page_has_viewer_controls_facts_and_inputs(member_client, member, media):
    generation = finished(member)
    page = member_client.get(url("detail", generation))
    html = page.content.decode()
    assert "<model-viewer" in html
    for control in ("viewer-rotate", "viewer-exposure", "viewer-environment", "viewer-clay"):
        assert f'id="{control}"' in html
    assert 'slot="progress-bar"' in html
    assert "“a red chair”" in html
    assert 'data-testid="facts"' in html
    assert url("poster", generation) in html  # no upstream thumbnail: capture one
    assert "Regenerate with changes" in html


def test_an_upstream_thumbnail_is_the_poster(member_client, member, media):
    generation = finished(member)
    thumb = Asset.objects.create(
        generation=generation, role="thumbnail", file=ContentFile(png(), name="t.png"),
        format="png", bytes=3, sha256="x", original_name="1:.png:t.png",
    )  # fmt: skip
    html = member_client.get(url("detail", generation)).content.decode()
    assert f'poster="{url("asset-view", generation, thumb.pk)}"' in html
    assert url("poster", generation) not in html


def test_reference_images_are_served_to_those_who_see_the_page(
    client, member, second_member, outsider, media
):
    generation = Generation.objects.create(
        owner=member, provider="trellis2", mode="image", credit_estimate=20
    )
    image = generation.images.create(
        slot="image", file=ContentFile(png(), name="r.png"), format="png",
        width=256, height=256, bytes=10,
    )  # fmt: skip
    client.force_login(second_member)
    response = client.get(url("reference-image", generation, image.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "attachment" not in response["Content-Disposition"]
    other = Generation.objects.create(owner=member, provider="trellis2", credit_estimate=20)
    assert client.get(url("reference-image", other, image.pk)).status_code == 404
    client.force_login(outsider)
    assert client.get(url("reference-image", generation, image.pk)).status_code == 404


def test_the_detail_page_query_count_is_bounded(
    member_client, member, media, django_assert_max_num_queries
):
    generation = finished(member)
    with django_assert_max_num_queries(16):
        member_client.get(url("detail", generation))


# --- local conversions ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["obj", "stl", "ply"])
def test_a_local_conversion_is_stored_and_downloads_as_a_file_trimesh_opens(
    member_client, member, media, fmt, tmp_path
):
    generation = finished(member)
    response = member_client.post(url("convert", generation), {"output_format": fmt})
    assert response.status_code == 302
    conversion = Conversion.objects.get()
    assert (conversion.via, conversion.state) == ("local", State.FINISHED)
    assert conversion.asset.role == Asset.Role.CONVERTED
    download = member_client.get(url("asset", generation, conversion.asset.pk))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    data = b"".join(download.streaming_content)
    if fmt == "obj":
        assert download["Content-Disposition"].endswith('.zip"')
        folder = tmp_path / "unzipped"
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert "model.mtl" in archive.namelist()
            assert any(name.endswith(".png") for name in archive.namelist())
            archive.extractall(folder)
        loaded = trimesh.load(folder / "model.obj", force="scene")
    else:
        loaded = trimesh.load(io.BytesIO(data), file_type=fmt, force="scene")
    assert len(loaded.geometry) >= 1
    assert LedgerEntry.objects.count() == 0  # local conversions are free


def test_converting_twice_makes_one_conversion(member_client, member, media):
    generation = finished(member)
    member_client.post(url("convert", generation), {"output_format": "stl"})
    member_client.post(url("convert", generation), {"output_format": "stl"})
    assert Conversion.objects.count() == 1
    assert Asset.objects.filter(role=Asset.Role.CONVERTED).count() == 1


def test_the_convert_post_under_htmx_returns_the_conversions_fragment(member_client, member, media):
    generation = finished(member)
    response = member_client.post(
        url("convert", generation), {"output_format": "ply"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b'id="conversions"' in response.content
    assert b"<html" not in response.content
    assert b'data-format="ply"' in response.content


def test_an_unknown_format_is_refused_in_words(member_client, member, media):
    generation = finished(member)
    response = member_client.post(url("convert", generation), {"output_format": "dwg"}, follow=True)
    assert b"Choose one of the listed formats." in response.content
    assert Conversion.objects.count() == 0


def test_a_generation_still_running_cannot_be_converted(member_client, member, media):
    generation = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", credit_estimate=35, state=State.IN_PROGRESS
    )
    response = member_client.post(url("convert", generation), {"output_format": "stl"}, follow=True)
    assert b"Only a finished generation" in response.content


# --- upstream conversions -------------------------------------------------------------------


def test_fbx_is_queued_for_the_convert_tool_with_a_hold(
    member_client, member, media, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.submit_conversion, "delay", sent.append)
    generation = finished(member)
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(url("convert", generation), {"output_format": "fbx"})
    conversion = Conversion.objects.get()
    assert (conversion.via, conversion.state, conversion.credit_estimate) == (
        "upstream",
        State.QUEUED,
        10,
    )
    assert conversion.due_at is not None
    (hold,) = LedgerEntry.objects.all()
    assert (hold.kind, hold.amount, hold.user, hold.conversion) == ("hold", -10, member, conversion)
    assert hold.generation is None  # the generation's own refund logic must not see it
    assert sent == [conversion.pk]


def test_the_conversions_fragment_polls_until_done(member_client, member, media):
    generation = finished(member)
    conversion = Conversion.objects.create(
        generation=generation, requested_by=member, output_format="usdz", via="upstream",
        state=State.IN_PROGRESS, progress=40, credit_estimate=10,
    )  # fmt: skip
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "conversions"}
    response = member_client.get(url("detail", generation), **headers)
    assert response.status_code == 200
    assert b'id="conversions"' in response.content
    assert b'hx-trigger="every 2s"' in response.content
    assert b'value="40"' in response.content
    Conversion.objects.filter(pk=conversion.pk).update(state=State.FAILED, failure_reason="No.")
    assert member_client.get(url("detail", generation), **headers).status_code == 286


def test_an_expired_upstream_url_refuses_fbx_before_anything_is_held(member_client, member, media):
    generation = finished(member, upstream_done_at=timezone.now() - timedelta(hours=30))
    response = member_client.post(
        url("convert", generation), {"output_format": "usdz"}, follow=True
    )
    assert b"within 24 hours" in response.content
    assert Conversion.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_fbx_conversion_runs_through_the_sandbox_and_is_charged_once(
    sandbox_server, member, monkeypatch
):
    from tests.test_pipeline import drive, queue

    for task in (
        tasks.submit_generation,
        tasks.poll_generation,
        tasks.ingest_generation,
        tasks.submit_conversion,
        tasks.poll_conversion,
    ):
        monkeypatch.setattr(task, "delay", task)
    generation = drive(queue(member))
    assert generation.state == State.FINISHED
    conversion = conversions.request(generation, "fbx", member)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        conversion.refresh_from_db()
        if conversion.state in (State.FINISHED, State.FAILED, State.NEEDS_ATTENTION):
            break
        Conversion.objects.filter(pk=conversion.pk).update(due_at=timezone.now())
        tasks.dispatch()
        time.sleep(0.05)
    assert conversion.state == State.FINISHED, conversion.failure_reason
    assert conversion.asset.format == "fbx"
    with conversion.asset.file.open("rb") as fh:
        assert fh.read(18) == b"Kaydara FBX Binary"
    kinds = [(e.kind, e.amount) for e in LedgerEntry.objects.filter(conversion=conversion)]
    assert kinds == [("hold", -10), ("release", 10), ("charge", -10)]
    assert sum(a for _, a in kinds) == -10


@pytest.mark.django_db(transaction=True)
def test_a_conversion_the_upstream_fails_is_refunded(sandbox_server, member, monkeypatch):
    generation = finished(member)
    conversion = Conversion.objects.create(
        generation=generation, requested_by=member, output_format="fbx", via="upstream",
        state=State.PENDING, upstream_task_id="t", credit_estimate=10,
    )  # fmt: skip
    LedgerEntry.objects.create(kind="charge", conversion=conversion, user=member, amount=-10)

    class Failed:
        def status(self, task_id):
            from generations.upstream import Status

            return Status(status="FAILED", progress=0, failure_reason="Mesh is broken.")

    monkeypatch.setattr(tasks, "client", Failed)
    tasks.poll_conversion(conversion.pk)
    tasks.poll_conversion(conversion.pk)  # delivered twice: refunded once
    conversion.refresh_from_db()
    assert conversion.state == State.FAILED
    assert conversion.failure_reason == "Mesh is broken."
    assert LedgerEntry.objects.filter(conversion=conversion, kind="refund").count() == 1


# --- duplicate and poster -------------------------------------------------------------------


def test_duplicate_makes_one_copy_per_form_token(
    member_client, member, media, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda pk: None)
    generation = Generation.objects.create(
        owner=member, provider="trellis2", mode="image", credit_estimate=20,
        options={"resolution": "1024"}, state=State.FINISHED,
    )  # fmt: skip
    generation.images.create(
        slot="image", file=ContentFile(png(), name="r.png"), format="png",
        width=256, height=256, bytes=10,
    )  # fmt: skip
    token = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        first = member_client.post(url("duplicate", generation), {"form_token": token})
        second = member_client.post(url("duplicate", generation), {"form_token": token})
    copy = Generation.objects.exclude(pk=generation.pk).get()
    assert first["Location"] == second["Location"] == url("detail", copy)
    assert (copy.provider, copy.mode, copy.options) == ("trellis2", "image", {"resolution": "1024"})
    assert copy.images.get().slot == "image"
    assert copy.previous_version is None


def test_a_captured_poster_becomes_the_thumbnail_once(member_client, member, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    generation = finished(member)
    for _ in range(2):
        response = member_client.post(
            url("poster", generation),
            {"poster": SimpleUploadedFile("p.png", png((600, 400)), content_type="image/png")},
        )
        assert response.status_code == 204
    (thumb,) = generation.assets.filter(role="thumbnail")
    assert thumb.format == "jpeg"
    bad = member_client.post(
        url("poster", generation),
        {"poster": SimpleUploadedFile("p.png", b"<svg/>", content_type="image/png")},
    )
    assert bad.status_code == 400


# --- the page of a final generation, its fragments cached under the data version ---------


def page_of(client, generation):
    response = client.get(url("detail", generation))
    assert response.status_code == 200
    return response


def test_a_finished_generations_page_shows_each_change_at_once(member_client, member, media):
    generation = finished(member)
    page_of(member_client, generation)
    # A conversion, its progress, a later version and a poster each show at once.
    conversion = Conversion.objects.create(
        generation=generation, requested_by=member, output_format="fbx", via="upstream",
        state=State.IN_PROGRESS, progress=30,
    )  # fmt: skip
    assert b'value="30"' in page_of(member_client, generation).content
    Conversion.objects.filter(pk=conversion.pk).update(progress=70)
    assert b'value="70"' in page_of(member_client, generation).content
    later = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", prompt="a chair, blue",
        credit_estimate=35, previous_version=generation,
    )  # fmt: skip
    assert f"#{later.pk}</a>".encode() in page_of(member_client, generation).content
    Asset.objects.create(
        generation=generation, role=Asset.Role.THUMBNAIL, file=ContentFile(png(), name="t.png"),
        format="png", bytes=10, sha256="y", original_name="poster.png",
    )  # fmt: skip
    assert b"poster=" in page_of(member_client, generation).content
    member.username = "renamed"
    member.save()
    assert b"<dd>renamed</dd>" in page_of(member_client, generation).content


def test_a_generation_in_flight_shows_its_progress_every_time(member_client, member):
    generation = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", prompt="a chair", credit_estimate=35,
        state=State.IN_PROGRESS, progress=10,
    )  # fmt: skip
    assert b'value="10"' in page_of(member_client, generation).content
    Generation.objects.filter(pk=generation.pk).update(progress=20)
    assert b'value="20"' in page_of(member_client, generation).content


def test_each_page_gets_its_own_duplicate_token_and_both_duplicates_are_made(
    member_client, member, media, monkeypatch, django_capture_on_commit_callbacks
):
    import re

    monkeypatch.setattr(tasks.submit_generation, "delay", lambda pk: None)
    generation = finished(member)
    tokens = []
    for _ in range(3):
        html = page_of(member_client, generation).content.decode()
        tokens.append(re.search(r'name="form_token" value="([^"]+)"', html).group(1))
    assert len(set(tokens)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        for token in tokens[1:]:
            assert (
                member_client.post(url("duplicate", generation), {"form_token": token}).status_code
                == 302
            )
    assert Generation.objects.filter(prompt="a red chair").count() == 3


def test_only_people_who_may_see_it_get_the_page(client, member, media, django_user_model):
    from tests.conftest import make_user

    generation = finished(member)
    client.force_login(member)
    page_of(client, generation)
    stranger = make_user(django_user_model, "stranger")  # no group: sees only their own
    client.force_login(stranger)
    assert client.get(url("detail", generation)).status_code == 404


@pytest.mark.parametrize("fmt", ["obj", "stl", "ply"])
def test_a_draco_compressed_version_is_refused_in_words_not_converted(
    member_client, member, media, fmt
):
    from tests.test_posters_draco import draco_box_glb

    generation = finished(member)
    generation.glb_asset.file.save("optimized.glb", ContentFile(draco_box_glb()))
    response = member_client.post(url("convert", generation), {"output_format": fmt})
    assert response.status_code == 302
    conversion = Conversion.objects.get()
    assert conversion.state == State.FAILED
    assert "Draco-compressed" in conversion.failure_reason
    assert f"cannot become {fmt.upper()}" in conversion.failure_reason
    assert not Asset.objects.filter(role=Asset.Role.CONVERTED).exists()
    assert LedgerEntry.objects.count() == 0


def test_compression_names_what_a_glb_requires():
    from generations import glbfacts
    from tests.test_posters_draco import draco_box_glb

    assert glbfacts.compression(draco_box_glb()) == ["Draco"]
    assert glbfacts.compression(glb_bytes()) == []
    with pytest.raises(glbfacts.GlbError):
        glbfacts.compression(b"not a glb at all, just text")
