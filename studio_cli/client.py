"""The API's client: one session, the token on every request, errors in words."""

import time
import uuid
from pathlib import Path

import requests

# A request may wait this long for the server; a GLB download streams, block by block.
TIMEOUT = (5, 60)
# Retries of a request that did not get an answer, or got a 429/502/503/504. Every create
# (a generation, a concept job, a model of picks, a finishing step) is retried with its
# Idempotency-Key, so a retry never makes a second one.
RETRIES = 4


class ApiError(Exception):
    def __init__(self, status, detail, errors=None, body=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or {}
        self.body = body or {}

    def __str__(self):
        """One line: the detail, or each refused field with its reason."""
        if not self.errors:
            return self.detail
        return "; ".join(
            f"{field}: {message}" for field, messages in self.errors.items() for message in messages
        )


class Client:
    def __init__(self, url, token, sleep=time.sleep):
        if not url:
            raise ApiError(0, "Set STUDIO_URL to the dashboard's address (or pass --url).")
        if not token:
            raise ApiError(0, "Set STUDIO_TOKEN to a personal token from your account page.")
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token.strip()}"
        self.session.headers["User-Agent"] = "studio-cli/1"
        self.sleep = sleep

    def _url(self, path):
        return path if path.startswith(("http://", "https://")) else f"{self.url}{path}"

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        for attempt in range(RETRIES + 1):
            try:
                response = self.session.request(method, self._url(path), **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == RETRIES:
                    raise ApiError(
                        0, f"The dashboard at {self.url} does not answer: {exc}"
                    ) from exc
                self.sleep(min(30, 2**attempt))
                continue
            if response.status_code in (429, 502, 503, 504) and attempt < RETRIES:
                self.sleep(_retry_after(response, attempt))
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response
        raise AssertionError("unreachable")

    def get(self, path, **params):
        return self.request("GET", path, params=params or None).json()

    def post(self, path, body=None, key=None):
        headers = {"Idempotency-Key": key} if key else {}
        return self.request("POST", path, json=body, headers=headers).json()

    # --- the API ----------------------------------------------------------------------
    def create(self, body, key=None):
        return self.post("/api/v1/generations/", body, key=key or str(uuid.uuid4()))

    def generation(self, pk):
        return self.get(f"/api/v1/generations/{pk}/")

    def cancel(self, pk):
        return self.post(f"/api/v1/generations/{pk}/cancel/")

    def concept(self, body, key=None):
        return self.post("/api/v1/concepts/", body, key=key or str(uuid.uuid4()))

    def concept_job(self, pk):
        return self.get(f"/api/v1/concepts/{pk}/")

    def concept_model(self, pk, body, key=None):
        return self.post(f"/api/v1/concepts/{pk}/model/", body, key=key or str(uuid.uuid4()))

    def finish(self, pk, step, options, key=None):
        path = f"/api/v1/generations/{pk}/finish/{step}/"
        return self.post(path, options, key=key or str(uuid.uuid4()))

    def mine(self, limit=20):
        me = self.get("/api/v1/me/")
        return self.get("/api/v1/generations/", owner=me["id"], page_size=limit)["results"]

    def upload(self, path, fields, files):
        """A multipart POST: ``files`` as (field, (name, bytes, content type)) pairs."""
        return self.request("POST", path, data=fields, files=files).json()

    def download(self, url, path):
        """Stream a file to ``path`` through a temporary name: never a partial file there."""
        path = Path(path)
        partial = path.with_name(path.name + ".part")
        with self.request("GET", url, stream=True) as response, open(partial, "wb") as out:
            for block in response.iter_content(64 * 1024):
                out.write(block)
        partial.replace(path)
        return path


def _retry_after(response, attempt):
    try:
        return max(1.0, min(120.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return min(30, 2**attempt)


def _error(response):
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if not detail:
        detail = f"The dashboard answered {response.status_code} {response.reason}."
    errors = body.get("errors") if isinstance(body, dict) else None
    return ApiError(response.status_code, detail, errors, body)
