"""The production shape on one machine: every tier a separate process, media in S3.

gunicorn (2 workers) serves the dashboard, 3 Celery worker processes run the
pipeline, 2 beat schedulers both ring the dispatcher, PostgreSQL and Redis are
shared, media lives in a bucket served by moto in server mode on loopback, and
the sandbox stands in for the upstream.

Two beats are safe by design, not by luck: the dispatcher hands a step out only
through a conditional UPDATE on the row's state and due time (``_claim_step``),
and every task swaps that claim token before acting, so a second dispatcher (or
a second delivery) finds nothing to do. This test checks the consequence: each
generation submitted exactly once and each result stored exactly once.
"""

import hashlib
import io
import re

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generations import ratelimit
from generations.images import clean_upload
from generations.models import Asset, Generation, ReferenceImage, State
from tests.mixed_jobs import JOBS, queue_mixed
from tests.processes import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

N = 50
TIME_SCALE = 0.02
RATE = 60  # calls per window, the sandbox's limit and ours
WINDOW = 6  # seconds


def reference_image():
    image = Image.new("RGB", (256, 256), "white")
    image.paste((200, 40, 40), (64, 80, 192, 176))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return clean_upload(SimpleUploadedFile("ref.png", buffer.getvalue()))


@pytest.fixture
def stack(tmp_path, settings):
    stack = Stack(
        tmp_path,
        time_scale=TIME_SCALE,
        rate_limit=RATE,
        sandbox_args=["--rate-window", str(WINDOW)],
        extra_env={
            "UPSTREAM_RATE_WINDOW": str(WINDOW),
            "UPSTREAM_RATE_LIMIT": str(RATE),
            "DISPATCH_INTERVAL": "0.2",
            "SWEEP_INTERVAL": "1",
        },
    )
    settings.MEDIA_ROOT = stack.media
    try:
        yield stack
    finally:
        stack.stop()


def settled(pks):
    rows = Generation.objects.filter(pk__in=pks)
    return all(g.is_final or g.state == State.NEEDS_ATTENTION for g in rows)


def login(web_url, username, password):
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{web_url}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{web_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{web_url}/accounts/login/"},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text[:500]
    return session


def test_fifty_generations_run_through_every_tier_with_media_in_s3(stack, settings, member):
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    ratelimit.get_limiter().reset()
    stack.start_sandbox()
    stack.start_s3()
    # This process writes the reference images, so it uses the bucket too.
    settings.STORAGES = stack.s3_storages()
    for i in range(3):
        stack.start_worker(f"worker{i}", concurrency=2)
    stack.start_beat("beat0")
    stack.start_beat("beat1")
    stack.start_web(workers=2)

    image = reference_image()
    generations = [queue_mixed(member, i, image) for i in range(N)]
    pks = [g.pk for g in generations]
    wait_for(lambda: settled(pks), 300, interval=0.5, message="all 50 generations")

    rows = list(Generation.objects.filter(pk__in=pks).order_by("pk"))
    unfinished = [(g.pk, g.provider, g.state, g.attention_reason) for g in rows if g.state != "finished"]  # fmt: skip
    assert unfinished == [], stack.log_text("worker0")[-3000:]
    assert {g.provider for g in rows} == {job[0] for job in JOBS}

    # Each generation submitted exactly once, with two beats dispatching.
    submits = stack.submits()
    assert len(submits) == N
    assert len({g.upstream_task_id for g in rows}) == N

    # The rate budget: no 429, never more than RATE counted calls in any window.
    log = stack.sandbox_log()
    assert [e for e in log if e["status"] == 429] == []
    times = sorted(e["time"] for e in log if e.get("counted"))
    busiest = max(sum(1 for t in times if start <= t < start + WINDOW) for start in times)
    assert busiest <= RATE
    print(
        f"\nproduction shape: {N} finished, {len(submits)} submits, {len(times)} counted calls "
        f"({len(times) / N:.2f} per generation), busiest {WINDOW}s window {busiest}/{RATE}"
    )

    # Every finished generation gets its picture (the upstream's thumbnail, or a poster a
    # worker draws after ingest): wait for them, so the bucket is listed once nothing moves.
    wait_for(
        lambda: (
            Asset.objects.filter(generation__in=pks, role=Asset.Role.THUMBNAIL)
            .values("generation")
            .distinct()
            .count()
            == N
        ),
        120,
        interval=0.5,
        message="a picture of every generation",
    )

    # Every stored file is in the bucket, and nothing else is: a duplicated ingest
    # would leave a second object; a local write would show under the media root.
    s3 = stack.s3_client()
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="studio-media"):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    assets = list(Asset.objects.filter(generation__in=pks))
    images = list(ReferenceImage.objects.filter(generation__in=pks))
    assert {a.file.name for a in assets} | {i.file.name for i in images} == keys
    assert len({(a.generation_id, a.original_name) for a in assets}) == len(assets)
    assert all(g.glb_asset is not None for g in rows)
    assert not (stack.media / "assets").exists()
    for asset in assets[:5]:
        body = s3.get_object(Bucket="studio-media", Key=asset.file.name)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == asset.sha256

    # The web tier reads the bucket: pages and downloads through gunicorn.
    session = login(stack.web_url, "member", "pw-member")
    trellis = next(g for g in rows if g.provider == "trellis2")
    page = session.get(f"{stack.web_url}{reverse('generations:detail', args=[trellis.pk])}")
    assert page.status_code == 200 and "<model-viewer" in page.text
    for generation in (rows[0], trellis, rows[-1]):
        model = generation.glb_asset
        url = reverse("generations:asset", args=[generation.pk, model.pk])
        download = session.get(f"{stack.web_url}{url}", timeout=30)
        assert download.status_code == 200
        assert download.content[:4] == b"glTF"
        assert hashlib.sha256(download.content).hexdigest() == model.sha256
    reference = ReferenceImage.objects.filter(generation=trellis).first()
    url = reverse("generations:reference-image", args=[trellis.pk, reference.pk])
    shown = session.get(f"{stack.web_url}{url}", timeout=30)
    assert shown.status_code == 200 and shown.content[:4] in (
        b"\x89PNG",
        b"RIFF",
        b"\xff\xd8\xff\xe0",
    )
    outsider = requests.get(f"{stack.web_url}{url}", timeout=10, allow_redirects=False)
    assert outsider.status_code == 302  # private: no login, no bytes
