"""Run the whole dashboard on one machine: sandbox, Celery worker, beat and web.

Uses Redis at REDIS_URL when one answers, otherwise kombu's filesystem broker
and the database rate limiter, so nothing but Python is needed. Ctrl-C (or
SIGTERM) stops every process it started.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def redis_answers(url):
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure means "no usable Redis"
        return False


class Command(BaseCommand):
    help = "Run web, Celery worker, beat and (with no API key) the sandbox upstream together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--sandbox-time-scale",
            type=float,
            default=0.2,
            help="sandbox durations multiplier (0.2: a Rapid job takes about 30 s)",
        )

    def handle(self, *args, port, host, sandbox_time_scale, **options):
        python = sys.executable
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if "CELERY_BROKER_URL" not in os.environ:
            if redis_answers(settings.REDIS_URL):
                self.stdout.write(f"Broker: Redis at {settings.REDIS_URL}")
            else:
                env["CELERY_BROKER_URL"] = "filesystem://"
                env["RATE_LIMITER"] = "database"
                self.stdout.write(
                    self.style.WARNING(
                        f"Notice: no Redis answers at {settings.REDIS_URL}; using the embedded "
                        "filesystem broker and the database rate limiter instead."
                    )
                )
        processes = []

        def start(name, argv, extra_env=None):
            proc = subprocess.Popen(
                argv,
                env={**env, **(extra_env or {})},
                cwd=settings.BASE_DIR,
                start_new_session=True,
            )
            processes.append((name, proc))
            return proc

        if settings.SANDBOX_MODE:
            env["PLANNER_DURATION_SCALE"] = str(sandbox_time_scale)
            sandbox_port = settings.SANDBOX_URL.rsplit(":", 1)[-1].strip("/")
            start(
                "sandbox",
                [
                    python, "-m", "sandbox",
                    "--host", "127.0.0.1",
                    "--port", sandbox_port,
                    "--state", str(var / "sandbox.sqlite3"),
                    "--time-scale", str(sandbox_time_scale),
                    "--api-key", settings.UPSTREAM_API_KEY,
                ],
            )  # fmt: skip
        start("worker", [python, "-m", "celery", "-A", "studio_dashboard", "worker",
                         "--loglevel", "INFO", "--concurrency", "2"])  # fmt: skip
        start("beat", [python, "-m", "celery", "-A", "studio_dashboard", "beat",
                       "--loglevel", "INFO", "--schedule", str(var / "celerybeat-schedule")])  # fmt: skip
        self.stdout.write("Demo logins:")
        call_command("seed_demo", stdout=self.stdout)
        start("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"])
        mode = "sandbox upstream (no credits spent)" if settings.SANDBOX_MODE else "REAL upstream"
        self.stdout.write(
            self.style.SUCCESS(f"\nStudio Dashboard: http://{host}:{port}/  ({mode})")
        )
        self.stdout.write("Press Ctrl-C to stop everything.\n")

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in processes:
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping all.")
                        stopping = True
                time.sleep(0.5)
        finally:
            for _, proc in processes:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _, proc in processes:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            self.stdout.write("Stopped.")
