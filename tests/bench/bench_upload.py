"""Measure how much a process's resident memory grows uploading a 200 MB model to the sandbox.

A finishing step (remesh, texture edit, optimize; repair once the model's URL expired)
sends our stored GLB as a multipart upload. Each measurement runs in a fresh child
process, in the style of bench_memory.py (peak resident set, VmHWM reset through
/proc/self/clear_refs, minus the resident set right before):

- "streamed": the client as it is (``UpstreamClient.submit`` with the opener
  ``finishing.build`` makes), from local disk and from S3 (moto in server mode);
- "whole file (before)": the way it was sent before, reproduced here: the stored file
  read into bytes, then requests' own multipart encoding (``files=``), which builds the
  whole body in memory a second time.

The sandbox runs as its own process (its memory is not counted) and answers each
upload with a task id. The GLB is a real one (bench_memory.write_real_glb), 199 MB: the
upstream refuses files over 200 MiB.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_h4 \\
    REDIS_URL=redis://127.0.0.1:6379/0 CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python tests/bench/bench_upload.py
"""

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_dashboard.settings")

from tests.bench.bench_memory import TARGET_MB, Growth, warm_storage, write_real_glb  # noqa: E402

SIZE_MB = 199
ENDPOINT = "/v1/tools/optimize/"
BODY = {"preset": "low"}


def _stored(name):
    """The stored file as an asset's ``file`` field holds it."""
    from django.db.models.fields.files import FieldFile

    from generations.models import Asset

    return FieldFile(None, Asset._meta.get_field("file"), name)


def _client():
    from django.conf import settings

    from generations.upstream import UpstreamClient

    # A 200 MB body takes longer than the pipeline's read timeout to reach a loopback server
    # that parses it before answering.
    return UpstreamClient(settings.UPSTREAM_BASE_URL, settings.UPSTREAM_API_KEY, read_timeout=120)


def child_streamed(name):
    import django

    django.setup()
    from generations import storage

    setup_mb = warm_storage()
    client = _client()
    opener = functools.partial(storage.open_stream, _stored(name))
    started = time.monotonic()
    with Growth() as growth:
        submitted = client.submit(ENDPOINT, BODY, upload=("model_file", "model.glb", opener))
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "task": submitted.task_id[:8], "hwm_reset": growth.reset,
            "client_setup_mb": setup_mb}  # fmt: skip


def child_whole(name):
    """The upload as it was before streaming: ``fh.read()``, then requests' ``files=``."""
    import django

    django.setup()
    from django.conf import settings

    from generations.upstream import Answer

    setup_mb = warm_storage()
    client = _client()
    started = time.monotonic()
    with Growth() as growth:
        with _stored(name).open("rb") as fh:
            data = fh.read()
        response = client.session.post(
            client.base_url + ENDPOINT,
            data=BODY,
            files={"model_file": ("model.glb", data, "application/octet-stream")},
            headers={"Authorization": f"Bearer {settings.UPSTREAM_API_KEY}"},
            timeout=client.timeout,
        )
        task = Answer(response).json().get("task_id", "")
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "task": task[:8], "hwm_reset": growth.reset, "client_setup_mb": setup_mb}  # fmt: skip


def child_store(path):
    """Put the GLB into the storage the child is configured for; its storage name."""
    import django

    django.setup()
    from generations import ingest

    copy = Path(tempfile.mkstemp(dir=ingest.incoming_dir(), suffix=".part")[1])
    shutil.copyfile(path, copy)
    return {"name": ingest.store(copy, 1, "glb")}


def run_child(env, *args):
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    import django

    django.setup()
    from tests.processes import Stack

    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    stack = Stack(tmp, time_scale=0.01)
    try:
        stack.start_sandbox()
        local_env = {**stack.env(), "ASSET_MAX_BYTES": str(2 * SIZE_MB * 1024 * 1024)}
        stack.start_s3()
        s3_env = {**stack.env(), "ASSET_MAX_BYTES": str(2 * SIZE_MB * 1024 * 1024)}
        glb = write_real_glb(tmp / "model.glb", size_mb=SIZE_MB)
        size = glb.stat().st_size
        local = run_child(local_env, "store", glb)["name"]
        in_s3 = run_child(s3_env, "store", glb)["name"]
        results = {
            "streamed, local disk -> sandbox": run_child(local_env, "streamed", local),
            "streamed, S3 -> sandbox": run_child(s3_env, "streamed", in_s3),
            "whole file (before), local disk -> sandbox": run_child(local_env, "whole", local),
        }
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"Resident memory growth uploading a {size / 1e6:.0f} MB GLB (target <= {TARGET_MB} MB):")
    for label, result in results.items():
        extra = {k: v for k, v in result.items() if k not in ("growth_mb", "hwm_reset")}
        verdict = "ok" if result["growth_mb"] <= TARGET_MB else "OVER"
        print(f"  {label:44s} {result['growth_mb']:7.1f} MB  {verdict}  {extra}")
    streamed = max(r["growth_mb"] for k, r in results.items() if k.startswith("streamed"))
    return 0 if streamed <= TARGET_MB else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *args = sys.argv[2:]
        result = {"streamed": child_streamed, "whole": child_whole, "store": child_store}[kind](
            *args
        )
        print(json.dumps(result))
    else:
        sys.exit(main())
