"""Measure how much a process's resident memory grows handling a 200 MB asset.

Each measurement runs in a fresh child process so nothing else shares its
memory: (1) the ingest download of a 200 MB result from the sandbox (fault
``oversized_asset_mb``: the real GLB, then zero padding); (2) the facts of a
real 200 MB GLB (a 3.7M-vertex mesh with normals, UVs, indices and a texture);
(3) the whole ingest of that real GLB as the pipeline runs it: download over
HTTP, GLB check, facts, store into S3 (moto in server mode on loopback); (4) the
store step moving a 200 MB file into S3; and (5) downloads of 200 MB objects
through the authorised view, from S3 (the real model and the padded file) and
from local disk. Growth is the peak resident set (VmHWM, reset just before
through /proc/self/clear_refs) minus the resident set right before. The target
is at most 64 MB each.

The oversized result of (1) is padded past its GLB header's length, so the
ingest streams all 200 MB to a temporary file and then refuses it as "padded".
The real GLB of (2) and (3) is written by this script and served from a plain
HTTP server on loopback, which the child takes for the sandbox (SANDBOX_URL) so
the URL checks let it through.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_s3_mem \\
    REDIS_URL=redis://127.0.0.1:6379/7 CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python tests/bench/bench_memory.py
"""

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


def child_facts(path):
    """The check and facts steps on a real 200 MB GLB."""
    import django

    django.setup()
    from generations import ingest

    started = time.monotonic()
    with Growth() as growth:
        ingest.check_glb(Path(path))
        facts = ingest.glb_facts(Path(path))
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "hwm_reset": growth.reset, "facts": _summary(facts)}  # fmt: skip


def child_ingest_real(url, generation_id):
    """The pipeline's ingest of a real 200 MB GLB: download, check, facts, store."""
    import django

    django.setup()
    from generations import ingest

    setup_mb = warm_storage()
    started = time.monotonic()
    with Growth() as growth:
        downloaded = ingest.download(url)
        facts = ingest.glb_facts(downloaded.path)
        name = ingest.store(downloaded.path, int(generation_id), downloaded.format)
    return {"growth_mb": growth.mb, "seconds": round(time.monotonic() - started, 1),
            "name": name, "bytes": downloaded.bytes, "facts": _summary(facts),
            "hwm_reset": growth.reset, "client_setup_mb": setup_mb}  # fmt: skip


def _summary(facts):
    return {k: facts[k] for k in ("vertices", "faces", "dimensions")} | {
        "textures": len(facts["textures"])
    }


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


# --- a real 200 MB GLB ---------------------------------------------------------------------


def write_real_glb(path, size_mb=SIZE_MB):
    """A grid mesh of about ``size_mb`` MB (positions, normals, UVs, uint32 indices) with a
    PNG texture, written row by row so the parent never holds it whole."""
    import io
    import struct

    import numpy as np
    from PIL import Image

    n = int((size_mb * 1024 * 1024 / 56) ** 0.5)  # 32 bytes per vertex, 24 per quad
    texture = io.BytesIO()
    Image.radial_gradient("L").resize((1024, 1024)).convert("RGB").save(texture, "PNG")
    png = texture.getvalue() + b"\0" * (-len(texture.getvalue()) % 4)
    sizes = {"position": n * n * 12, "normal": n * n * 12, "uv": n * n * 8,
             "index": (n - 1) ** 2 * 24, "png": len(png)}  # fmt: skip
    offsets, body = {}, 0
    for key, size in sizes.items():
        offsets[key] = body
        body += size
    extent = 10.0

    def view(key):
        return {"buffer": 0, "byteOffset": offsets[key], "byteLength": sizes[key]}

    document = {
        "asset": {"version": "2.0"},
        "buffers": [{"byteLength": body}],
        "bufferViews": [view(k) for k in sizes],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": n * n,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [extent, 0.5, extent],
            },
            {"bufferView": 1, "componentType": 5126, "count": n * n, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": n * n, "type": "VEC2"},
            {"bufferView": 3, "componentType": 5125, "count": (n - 1) ** 2 * 6, "type": "SCALAR"},
        ],  # fmt: skip
        "images": [{"bufferView": 4, "mimeType": "image/png"}],
        "textures": [{"source": 0}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
                        "indices": 3,
                        "material": 0,
                    }
                ]
            }
        ],  # fmt: skip
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    grid = np.linspace(0, extent, n, dtype=np.float32)
    with open(path, "wb") as out:
        out.write(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + 8 + body))
        out.write(struct.pack("<I4s", len(text), b"JSON") + text)
        out.write(struct.pack("<I4s", body, b"BIN\0"))
        for row in range(n):  # positions: a gentle wave between 0 and 0.5 high
            height = (0.25 + 0.25 * np.sin(grid + row / n * 6.28)).astype(np.float32)
            out.write(np.column_stack([grid, height, np.full(n, grid[row])]).tobytes())
        up = np.tile(np.array([0, 1, 0], dtype=np.float32), n).tobytes()
        for _ in range(n):
            out.write(up)
        for row in range(n):
            out.write(np.column_stack([grid / extent, np.full(n, row / n, np.float32)]).tobytes())
        first = np.arange(n - 1, dtype=np.uint32)
        for row in range(n - 1):
            a = first + row * n
            quads = np.column_stack([a, a + n, a + 1, a + 1, a + n, a + n + 1])
            out.write(quads.astype(np.uint32).tobytes())
        out.write(png)
    return path


def serve_directory(directory):
    """A plain HTTP file server on loopback, in a thread of this (the parent) process."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


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
    files = None
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

        (tmp / "files").mkdir()
        glb = write_real_glb(tmp / "files" / "model.glb")
        files = serve_directory(glb.parent)
        files_url = f"http://127.0.0.1:{files.server_address[1]}"

        results = {}
        results["ingest download (sandbox -> temp file)"] = run_child(env, "ingest", url)
        results["ingest facts (real 200 MB GLB)"] = run_child(env, "facts", glb)
        real = run_child(
            {**env, "SANDBOX_URL": files_url},
            "ingest_real",
            f"{files_url}/model.glb",
            generation.pk,
        )
        results["ingest real GLB (HTTP -> facts -> S3)"] = real
        real_asset = Asset.objects.create(
            generation=generation, role="model", file=real["name"], format="glb",
            bytes=real["bytes"], sha256="-", original_name="bench:real",
        )  # fmt: skip
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
            ("download view (S3 -> client), real GLB", real_asset, env),
            ("download view (S3 -> client)", s3_asset, env),
            ("download view (local disk -> client)", local_asset, local_env),
        ]:
            path = reverse("generations:asset", args=[generation.pk, asset.pk])
            results[label] = run_child(child_env, "download", user.pk, path)
    finally:
        stack.stop()
        if files is not None:
            files.shutdown()
        shutil.rmtree(tmp / "files", ignore_errors=True)

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
            "ingest_real": child_ingest_real,
            "store": child_store,
            "download": child_download,
        }[kind](*args)
        print(json.dumps(result))
    else:
        sys.exit(main())
