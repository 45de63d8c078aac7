"""Measure the recovery sweep over many generations in flight (the reliability scenario of a large backlog).

Seeds N in-flight generations into the configured PostgreSQL database (mostly
healthy polls across every provider, some QUEUED, a few stuck in SUBMITTING
past their deadline, a few polled far beyond any plausible duration), runs
``tasks.sweep()`` three times and prints each run's wall time and query count:

- cold: the planner's duration profiles are not cached (first sweep in a minute);
- warm: profiles cached, nothing left to flag (the steady state every 30 s);
- flagging: profiles cached, a fresh set of stuck rows to flag.

The target is under one second for 10k rows. Rows it seeds belong to the user
``bench-sweep`` and are deleted before and after, so use a scratch database:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_h2 \\
    REDIS_URL=redis://127.0.0.1:6379/4 CELERY_BROKER_URL=redis://127.0.0.1:6379/4 \\
    .venv/bin/python tests/bench/bench_sweep.py --rows 10000
"""

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_dashboard.settings")

STUCK_SUBMITS = 20
FAR_OVERDUE = 20
QUEUED = 200


def seed(owner, rows, stuck=STUCK_SUBMITS, overdue=FAR_OVERDUE):
    """Bulk-insert ``rows`` in-flight generations; ``stuck + overdue`` of them must be flagged."""
    from django.utils import timezone

    from generations.catalogue import PROVIDERS
    from generations.models import Generation, State

    now = timezone.now()
    providers = sorted(PROVIDERS)
    healthy = rows - stuck - overdue - QUEUED
    batch = []

    def add(i, state, **fields):
        batch.append(
            Generation(
                owner=owner,
                provider=providers[i % len(providers)],
                prompt=f"bench {i}",
                options={"enable_pbr": bool(i % 2)},
                form_token=uuid.uuid4(),
                state=state,
                credit_estimate=35,
                **fields,
            )
        )

    for i in range(healthy):
        add(
            i,
            State.IN_PROGRESS if i % 3 else State.PENDING,
            upstream_task_id=f"bench-{uuid.uuid4().hex}",
            submitted_at=now - timedelta(seconds=30 + i % 600),
            due_at=now + timedelta(seconds=5 + i % 120),
        )
    for i in range(QUEUED):
        add(i, State.QUEUED, due_at=now + timedelta(seconds=10))
    for i in range(stuck):
        add(i, State.SUBMITTING, due_at=now - timedelta(seconds=60))
    for i in range(overdue):
        add(
            i,
            State.IN_PROGRESS,
            upstream_task_id=f"bench-{uuid.uuid4().hex}",
            submitted_at=now - timedelta(days=2),
            due_at=now + timedelta(seconds=30),
        )
    Generation.objects.bulk_create(batch, batch_size=2000)


def timed_sweep():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generations import tasks

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        tasks.sweep()
        elapsed = time.perf_counter() - started
    return elapsed, len(queries)


def forget_profiles():
    from django.conf import settings
    from django.core.cache import cache

    from generations import planner
    from generations.catalogue import PROVIDERS

    scale = settings.PLANNER_DURATION_SCALE
    cache.delete_many([f"planner:profile:{key}:{scale}" for key in PROVIDERS])
    planner.forget_profiles()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()

    import django
    from django.conf import settings

    django.setup()
    # One ALERT line per flagged row would drown the figures.
    logging.getLogger("generations.tasks").setLevel(logging.CRITICAL)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from generations.models import Alert, Generation, State

    if connection.vendor != "postgresql":
        sys.exit("bench_sweep measures PostgreSQL: set DATABASE_URL")
    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-sweep-")  # cleanup_incoming reads it
    owner, _ = get_user_model().objects.get_or_create(username="bench-sweep")
    Generation.objects.filter(owner=owner).delete()
    last_alert = Alert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    try:
        seed(owner, args.rows)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE generations_generation")
        flagged_before = Generation.objects.filter(owner=owner, state=State.NEEDS_ATTENTION).count()
        forget_profiles()
        cold = timed_sweep()
        flagged = (
            Generation.objects.filter(owner=owner, state=State.NEEDS_ATTENTION).count()
            - flagged_before
        )
        warm = timed_sweep()
        seed(owner, STUCK_SUBMITS + FAR_OVERDUE + QUEUED)  # only stuck rows and queued ones
        again = timed_sweep()
        in_flight = (
            Generation.objects.filter(owner=owner).exclude(state=State.NEEDS_ATTENTION).count()
        )
        expected = STUCK_SUBMITS + FAR_OVERDUE
        print(
            f"rows in flight: {args.rows} ({expected} to flag), flagged by the first sweep: "
            f"{flagged}"
        )
        for name, (elapsed, queries) in (
            ("cold profiles", cold),
            ("warm, nothing to flag", warm),
            (f"warm, {expected} to flag", again),
        ):
            print(f"sweep {name:>24}: {elapsed * 1000:8.1f} ms, {queries:4d} queries")
        print(f"left in flight: {in_flight}")
        ok = flagged == expected and max(cold[0], warm[0], again[0]) < 1.0
        print("target (< 1 s, every stuck row flagged):", "met" if ok else "NOT met")
    finally:
        Generation.objects.filter(owner=owner).delete()
        Alert.objects.filter(pk__gt=last_alert, message__contains="submit outcome").delete()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
