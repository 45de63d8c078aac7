"""Measure how much a process's resident memory grows handling a 200 MB asset.

Three measurements, each in a fresh child process so nothing else shares its
memory: (1) the ingest download of a 200 MB result from the sandbox (fault
``oversized_asset_mb``: the real GLB, then zero padding), (2) the store step
moving a 200 MB file into S3 (moto in server mode on loopback), and (3) a
download of that 200 MB object through the authorised view, plus the same
download from local disk. Growth is the peak resident set (VmHWM, reset just
before through /proc/self/clear_refs) minus the resident set right before. The
target is at most 64 MB each.

The oversized result is padded past its GLB header's length, so the ingest
streams all 200 MB to a temporary file and then refuses it as "padded": what is
measured is the download path (streaming, hashing, size cap, GLB check), not
the storing of a 200 MB model, which step (2) measures separately.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_s3_mem \\
    REDIS_URL=redis://127.0.0.1:6379/7 CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python tests/bench/bench_memory.py
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_dashboard.settings")

SIZE_MB = 200
TARGET_MB = 64


# --- measuring ------------------------------------------------------------------------------


def _status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MB
    raise RuntimeError(f"no {field} in /proc/self/status")


class Growth:
    """Peak resident memory above the starting point while the block runs, in MB."""

    def __enter__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self.reset = True
        except OSError:
            self.reset = False  # then VmHWM may include an earlier peak: an overestimate
        self.before = _status("VmRSS")
        return self

    def __exit__(self, *exc):
        self.peak = _status("VmHWM")
        self.mb = round(self.peak - self.before, 1)
        return False


# --- the children ---------------------------------------------------------------------------


def child_ingest(url):
    import django

    django.setup()
    from generations import ingest

    started = time.monotonic()
    with Growth() as growth:
        try:
            downloaded = ingest.download(url)
            outcome = f"stored to temp ({downloaded.bytes} bytes)"
            downloaded.path.unlink()
        except ingest.AssetRefused as exc:
            outcome = f"refused after download: {exc}"
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "outcome": outcome, "hwm_reset": growth.reset}  # fmt: skip


def child_facts():
    """The facts step on a valid 200 MB GLB (a JSON chunk, then a 200 MB binary chunk)."""
    import struct

    import django

    django.setup()
    from generations import ingest

    body = SIZE_MB * 1024 * 1024
    gltf = json.dumps({"asset": {"version": "2.0"}, "buffers": [{"byteLength": body}]}).encode()
    gltf += b" " * (-len(gltf) % 4)
    fd, tmp = tempfile.mkstemp(dir=ingest.incoming_dir(), suffix=".glb")
    with os.fdopen(fd, "wb") as out:
        out.write(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(gltf) + 8 + body))
        out.write(struct.pack("<I4s", len(gltf), b"JSON") + gltf)
        out.write(struct.pack("<I4s", body, b"BIN\0"))
        for _ in range(SIZE_MB):
            out.write(b"\0" * (1024 * 1024))
    started = time.monotonic()
    try:
        with Growth() as growth:
            ingest.check_glb(Path(tmp))
            ingest.glb_facts(Path(tmp))
    finally:
        os.unlink(tmp)
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "hwm_reset": growth.reset}  # fmt: skip


def warm_storage():
    """Create the S3 client first: loading botocore's service models is a one-off per process."""
    from django.core.files.storage import default_storage

    with Growth() as setup:
        getattr(default_storage, "bucket", None)
    return setup.mb


def child_store(generation_id):
    import django

    django.setup()
    from generations import ingest

    setup_mb = warm_storage()

    fd, tmp = tempfile.mkstemp(dir=ingest.incoming_dir(), suffix=".part")
    with os.fdopen(fd, "wb") as out:
        block = b"glTF" + b"\0" * (1024 * 1024 - 4)
        for _ in range(SIZE_MB):
            out.write(block)
    started = time.monotonic()
    with Growth() as growth:
        name = ingest.store(Path(tmp), int(generation_id), "glb")
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "name": name, "hwm_reset": growth.reset, "client_setup_mb": setup_mb}  # fmt: skip


