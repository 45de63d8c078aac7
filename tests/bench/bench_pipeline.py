"""Benchmark the pipeline against the sandbox at a given rate limit and time scale.

Runs N mixed generations (Rapid text, Pro text, Tripo text, TRELLIS image)
through real Celery workers, beat and the sandbox, once with our planner and
once with a fixed-interval polling baseline, and prints per run: upstream calls
per finished generation, 429 answers, makespan against the bound
max(2N/R, longest job), and the delay from the upstream finishing to us seeing
it (detected: the poll that found it; visible: stored and shown), as a share of
the generation's duration.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_pbench \\
    REDIS_URL=redis://127.0.0.1:6379/9 CELERY_BROKER_URL=redis://127.0.0.1:6379/9 \\
    .venv/bin/python tests/bench/bench_pipeline.py --n 20 --rate 3 --time-scale 0.1

Durations, the rate window and poll intervals are all multiplied by the time
scale (a 60 s window becomes 6 s at 0.1), so the figures compare as at full scale;
only our own processing time (download, checks, conversion) is not scaled.

The ``fairness`` run (issue 17's fair turns): member A queues a ``--batch``-item
batch, then, half a rate window later, member B queues one generation; it prints
how many rate windows B's generation waited for its submit (target: at most two),
with calls per generation and makespan for the whole (targets as above):

    ... tests/bench/bench_pipeline.py --modes fairness --batch 60 --rate 3 --time-scale 0.1

The clock starts once every worker and the dispatcher are up (a deployment's
processes are running before members arrive): process start-up is neither
scaled nor part of the pipeline. ``--detail`` prints each generation's timeline.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_dashboard.settings")


def fresh_database():
    """The benchmark owns its database: drop and create it, so every run starts cold."""
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not url.rsplit("/", 1)[1].startswith("studio_pbench"):
        sys.exit(
            "Set DATABASE_URL to a PostgreSQL database named studio_pbench* (it is recreated)."
        )
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


fresh_database()

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from PIL import Image  # noqa: E402

from generations.images import clean_upload  # noqa: E402
from generations.models import Generation  # noqa: E402
from ops.models import Heartbeat  # noqa: E402
from tests.mixed_jobs import queue_mixed  # noqa: E402
from tests.processes import Stack, wait_for  # noqa: E402


def reference_image():
    image = Image.new("RGB", (512, 512), "white")
    for x in range(128, 384):
        for y in range(160, 352):
            image.putpixel((x, y), (200, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return clean_upload(SimpleUploadedFile("ref.png", buffer.getvalue()))


def _up(since, workers):
    """Every worker has started and the dispatcher has run since ``since``."""
    beats = Heartbeat.objects.filter(beat_at__gte=since)
    return (
        beats.filter(name__startswith="worker:").count() >= workers
        and beats.filter(name="dispatcher").exists()
    )


def run(mode, args, owner, image):
    scale = args.time_scale
    window = 60 * scale
    fairness = mode == "fairness"
    env = {
        "PLANNER_MODE": "adaptive" if fairness else mode.removesuffix("-solo"),
        "FIXED_POLL_INTERVAL": str(10 * scale),
        "UPSTREAM_RATE_WINDOW": str(window),
        "UPSTREAM_RATE_LIMIT": str(args.rate),
        "DISPATCH_INTERVAL": str(max(0.1, 2 * scale)),
        "SWEEP_INTERVAL": str(max(1.0, 30 * scale)),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-"))
    stack = Stack(
        tmp,
        time_scale=scale,
        rate_limit=args.rate,
        sandbox_args=["--rate-window", str(window)],
        extra_env=env,
    )
    from generations import ratelimit

    ratelimit.get_limiter().reset()
    # Reference images must be where the workers look (override_settings resets the storage).
    media = override_settings(MEDIA_ROOT=stack.media)
    media.enable()
    booted = timezone.now()
    stack.start(workers=2)
    try:
        wait_for(lambda: _up(booted, workers=2), 60, interval=0.1, message="workers and dispatcher")
        started = time.time()
        generations = []
        solo = mode.endswith("-solo")
        for i in range(args.n):
            if solo and generations:  # one at a time: the budget always has room
                last = generations[-1]
                wait_for(
                    lambda g=last: (
                        Generation.objects.get(pk=g.pk).state
                        in ("finished", "failed", "needs_attention")
                    ),
                    args.timeout,
                    interval=0.2,
                )
                # With a gap of one window the budget is empty when the next one is
                # sent ("when the budget has room", the design); without one the
                # previous generation's polls still take slots in the window.
                time.sleep(args.solo_gap * window)
            generations.append(queue_mixed(owner, i, image))
        teammate = None
        if fairness:  # a teammate's one generation, queued behind the batch
            time.sleep(window / 2)
            other, _ = get_user_model().objects.get_or_create(username="bench-teammate")
            teammate = queue_mixed(other, 0, image)
            generations.append(teammate)

        def all_done():
            return all(
                g.is_final or g.state == "needs_attention"
                for g in Generation.objects.filter(pk__in=[g.pk for g in generations])
            )

        wait_for(all_done, args.timeout, interval=0.5, message="all generations")
        log = stack.sandbox_log()
        tasks = requests.get(f"{stack.sandbox_url}/_sandbox/tasks/", timeout=5).json()
        tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    finally:
        stack.stop()
        media.disable()

    upstream = {t["task_id"]: t for t in tasks}
    rows = list(Generation.objects.filter(pk__in=[g.pk for g in generations]))
    for g in rows:
        if g.state != "finished":
            print(f"  #{g.pk} {g.provider} {g.state}: {g.failure_reason or g.attention_reason}")
    finished = [g for g in rows if g.state == "finished"]
    counted = [e for e in log if e.get("counted")]
    throttled = [e for e in log if e["status"] == 429]
    if throttled:  # which calls the upstream refused, to tell whose calls broke the budget
        kinds = Counter(
            (
                e["method"],
                "status" if "/status/" in e["path"] else "/".join(e["path"].split("/")[:4]),
            )
            for e in throttled
        )
        print(f"  429 answers by call: {dict(kinds)}")
    last_visible = max(g.finished_at or g.state_changed_at for g in rows).timestamp()
    makespan = last_visible - started
    longest = max(t["finishes_at"] - t["created_at"] for t in tasks)
    bound = max(2 * len(rows) / args.rate * window, longest)
    if mode.endswith("-solo"):  # sequential by design: the bound is the sum of the jobs
        bound = sum(t["finishes_at"] - t["created_at"] for t in tasks)
    detected, visible = [], []
    for g in sorted(finished, key=lambda g: g.pk):
        task = upstream[g.upstream_task_id]
        duration = task["finishes_at"] - task["created_at"]
        detected.append((g.upstream_done_at.timestamp() - task["finishes_at"]) / duration)
        visible.append((g.finished_at.timestamp() - task["finishes_at"]) / duration)
        if args.detail:
            print(
                f"  #{g.pk:<3} {g.provider:14} submit {g.submitted_at.timestamp() - started:6.2f}"
                f"  upstream {duration:5.2f} s, done {task['finishes_at'] - started:6.2f}"
                f"  seen +{g.upstream_done_at.timestamp() - task['finishes_at']:5.2f}"
                f"  visible +{g.finished_at.timestamp() - task['finishes_at']:5.2f}"
                f"  polls {g.polls}"
            )

    def pct(values, q):
        return (
            statistics.quantiles(values, n=100, method="inclusive")[q - 1]
            if len(values) > 1
            else values[0]
        )

    if teammate is not None:
        teammate.refresh_from_db()
        waited = (teammate.submitted_at - teammate.created_at).total_seconds()
        last_batch_submit = max(g.submitted_at for g in rows if g.pk != teammate.pk)
        print(
            f"  fairness: the teammate's generation was submitted {waited / window:.2f} rate "
            f"windows after it was queued (target: at most 2); the batch's last submit came "
            f"{(last_batch_submit - teammate.submitted_at).total_seconds() / window:.1f} "
            f"windows after it"
        )
    return {
        "mode": mode,
        "finished": f"{len(finished)}/{len(rows)}",
        "calls/gen": len(counted) / max(1, len(finished)),
        "429s": len(throttled),
        "makespan": makespan,
        "bound": bound,
        "ratio": makespan / bound,
        "seen p50": statistics.median(detected),
        "seen p95": pct(detected, 95),
        "visible p50": statistics.median(visible),
        "visible p95": pct(visible, 95),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--rate", type=int, default=3, help="upstream requests per window")
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument(
        "--modes",
        default="adaptive,fixed,adaptive-solo,fixed-solo",
        help="adaptive/fixed with all N queued at once (saturated); *-solo one at a time; "
        "fairness: a --batch-item batch, then a teammate's one generation",
    )
    parser.add_argument("--batch", type=int, default=60, help="the fairness run's batch")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--solo", type=int, default=8, help="generations in the *-solo runs")
    parser.add_argument(
        "--solo-gap",
        type=float,
        default=0.0,
        help="rate windows to wait between two *-solo generations (0: back to back)",
    )
    parser.add_argument("--detail", action="store_true", help="print each generation's timeline")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    image = reference_image()
    results = []
    for mode in args.modes.split(","):
        n = {"fairness": args.batch}.get(mode, args.solo if mode.endswith("-solo") else args.n)
        results.append(run(mode, argparse.Namespace(**{**vars(args), "n": n}), owner, image))
    print(
        f"\nN={args.n}{f' batch={args.batch}+1' if 'fairness' in args.modes else ''} "
        f"R={args.rate}/window window={60 * args.time_scale:g}s "
        f"time scale={args.time_scale:g} (all times below in scaled seconds)"
    )
    header = ["mode", "finished", "calls/gen", "429s", "makespan", "bound", "ratio",
              "seen p50", "seen p95", "visible p50", "visible p95"]  # fmt: skip
    print(" | ".join(f"{h:>11}" for h in header))
    for r in results:
        cells = []
        for h in header:
            v = r[h]
            if h.startswith(("seen", "visible")):
                cells.append(f"{v:>10.1%} ")
            elif isinstance(v, float):
                cells.append(f"{v:>11.2f}")
            else:
                cells.append(f"{v!s:>11}")
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
