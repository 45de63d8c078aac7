"""Start the real parts as processes: the sandbox, Celery workers and the dispatcher (beat).

Used by the end-to-end and browser tests. Every process talks only to loopback.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_KEY = "sk-e2e-sentinel-91c2"


class Stack:
    def __init__(
        self, tmp_path, *, time_scale=0.01, rate_limit=1000, sandbox_args=(), extra_env=None
    ):
        self.tmp = Path(tmp_path)
        self.time_scale = time_scale
        self.rate_limit = rate_limit
        self.sandbox_args = list(sandbox_args)
        self.extra_env = extra_env or {}
        self.processes = {}
        self.sandbox_url = None
        self.s3_url = None  # set by start_s3
        self.web_url = None  # set by start_web
        self.media = self.tmp / "media"
        self.logs = self.tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def env(self):
        db = connection.settings_dict
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "STUDIO_API_KEY"))
        }
        env.update(
            DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            REDIS_URL=settings.REDIS_URL,
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            SANDBOX_URL=self.sandbox_url or "",
            SANDBOX_API_KEY=SANDBOX_KEY,
            STUDIO_MEDIA_ROOT=str(self.media),
            STUDIO_VAR_DIR=str(self.tmp / "var"),
            PLANNER_DURATION_SCALE=str(self.time_scale),
            # The sandbox's limit: what the wallet would teach the workers.
            UPSTREAM_RATE_LIMIT=str(self.rate_limit),
            UPSTREAM_READ_TIMEOUT="3",
            DISPATCH_INTERVAL="0.5",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name, argv, env=None):
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env or self.env(),
            stdout=subprocess.PIPE if name == "sandbox" else log,
            stderr=log,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def start_sandbox(self):
        proc = self._spawn(
            "sandbox",
            [
                sys.executable, "-m", "sandbox", "--port", "0",
                "--state", str(self.tmp / "sandbox" / "state.sqlite3"),
                "--time-scale", str(self.time_scale),
                "--rate-limit", str(self.rate_limit),
                "--balance", "100000", "--api-key", SANDBOX_KEY, "--quirks", "off",
                *self.sandbox_args,
            ],
        )  # fmt: skip
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("SANDBOX LISTENING "):
            raise RuntimeError(f"sandbox did not start: {line!r}")
        self.sandbox_url = line.split()[-1]
        return self.sandbox_url

    def start_worker(self, name="worker", concurrency=2, module=None):
        command = ["-m", module] if module else ["-m", "celery", "-A", "studio_dashboard"]
        return self._spawn(
            name,
            [sys.executable, *command, "worker",
             "--loglevel", "INFO", "--concurrency", str(concurrency), "--pool", "prefork",
             "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"],
        )  # fmt: skip

    def start_beat(self, name="beat"):
        return self._spawn(
            name,
            [sys.executable, "-m", "celery", "-A", "studio_dashboard", "beat", "--loglevel", "INFO",
             "--schedule", str(self.tmp / f"{name}-schedule")],
        )  # fmt: skip

    def start_s3(self, bucket="studio-media"):
        """moto in server mode on loopback with one bucket; processes started later use it."""
        port = free_port()
        self._spawn("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
        self.s3_url = f"http://127.0.0.1:{port}"
        self.extra_env.update(
            S3_BUCKET=bucket,
            S3_ENDPOINT_URL=self.s3_url,
            S3_ACCESS_KEY_ID="testing",
            S3_SECRET_ACCESS_KEY="testing",
            S3_REGION="us-east-1",
        )
        wait_for(lambda: _answers(self.s3_url), 30, message="moto to listen")
        self.s3_client().create_bucket(Bucket=bucket)
        return self.s3_url

    def s3_client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def s3_storages(self):
        """A STORAGES setting for this process matching what start_s3 gives the others."""
        options = {
            "bucket_name": self.extra_env["S3_BUCKET"],
            "endpoint_url": self.s3_url,
            "access_key": "testing",
            "secret_key": "testing",
            "region_name": "us-east-1",
            "addressing_style": "path",
        }
        return {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
        }

    def start_web(self, workers=2):
        """gunicorn serving the dashboard, as in production."""
        port = free_port()
        self._spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "studio_dashboard.wsgi:application",
             "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
             "--access-logfile", "-", "--timeout", "60",
             # The default control socket is one per user: two stacks would share it.
             "--no-control-socket"],
        )  # fmt: skip
        self.web_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{self.web_url}/accounts/login/"), 60, message="gunicorn")
        return self.web_url

    def start(self, workers=1, worker_module=None):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
        self.start_sandbox()
        for i in range(workers):
            self.start_worker(f"worker{i}", module=worker_module)
        self.start_beat()
        return self

    # --- the sandbox's admin endpoints ---------------------------------------------
    def sandbox_log(self):
        import requests

        data = requests.get(f"{self.sandbox_url}/_sandbox/log", timeout=5).json()
        return data["entries"] if isinstance(data, dict) else data

    def submits(self):
        return [
            e for e in self.sandbox_log()
            if e["method"] == "POST" and e["path"].startswith("/v1/3d-models/")
        ]  # fmt: skip

    def polls(self):
        return [e for e in self.sandbox_log() if "/status/" in e["path"]]

    def set_faults(self, plan):
        import requests

        requests.put(f"{self.sandbox_url}/_sandbox/faults", json=plan, timeout=5).raise_for_status()

    def kill(self, name, sig=signal.SIGKILL):
        proc = self.processes.pop(name)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=10)

    def stop(self):
        for name in list(self.processes):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in list(self.processes.values()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def log_text(self, name):
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url):
    import requests

    try:
        requests.get(url, timeout=10)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        return False
    return True


def wait_for(predicate, timeout, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