def child_download(user_id, url):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=user_id))
    client.get("/accounts/login/")  # warm the URL resolver and templates
    setup_mb = warm_storage()
    started = time.monotonic()
    received = 0
    with Growth() as growth:
        response = client.get(url)
        for chunk in response.streaming_content:
            received += len(chunk)
        response.close()
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "status": response.status_code, "bytes": received, "hwm_reset": growth.reset,
            "client_setup_mb": setup_mb}  # fmt: skip


# --- the parent -----------------------------------------------------------------------------


def fresh_database():
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    name = url.rsplit("/", 1)[-1]
    if not url.startswith("postgres") or not name.startswith("studio_s3_mem"):
        sys.exit(
            "Set DATABASE_URL to a PostgreSQL database named studio_s3_mem* (it is recreated)."
        )
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def run_child(env, *args):
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def sandbox_result_url(stack):
    import requests

    from tests.processes import SANDBOX_KEY, wait_for

    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    task = requests.post(
        f"{stack.sandbox_url}/v1/3d-models/tencent/generate/pro/",
        json={"prompt": "a large stone statue", "model": "3.0"}, headers=headers, timeout=10,
    ).json()["task_id"]  # fmt: skip

    def finished():
        status = requests.get(
            f"{stack.sandbox_url}/v1/generation-request/{task}/status/", headers=headers, timeout=10
        ).json()
        urls = [r.get("asset") for r in status.get("results") or [] if r.get("asset")]
        return status["status"] == "FINISHED" and [u for u in urls if ".glb" in u]

    return wait_for(finished, 60, interval=0.5, message="the sandbox task")[0]


def main():
    fresh_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from generations.models import Asset, Generation, State
    from tests.processes import Stack

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    stack = Stack(tmp, time_scale=0.01)
    try:
        stack.start_sandbox()
        stack.start_s3()
        env = {**stack.env(), "ASSET_MAX_BYTES": str(2 * SIZE_MB * 1024 * 1024)}
        local_env = {k: v for k, v in env.items() if not k.startswith("S3_")}
        url = sandbox_result_url(stack)
        stack.set_faults({"oversized_asset_mb": SIZE_MB})

        user = get_user_model().objects.create_user("bench-memory", password="x", is_staff=True)
        generation = Generation.objects.create(
            owner=user, provider="hunyuan_pro", prompt="a large stone statue",
            credit_estimate=60, state=State.FINISHED, progress=100,
        )  # fmt: skip

        results = {}
        results["ingest download (sandbox -> temp file)"] = run_child(env, "ingest", url)
        results["ingest facts (valid 200 MB GLB)"] = run_child(env, "facts")
        stored = run_child(env, "store", generation.pk)
        results["store (temp file -> S3 multipart upload)"] = stored
        s3_asset = Asset.objects.create(
            generation=generation, role="model", file=stored["name"], format="glb",
            bytes=SIZE_MB * 1024 * 1024, sha256="-", original_name="bench:s3",
        )  # fmt: skip
        local_name = run_child(local_env, "store", generation.pk)["name"]
        local_asset = Asset.objects.create(
            generation=generation, role="converted", file=local_name, format="glb",
            bytes=SIZE_MB * 1024 * 1024, sha256="-", original_name="bench:local",
        )  # fmt: skip
        for label, asset, child_env in [
            ("download view (S3 -> client)", s3_asset, env),
            ("download view (local disk -> client)", local_asset, local_env),
        ]:
            path = reverse("generations:asset", args=[generation.pk, asset.pk])
            results[label] = run_child(child_env, "download", user.pk, path)
    finally:
        stack.stop()

    print(f"Resident memory growth handling a {SIZE_MB} MB asset (target <= {TARGET_MB} MB):")
    worst = 0.0
    for label, result in results.items():
        worst = max(worst, result["growth_mb"])
        extra = {k: v for k, v in result.items() if k not in ("growth_mb", "name", "hwm_reset")}
        verdict = "ok" if result["growth_mb"] <= TARGET_MB else "OVER"
        print(f"  {label:42s} {result['growth_mb']:7.1f} MB  {verdict}  {extra}")
    print(f"worst: {worst:.1f} MB")
    return 0 if worst <= TARGET_MB else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *args = sys.argv[2:]
        result = {
            "ingest": child_ingest,
            "facts": child_facts,
            "store": child_store,
            "download": child_download,
        }[kind](*args)
        print(json.dumps(result))
    else:
        sys.exit(main())
