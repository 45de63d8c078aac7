"""The `studio` command, as installed, against a live dashboard: gunicorn, Celery workers,
the dispatcher and the sandbox, each a real process talking over loopback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from api.models import ApiToken
from generations.models import ConceptJob, Generation, State
from tests.processes import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
STUDIO = Path(sys.executable).with_name("studio")  # the console script pyproject installs


@pytest.fixture
def stack(tmp_path, settings):
    stack = Stack(tmp_path)
    settings.MEDIA_ROOT = stack.media
    try:
        yield stack
    finally:
        stack.stop()


def studio(stack, token, *args, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update(STUDIO_URL=stack.web_url, STUDIO_TOKEN=token)
    return subprocess.run(
        [str(STUDIO), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_generate_wait_out_puts_a_valid_glb_on_disk(stack, member, tmp_path):
    stack.start()
    stack.start_web()
    _token, secret = ApiToken.objects.issue(member, "cli e2e")
    folder = tmp_path / "models"

    done = studio(
        stack, secret, "generate", "a golden robot", "--option", "enable_pbr=true",
        "--wait", "--out", str(folder),
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr, stack.log_text("worker0"))
    generation = Generation.objects.get()
    assert generation.state == State.FINISHED and generation.owner == member
    assert generation.options["enable_pbr"] is True
    path = folder / f"generation-{generation.pk}.glb"
    assert done.stdout.strip() == str(path)
    assert not list(folder.glob("*.part"))
    scene = trimesh.load(path, file_type="glb", force="scene")
    assert len(scene.geometry) >= 1
    assert path.read_bytes() == Path(generation.glb_asset.file.path).read_bytes()
    assert "100%" in done.stderr  # the progress bar reached the end
    assert len(stack.submits()) == 1

    listed = studio(stack, secret, "status")
    assert listed.returncode == 0 and str(generation.pk) in listed.stdout
    again = studio(stack, secret, "download", str(generation.pk), "--out", str(tmp_path / "again"))
    assert again.returncode == 0
    assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes()


def test_a_revoked_token_is_told_so(stack, member):
    stack.start_web()
    token, secret = ApiToken.objects.issue(member, "cli e2e")
    token.revoke()
    refused = studio(stack, secret, "status")
    assert refused.returncode == 1
    assert "revoked" in refused.stderr


def test_batch_wait_out_queues_every_row_and_unpacks_their_models(stack, member, tmp_path):
    stack.start()
    stack.start_web()
    _token, secret = ApiToken.objects.issue(member, "cli e2e")
    sheet = tmp_path / "props.csv"
    sheet.write_text("prompt,provider,enable_pbr\na barrel,hunyuan_rapid,true\na lamp,,\n")
    folder = tmp_path / "models"
    done = studio(stack, secret, "batch", str(sheet), "--wait", "--out", str(folder))
    assert done.returncode == 0, (done.stdout, done.stderr, stack.log_text("worker0"))
    paths = [Path(line) for line in done.stdout.split()]
    generations = list(Generation.objects.order_by("pk"))
    assert [p.name for p in paths] == [
        f"row-{n:03d}-generation-{g.pk}.glb" for n, g in enumerate(generations, 1)
    ]
    for path, generation in zip(paths, generations, strict=True):
        assert generation.state == State.FINISHED
        assert path.read_bytes() == Path(generation.glb_asset.file.path).read_bytes()
    assert not list(folder.glob("*.zip*"))


def upstream_jobs(stack):
    """Every job the sandbox was asked for: images, models and finishing steps."""
    return [
        e for e in stack.sandbox_log() if e["method"] == "POST" and e["path"].startswith("/v1/")
    ]


def test_concept_then_model_then_finish_each_wait_and_download(stack, member, tmp_path):
    """Images first, a pick made a model, and a finishing step, each one command with
    --wait --out, through the real pipeline: images, a GLB and a new version on disk."""
    stack.start()
    stack.start_web()
    _token, secret = ApiToken.objects.issue(member, "cli e2e")

    drawn = studio(
        stack, secret, "concept", "a brass owl lamp", "--model", "gemini_25_flash",
        "--count", "2", "--wait", "--out", str(tmp_path / "concepts"),
    )  # fmt: skip
    assert drawn.returncode == 0, (drawn.stdout, drawn.stderr, stack.log_text("worker0"))
    job = ConceptJob.objects.get()
    assert job.state == State.FINISHED and job.images.count() == 2
    paths = [Path(line) for line in drawn.stdout.split()]
    images = list(job.images.all())
    extension = {"jpeg": "jpg"}
    assert [p.name for p in paths] == [
        f"concept-{job.pk}-{i.pk}.{extension.get(i.format, i.format)}" for i in images
    ]
    assert paths[1].read_bytes() == Path(images[1].file.path).read_bytes()
    assert len(upstream_jobs(stack)) == 1

    modelled = studio(
        stack, secret, "concept-model", str(job.pk), "--pick", str(images[1].pk),
        "--provider", "hunyuan_rapid", "--wait", "--out", str(tmp_path / "models"),
    )  # fmt: skip
    assert modelled.returncode == 0, (modelled.stderr, stack.log_text("worker0"))
    generation = Generation.objects.get()
    assert generation.state == State.FINISHED and generation.mode == "image"
    assert generation.concept_picks.get().image == images[1]
    model = tmp_path / "models" / f"generation-{generation.pk}.glb"
    assert modelled.stdout.strip() == str(model)
    assert len(trimesh.load(model, file_type="glb", force="scene").geometry) >= 1

    finished = studio(
        stack, secret, "finish", str(generation.pk), "remesh", "--option", "polygons=quads",
        "--wait", "--out", str(tmp_path / "finished"),
    )  # fmt: skip
    assert finished.returncode == 0, (finished.stderr, stack.log_text("worker0"))
    version = Generation.objects.get(previous_version=generation)
    path = tmp_path / "finished" / f"generation-{version.pk}.glb"
    assert finished.stdout.strip() == str(path)
    assert path.read_bytes() == Path(version.glb_asset.file.path).read_bytes()
    assert len(upstream_jobs(stack)) == 3  # one each: nothing was sent twice

    refused = studio(stack, secret, "finish", str(generation.pk), "polish")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "No such finishing step."
