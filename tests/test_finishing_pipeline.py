"""Finishing steps through the real pipeline against the sandbox over loopback.

Each step (remesh, texture edit, repair, optimize, render) is submitted once, charged
once and becomes a new version of the asset; its fault cases (FAILED, FINISHED without
a file, expired result URLs) end refunded or asking a person, never both; after a mixed
run the sandbox's wallet moved by exactly what our ledger says.
"""

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from credits.models import LedgerEntry
from generations import finishing, tasks
from generations.models import Asset, Conversion, Generation, State
from tests.sandbox_control import set_faults
from tests.test_pipeline import drive, queue

pytestmark = pytest.mark.django_db(transaction=True)

STOPPED = (State.FINISHED, State.FAILED, State.NEEDS_ATTENTION)


@pytest.fixture
def inline_tasks(monkeypatch):
    """Each .delay() runs the task here and now, as a worker would."""
    for task in (
        tasks.submit_generation,
        tasks.poll_generation,
        tasks.ingest_generation,
        tasks.submit_conversion,
        tasks.poll_conversion,
    ):
        monkeypatch.setattr(task, "delay", task)


def run(job, timeout=20.0):
    """Run the dispatcher until the job stops; the job, fresh."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in STOPPED:
            return job
        # The sandbox's time runs 250x faster: do not wait for our polling schedule.
        Conversion.objects.filter(pk=job.pk, claim="").update(due_at=timezone.now())
        tasks.dispatch()
        time.sleep(0.05)
    raise AssertionError(f"job still {job.state} after {timeout} s")


def ask(generation, kind, options, user=None):
    return finishing.request(generation, kind, options, user or generation.owner, uuid.uuid4())


def upstream_tasks(server):
    return requests.get(f"{server.url}/_sandbox/tasks", timeout=5).json()


def wallet(server):
    return Decimal(requests.get(f"{server.url}/_sandbox/wallet", timeout=5).json()["balance"])


def ledger(job):
    return [(e.kind, e.amount) for e in LedgerEntry.objects.filter(conversion=job)]


@pytest.fixture
def source(sandbox_server, inline_tasks, member):
    generation = drive(queue(member))
    assert generation.state == State.FINISHED, generation.attention_reason
    return generation


STEPS = [
    ("remesh", {"polygons": "quads", "face_limit": 2000}, 20, "tripo_convert_model"),
    ("texture", {"prompt": "weathered oak", "texture_quality": "standard"}, 20, "tripo_texture"),
    ("repair", {"quality": "default", "hollow": False}, 60, "repair"),
    ("optimize", {"preset": "low", "max_texture_size": 1024}, 10, "optimize"),
]


@pytest.mark.parametrize(("kind", "options", "price", "provider"), STEPS)
def test_a_model_step_becomes_a_new_version_charged_once(
    sandbox_server, source, kind, options, price, provider
):
    job = run(ask(source, kind, options))
    assert job.state == State.FINISHED, job.failure_reason
    version = job.result
    assert version.state == State.FINISHED
    assert version.previous_version == source
    assert version.made_by_step == job
    model = version.glb_asset
    assert model.role == Asset.Role.MODEL
    with model.file.open("rb") as fh:
        assert fh.read(4) == b"glTF"
    assert model.facts["faces"] > 0
    assert ledger(job) == [("hold", -price), ("release", price), ("charge", -price)]
    (upstream,) = [t for t in upstream_tasks(sandbox_server) if t["provider"] == provider]
    assert upstream["charged"] == price  # the upstream's price is the one we held


def test_tencent_topology_remeshes_a_pro_model_by_its_url_into_obj_and_glb(
    sandbox_server, inline_tasks, member
):
    pro = Generation.objects.create_queued(
        owner=member, provider="hunyuan_pro", mode="text", prompt="a stone lantern",
        options={}, edition="3.0", form_token=uuid.uuid4(),
    )  # fmt: skip
    pro = drive(pro)
    assert pro.state == State.FINISHED, pro.attention_reason
    options = {"engine": "tencent", "polygons": "quads", "face_level": "low"}
    job = ask(pro, "remesh", options)
    endpoint, body, upload = finishing.build(job)
    assert (endpoint, upload, body["file_type"], body["polygon_type"]) == (
        "/v1/3d-models/tencent/topology/",
        None,
        "GLB",
        "quadrilateral",
    )
    assert body["file_url"].split("?")[0].endswith(".glb")
    job = run(job)
    assert job.state == State.FINISHED, job.failure_reason
    roles = {a.role: a for a in job.result.assets.all()}
    assert roles[Asset.Role.ORIGINAL].format == "obj"
    with roles[Asset.Role.MODEL].file.open("rb") as fh:
        assert fh.read(4) == b"glTF"
    assert ledger(job) == [("hold", -100), ("release", 100), ("charge", -100)]
    assert "Tencent" in job.description


def test_tencent_topology_is_refused_in_words_for_a_model_without_a_glb_url(sandbox_server, source):
    # Rapid answers a ZIP: Tencent's topology takes only a GLB (or OBJ) URL.
    with pytest.raises(finishing.FinishingRefused, match="no live GLB"):
        ask(source, "remesh", {"engine": "tencent", "polygons": "triangles"})
    assert not Conversion.objects.exists()


def test_a_still_render_shows_as_an_image_beside_the_source_model(sandbox_server, source):
    job = run(ask(source, "render", {"output": "image", "angle": "front", "resolution": 256}))
    assert job.state == State.FINISHED, job.failure_reason
    version = job.result
    (still,) = version.assets.filter(role=Asset.Role.RENDER)
    assert still.format == "png"
    # The version keeps the model it rendered (the same stored file): viewable as before.
    assert version.glb_asset.file.name == source.glb_asset.file.name
    assert ledger(job) == [("hold", -5), ("release", 5), ("charge", -5)]


def test_a_turntable_video_is_stored_as_an_mp4_render(sandbox_server, source):
    job = run(ask(source, "render", {"output": "video", "angle": "turntable_4"}))
    assert job.state == State.FINISHED, job.failure_reason
    (video,) = job.result.assets.filter(role=Asset.Role.RENDER)
    assert video.format == "mp4"
    with video.file.open("rb") as fh:
        assert fh.read(8)[4:] == b"ftyp"
    assert ledger(job)[-1] == ("charge", -20)


def test_a_remesh_of_a_remesh_is_the_next_version_in_the_chain(sandbox_server, source):
    first = run(ask(source, "optimize", {"preset": "default"})).result
    second = run(ask(first, "render", {"output": "image", "angle": "3/4", "resolution": 256}))
    # The new version's own result URL lives 24 h, so a URL-only step can use it.
    assert second.state == State.FINISHED, second.failure_reason
    assert second.result.previous_version == first


def test_a_step_the_upstream_fails_is_refunded_once(sandbox_server, source):
    set_faults(sandbox_server, {"fail_rate": 1.0})
    job = run(ask(source, "repair", {"quality": "max", "hollow": True}))
    assert job.state == State.FAILED
    assert job.failure_reason
    assert job.result is None
    assert ledger(job) == [("hold", -90), ("release", 90), ("charge", -90), ("refund", 90)]
    tasks.poll_conversion(job.pk)  # a late redelivery changes nothing
    assert LedgerEntry.objects.filter(conversion=job, kind="refund").count() == 1
    (upstream,) = [t for t in upstream_tasks(sandbox_server) if t["provider"] == "repair"]
    assert upstream["refunded"] == 90


EVERY_STEP = [
    ("remesh", {"polygons": "triangles"}, 10),
    ("texture", {"prompt": "slate", "texture_quality": "standard"}, 20),
    ("repair", {"quality": "low", "hollow": False}, 60),
    ("optimize", {"preset": "default"}, 10),
    ("render", {"output": "image", "angle": "left", "resolution": 256}, 5),
]


@pytest.mark.parametrize(
    "fault", [{"fail_rate": 1.0}, {"quirks": {"finished_no_asset_rate": 1.0}}], ids=str
)
@pytest.mark.parametrize(("kind", "options", "price"), EVERY_STEP)
def test_every_step_failed_upstream_is_refunded_and_makes_no_version(
    sandbox_server, source, kind, options, price, fault
):
    # FAILED, and FINISHED without a file but with a reason: both failures, refunded upstream.
    set_faults(sandbox_server, fault)
    job = run(ask(source, kind, options))
    assert job.state == State.FAILED
    assert ledger(job) == [
        ("hold", -price),
        ("release", price),
        ("charge", -price),
        ("refund", price),
    ]
    assert not Generation.objects.filter(previous_version=source).exists()
    (upstream,) = [
        t
        for t in upstream_tasks(sandbox_server)
        if t["endpoint"] != "/v1/3d-models/tencent/generate/rapid/"
    ]
    assert upstream["refunded"] == price


def test_finished_with_a_null_file_for_a_while_keeps_polling_then_finishes(sandbox_server, source):
    set_faults(sandbox_server, {"null_asset_polls": 2})
    job = run(ask(source, "texture", {"prompt": "brass", "texture_quality": "detailed"}))
    assert job.state == State.FINISHED, job.failure_reason
    assert ledger(job)[-1] == ("charge", -40)


def test_finished_without_a_file_for_too_long_asks_a_person_and_keeps_the_charge(
    sandbox_server, source, monkeypatch
):
    set_faults(sandbox_server, {"null_asset_polls": 1000})
    # No grace: the second poll that finds no file asks a person. (A grace of a fraction of
    # a second raced the quarantine of a job dispatched every 50 ms on a loaded machine.)
    monkeypatch.setattr(tasks, "FINISHED_WITHOUT_ASSET_GRACE", timedelta(0))
    job = run(ask(source, "optimize", {"preset": "default"}))
    assert job.state == State.NEEDS_ATTENTION
    assert "no result file" in job.failure_reason
    # The upstream finished and charged it: no refund in our ledger either.
    assert ledger(job)[-1] == ("charge", -10)


def test_expired_result_urls_are_fetched_again_once_then_a_person_is_asked(sandbox_server, source):
    set_faults(sandbox_server, {"asset_ttl_seconds": 0})
    job = run(ask(source, "remesh", {"polygons": "triangles"}))
    assert job.state == State.NEEDS_ATTENTION
    assert "could not be fetched" in job.failure_reason
    assert job.url_refreshes == 1  # polled once more for fresh URLs first
    assert job.result is None
    assert ledger(job)[-1] == ("charge", -10)


def test_render_is_refused_in_words_once_the_models_url_expired(sandbox_server, source):
    Generation.objects.filter(pk=source.pk).update(
        upstream_done_at=timezone.now() - timedelta(hours=30)
    )
    source.refresh_from_db()
    with pytest.raises(finishing.FinishingRefused, match="takes only a URL"):
        ask(source, "render", {"output": "image", "angle": "front"})
    assert not Conversion.objects.exists()
    assert not LedgerEntry.objects.filter(conversion__isnull=False).exists()


def test_repair_uploads_our_file_once_the_models_url_expired(sandbox_server, source):
    Generation.objects.filter(pk=source.pk).update(
        upstream_done_at=timezone.now() - timedelta(hours=30)
    )
    source.refresh_from_db()
    job = ask(source, "repair", {"quality": "low", "hollow": False})
    endpoint, body, upload = finishing.build(job)
    assert "model_url" not in body
    assert upload[0] == "model_file"
    assert run(job).state == State.FINISHED


def test_a_render_whose_url_expired_while_queued_is_released_not_sent(
    sandbox_server, source, monkeypatch
):
    with monkeypatch.context() as doorbell:
        doorbell.setattr(tasks.submit_conversion, "delay", lambda pk: None)  # still queued
        job = ask(source, "render", {"output": "image", "angle": "top", "resolution": 256})
    Generation.objects.filter(pk=source.pk).update(
        upstream_done_at=timezone.now() - timedelta(hours=30)
    )
    job = run(job)
    assert job.state == State.FAILED, job.failure_reason
    assert "takes only a URL" in job.failure_reason
    assert ledger(job) == [("hold", -5), ("release", 5)]
    assert not [t for t in upstream_tasks(sandbox_server) if t["provider"] == "render"]


def test_a_step_the_upstream_refuses_is_released_and_never_charged(sandbox_server, source):
    # The form would not let this quality through; the upstream's 400 is handled anyway.
    job = run(ask(source, "texture", {"prompt": "oak", "texture_quality": "ultra"}))
    assert job.state == State.FAILED
    assert "texture_quality" in job.failure_reason
    assert ledger(job) == [("hold", -20), ("release", 20)]
    assert not [t for t in upstream_tasks(sandbox_server) if t["provider"] == "tripo_texture"]


def test_a_render_of_a_render_says_the_upstream_has_no_model_url(sandbox_server, source):
    still = run(ask(source, "render", {"output": "image", "angle": "back", "resolution": 256}))
    why = finishing.impossible(still.result, "render")
    assert "holds no live copy of this model" in why


def test_a_submit_whose_answer_was_lost_is_never_resent(sandbox_server, source):
    set_faults(sandbox_server, {"drop_after_receive": "submit"})
    job = run(ask(source, "optimize", {"preset": "low"}))
    assert job.state == State.NEEDS_ATTENTION
    assert "not resent" in job.failure_reason
    for _ in range(3):
        tasks.dispatch()
    # The upstream took it once (and charged it); a person decides, with the hold kept.
    assert len([t for t in upstream_tasks(sandbox_server) if t["provider"] == "optimize"]) == 1
    assert ledger(job) == [("hold", -10)]


def test_one_form_token_asks_once(sandbox_server, source):
    token = uuid.uuid4()
    first = finishing.request(source, "optimize", {"preset": "low"}, source.owner, token)
    second = finishing.request(source, "optimize", {"preset": "low"}, source.owner, token)
    assert first.pk == second.pk
    assert LedgerEntry.objects.filter(conversion__isnull=False, kind="hold").count() == 1


def test_the_ledger_and_the_wallet_agree_after_a_mixed_run(sandbox_server, source):
    before = wallet(sandbox_server) - LedgerEntry.objects.aggregate(s=Sum("amount"))["s"]
    jobs = [run(ask(source, "optimize", {"preset": "low"}))]
    set_faults(sandbox_server, {"fail_rate": 1.0})
    jobs.append(run(ask(source, "remesh", {"polygons": "quads"})))
    set_faults(sandbox_server, {"quirks": {"finished_no_asset_rate": 1.0}})
    jobs.append(run(ask(source, "texture", {"prompt": "chrome"})))
    set_faults(sandbox_server, {})
    jobs.append(run(ask(source, "render", {"output": "video", "angle": "turntable_8"})))
    assert [j.state for j in jobs] == [State.FINISHED, State.FAILED, State.FAILED, State.FINISHED]
    ours = LedgerEntry.objects.aggregate(s=Sum("amount"))["s"]
    # Holds are all released: what remains is charges minus refunds, as the upstream's.
    assert wallet(sandbox_server) == before + ours
    assert ours == -35 - 10 - 20  # the generation, the optimize, the render


def test_tencent_texture_edit_is_refused_in_words_for_our_private_files(sandbox_server, source):
    with pytest.raises(finishing.FinishingRefused, match="public URL of an FBX") as refused:
        ask(source, "texture", {"engine": "tencent", "prompt": "weathered oak"})
    assert "Tripo's texture edit uploads our file instead" in refused.value.message
    assert not Conversion.objects.exists()


@pytest.mark.parametrize(("provider", "noted"), [("hunyuan_pro", True), ("tripo_v3", False)])
def test_the_texture_edit_form_of_a_hunyuan_model_says_why_it_is_tripos(
    client, member, settings, tmp_path, provider, noted
):
    from tests.test_reviews_support import make_finished

    settings.MEDIA_ROOT = tmp_path / "media"
    generation = make_finished(member, "a stone lantern", provider=provider)
    client.force_login(member)
    page = client.get(reverse("generations:detail", args=[generation.pk])).content.decode()
    texture = page.split('id="finish-texture"')[1].split("</details>")[0]
    assert 'action="' in texture  # the form is offered
    line = "Tencent's texture edit needs a public FBX URL; Tripo's texture edit uploads our file instead."
    assert (line in texture) is noted
