"""Fixtures for the sandbox contract tests: a real server on loopback per test.

These tests need no Django: run them with
`.venv/bin/python -m pytest tests/sandbox -q -p no:django`.
"""

import base64
import io
import ipaddress
import socket
import time

import pytest
import requests
from PIL import Image

from sandbox.server import SandboxServer

KEY = "test-key-0001"


@pytest.fixture(autouse=True, scope="session")
def sandbox_loopback_only():
    """Refuse any non-loopback connect, even if the code under test is wrong.

    tests/conftest.py has the same guard, but `--confcutdir=tests/sandbox` (to run these
    tests without Django) skips it, so the sandbox suite brings its own."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            if not ipaddress.ip_address(address[0].split("%")[0]).is_loopback:
                raise ConnectionRefusedError(f"test guard: refusing {address[0]}")
        return real_connect(self, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


class Client:
    """A thin wrapper over `requests`, talking to one sandbox like the dashboard would."""

    def __init__(self, server, key=KEY):
        self.server = server
        self.url = server.url
        self.key = key
        self.http = requests.Session()

    def headers(self, key=None):
        return {"Authorization": f"Bearer {key or self.key}"}

    def post(self, path, body, key=None, **kwargs):
        return self.http.post(
            self.url + path, json=body, headers=self.headers(key), timeout=10, **kwargs
        )

    def get(self, path, key=None, **kwargs):
        return self.http.get(self.url + path, headers=self.headers(key), timeout=10, **kwargs)

    def submit(self, path, body):
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        return response.json()["task_id"]

    def status(self, task_id):
        return self.get(f"/v1/generation-request/{task_id}/status/")

    def wait(self, task_id, timeout=15, want_assets=True):
        """Poll until final (and, for FINISHED, until the URLs are there)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            answer = self.status(task_id).json()
            if answer["status"] == "FAILED":
                return answer
            if answer["status"] == "FINISHED":
                if not want_assets or answer["failure_reason"]:
                    return answer
                # A METADATA result (calculate-volume) has no file, only its facts.
                if all(r["asset"] or r.get("metadata") for r in answer["results"]):
                    return answer
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} not final in {timeout} s")

    def balance(self):
        return self.get("/account/user/wallet/").json()["balance"]

    def download(self, url, **kwargs):
        # No Authorization header: the storage host answers 400 to one.
        return requests.get(url, timeout=10, **kwargs)

    def admin(self, method, path, body=None):
        response = self.http.request(method, self.url + path, json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self, plan):
        return self.admin("PUT", "/_sandbox/faults", plan)

    def log(self, since=0):
        return self.admin("GET", f"/_sandbox/log?since={since}")

    def tasks(self):
        return self.admin("GET", "/_sandbox/tasks/")


def start_server(tmp_path, **overrides):
    options = {
        "host": "127.0.0.1",
        "port": 0,
        "state_path": tmp_path / "state.sqlite3",
        "time_scale": 0.001,  # Rapid's ~150 s becomes ~0.15 s
        "rate_limit": 1000,
        "rate_window": 60,
        "balance": 100000,
        "api_keys": [KEY],
        "seed": 0,
        "quirks": False,
        "faults": None,
    }
    options.update(overrides)
    return SandboxServer(**options).start()


@pytest.fixture
def make_sandbox(tmp_path):
    """Start sandboxes with chosen options; all are stopped at the end of the test."""
    started = []

    def make(**overrides):
        server = start_server(tmp_path, **overrides)
        started.append(server)
        return Client(server)

    yield make
    for server in started:
        if not server.stopping.is_set():
            server.stop()


@pytest.fixture
def sandbox(make_sandbox):
    return make_sandbox()


# --- images ------------------------------------------------------------------------------


def image_bytes(fmt="JPEG", size=(128, 128), mode="RGB", color=(200, 80, 40)):
    if mode == "RGBA" and len(color) == 3:
        color = (*color, 255)
    img = Image.new(mode, size, color)
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def data_uri(raw, mime="image/jpeg"):
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


@pytest.fixture(scope="session")
def jpeg():
    return data_uri(image_bytes("JPEG"), "image/jpeg")


@pytest.fixture(scope="session")
def png():
    return data_uri(image_bytes("PNG"), "image/png")
