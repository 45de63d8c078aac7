"""The sandbox HTTP server: the upstream API over loopback, with admin endpoints.

Use it in-process (tests) or through `python -m sandbox`:

    server = SandboxServer(port=0, state_path=tmp / "s.sqlite3", time_scale=0.01)
    server.start()
    requests.get(server.url + "/account/user/wallet/", headers={"Authorization": "Bearer k"})
    server.stop()

Task state is computed from wall-clock timestamps stored at submit (created_at,
started_at, finishes_at), so a restarted sandbox answers correctly for old tasks.
"""

import email.utils
import hashlib
import ipaddress
import json
import math
import random
import re
import secrets
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox import assets, contract, fields
from sandbox import faults as plans
from sandbox.store import Store

DEFAULT_ASSET_TTL = 24 * 3600
MAX_BODY = 50 * 1024 * 1024  # four 6 MB images in base64 fit with room to spare
UPLOAD_SLACK = 1024 * 1024  # multipart headers and the other fields beside a 200 MB file
CHUNK = 64 * 1024

FAILURE_REASONS = (
    "The generation failed: the model could not reconstruct a mesh from the input.",
    "The generation failed: the GPU worker ran out of memory.",
    "The generation failed: the input was flagged by content moderation.",
    "The generation failed: an internal error occurred while texturing.",
)
NO_ASSET_REASONS = (
    "The result file could not be stored.",
    "Mesh export failed after generation.",
)

NOT_FOUND_HTML = (
    b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
    b"<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    b"</body>\n</html>\n"
)
MAINTENANCE_HTML = (
    b"<!DOCTYPE html><html><head><title>3D AI Studio</title></head>"
    b"<body><h1>We'll be right back</h1><p>Scheduled maintenance.</p></body></html>"
)
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class Reply:
    """An answer to send. `drop` closes the connection without any answer."""

    def __init__(self, status=200, body=b"", content_type="application/json", headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.drop = False
        self.stream = None  # (declared length, iterator of chunks, close afterwards)
        self.note = None


def json_reply(status, data, headers=None):
    return Reply(status, json.dumps(data).encode(), "application/json", headers)


def dropped(note):
    reply = Reply(0)
    reply.drop = True
    reply.note = note
    return reply


def s3_error(status, code, message):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Reply(status, body, "application/xml")


def iso_z(timestamp):
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def redact(key):
    # Last four characters only, and none of a key so short that they would be all of it.
    if key is None:
        return None
    return "***" + key[-4:] if len(key) > 4 else "***"


def typical_duration(provider, options, rng):
    """Seconds before time scale, per "Typical durations" in the API reference."""
    jitter = rng.random()
    cold_start = rng.random()
    if provider == "hunyuan_rapid":
        return 120 + 60 * jitter
    if provider == "hunyuan_pro":
        return 180 + 180 * jitter
    if provider == "trellis2":
        base = {"512": 20, "1024": 35, "1536": 60}[options.get("resolution", "1024")]
        base *= 2 if options.get("textures") else 1
        # "20 s to 2 min (more with textures, plus a cold start)": 15% of tasks hit one.
        return base * (0.8 + 0.4 * jitter) + (30 if cold_start < 0.15 else 0)
    if provider in ("tripo", "tripo_p1"):
        return 80 + 40 * jitter
    if provider == "gemini_3_pro":
        return 40 + 50 * jitter  # "40-90 s each": the images of one request come together
    # Reading: the rest is "unknown" upstream; plausible ranges, overridable per provider.
    low, spread = UNKNOWN_DURATIONS.get(provider, (10, 10))
    return low + spread * jitter


UNKNOWN_DURATIONS = {
    # provider: (seconds at least, plus up to)
    "gemini_31_flash": (15, 20),
    "gemini_25_flash": (10, 15),
    "seedream": (15, 20),
    "tencent_texture_edit": (90, 90),
    "tripo_texture": (60, 60),
    "tencent_topology": (60, 60),
    "tripo_convert_model": (20, 20),
    "tripo_segmentation": (60, 60),
    "miniature": (180, 180),
    # convert, render, repair, optimize, bake_texture, calculate_volume, remove_bg and
    # image_enhance: 10-20 s
}


class SandboxServer:
    def __init__(
        self,
        host="127.0.0.1",
        port=8765,
        state_path="var/sandbox.sqlite3",
        time_scale=1.0,
        rate_limit=3,
        rate_window=60,
        balance=1500,
        api_keys=("sandbox-key",),
        seed=0,
        quirks=True,
        faults=None,
        asset_ttl=DEFAULT_ASSET_TTL,
    ):
        state_path = Path(state_path)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        self.assets_dir = state_path.parent / f"{state_path.stem}-assets"
        self.assets_dir.mkdir(exist_ok=True)
        self.time_scale = float(time_scale)
        self.rate_window = float(rate_window)
        self.seed = seed
        self.quirks = quirks
        self.asset_ttl = asset_ttl
        self.api_keys = list(api_keys)
        self.stopping = threading.Event()
        self._thread = None
        # Result files are built in the background once a task is running, so the first
        # download does not wait for mesh generation. Two builders keep CPU use modest.
        self._builder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-build")
        self._queued_builds = set()

        self.store = Store(state_path)
        # The starting balance applies to a new state file only; a restart keeps the wallet.
        # Rate limit and keys are configuration: they apply at every start.
        self.store.setdefault("balance_cents", int(round(balance * 100)))
        self.store.put("start_balance_cents", int(round(balance * 100)))
        self.store.put("rate_limit", int(rate_limit))
        self.store.put("start_rate_limit", int(rate_limit))
        for key in self.api_keys:
            self.store.add_key_if_missing(key)
        if faults is not None:
            plan = plans.parse(faults) if isinstance(faults, str) else plans.check(faults)
            self.store.put("faults", plan)
        self.secret = self.store.secret()

        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.app = self
        self.host, self.port = self.httpd.server_address[:2]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        # A short poll interval makes stop() quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()  # wakes handlers that hang on purpose
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._builder.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    # --- helpers -------------------------------------------------------------------------

    @property
    def plan(self):
        return self.store.get("faults", {}) or {}

    def rng(self, purpose, n):
        return random.Random(f"{self.seed}:{purpose}:{n}")

    def quirk_rates(self, plan):
        rates = dict(plans.QUIRK_DEFAULTS if self.quirks else plans.QUIRKS_OFF)
        rates.update(plan.get("quirks") or {})
        return rates

    def take_count(self, name):
        """Use up one of a counted fault (`submit_5xx_next`, ...). True if one was left."""
        with self.store.lock:
            plan = self.plan
            left = plan.get(name) or 0
            if left <= 0:
                return False
            plan[name] = left - 1
            self.store.put("faults", plan)
            return True

    def roll(self, purpose, rate):
        if not rate:
            return False
        n = self.store.next_counter(f"roll_{purpose}")
        return self.rng(purpose, n).random() < rate

    def task_dir(self, task_id):
        return self.assets_dir / task_id

    # --- request entry point -------------------------------------------------------------

    def handle(self, req, method):
        now = time.time()
        parts = urllib.parse.urlsplit(req.path)
        path = parts.path
        if path.startswith("/_sandbox/"):
            return self.send(req, self.admin(req, method, path, parts.query))

        key = self.bearer_token(req.headers.get("Authorization"))
        kind = self.classify(method, path)
        key_hash = hashlib.sha256(key.encode()).hexdigest() if key is not None else None
        log_id = self.store.log_start(now, method, path, redact(key), key_hash, kind)
        status, note, logged = 500, None, False
        try:
            limit = MAX_BODY
            if kind == "submit" and path in contract.UPLOAD_FIELDS:
                limit = contract.UPLOAD_MAX_BYTES + UPLOAD_SLACK
            body = self.read_body(req, limit)
            if body is None:
                reply = self.too_large(path, limit)
                req.close_connection = True
            elif kind == "download":
                reply = self.download(req, method, path, parts.query)
            else:
                reply = self.api(req, method, path, kind, key, key_hash, log_id, body)
            reply = self.echo_into_error(reply, req.headers.get("Authorization"))
            status, note = (None if reply.drop else reply.status), reply.note
            # Log the answer before sending it: a client that reads the log right after
            # the response must find the status there (the finally below is for errors).
            self.store.log_finish(log_id, status, note)
            logged = True
            self.send(req, reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a read timeout on a slow drip, say): nothing left to answer.
            note = "client went away"
            logged = False  # record the note
            req.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            note = "internal error"
            if not self.stopping.is_set():
                self.send(req, json_reply(500, {"detail": "A server error occurred."}))
        finally:
            if not logged and not self.stopping.is_set():
                self.store.log_finish(log_id, status, note)

    def bearer_token(self, header):
        """The raw token after "Bearer " (not stripped), or None when absent or not Bearer."""
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return token

    def classify(self, method, path):
        if path.startswith("/storage/"):
            return "download"
        if path in contract.SUBMIT_ROUTES:
            return "submit"
        if contract.STATUS_PATH.fullmatch(path):
            return "status"
        if path in contract.WALLET_PATHS:
            return "wallet"
        return "other"

    def read_body(self, req, limit=MAX_BODY):
        try:
            length = int(req.headers.get("Content-Length") or 0)
        except ValueError:
            length = limit + 1  # refuse what we cannot measure
        if length > limit or length < 0:
            return None
        return req.rfile.read(length) if length else b""

    def too_large(self, path, limit):
        field_name = contract.UPLOAD_FIELDS.get(path)
        if field_name is None or limit == MAX_BODY:
            return json_reply(413, {"detail": "Request body too large."})
        # Refused before reading: the upload is over the 200 MB the sandbox takes.
        detail = f"{field_name}: The file is larger than {contract.UPLOAD_MAX_BYTES} bytes."
        return json_reply(400, {"detail": detail, "code": "validation_failed"})

    def send(self, req, reply):
        if reply.drop:
            # Close without a byte of answer: the client cannot know what happened.
            req.close_connection = True
            return
        req.send_response(reply.status)
        req.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            req.send_header(name, value)
        if reply.stream is not None:
            declared, chunks, close_after = reply.stream
            req.send_header("Content-Length", str(declared))
            req.end_headers()
            if req.command != "HEAD":
                for chunk in chunks:
                    req.wfile.write(chunk)
            if close_after:
                req.close_connection = True
            return
        req.send_header("Content-Length", str(len(reply.body)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(reply.body)

    # --- the API -------------------------------------------------------------------------

    def api(self, req, method, path, kind, key, key_hash, log_id, body):
        if kind == "other":
            # Django answers an unknown URL with its HTML 404 page. Reading: a path without
            # its trailing slash is unknown too (no APPEND_SLASH redirect, which would turn
            # a POST into a GET and lose the body): the missing slash shows up at once.
            return Reply(404, NOT_FOUND_HTML, "text/html; charset=utf-8")
        allowed = "POST" if kind == "submit" else "GET"
        if method != allowed:
            return json_reply(
                405, {"detail": f'Method "{method}" not allowed.'}, {"Allow": f"{allowed}, OPTIONS"}
            )
        refusal = self.authenticate(key)
        if refusal:
            return refusal
        # Reading: the wallet does not count against the rate limit (the contract names
        # submits and status polls only); downloads never reach this point.
        if kind in ("submit", "status"):
            throttled = self.throttle(log_id, key_hash)
            if throttled:
                return throttled
        latency = self.plan.get("latency_ms") or 0
        if latency:
            self.stopping.wait(latency / 1000)
        self.store.settle(time.time())
        if kind == "wallet":
            return self.wallet()
        if kind == "submit":
            return self.submit(req, path, body)
        task_id = contract.STATUS_PATH.fullmatch(path).group(1)
        return self.status(task_id, self.own_base(req), req.headers.get("Authorization"))

    def own_base(self, req):
        """Base URL of our storage as the client reached us (the Host header), so asset URLs
        work behind a container name too; falls back to the bound address."""
        host = req.headers.get("Host") or ""
        if re.fullmatch(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?", host):
            return f"http://{host}"
        return self.url

    def authenticate(self, key):
        state = self.store.key_state(key) if key is not None else None
        # A key with surrounding whitespace (a trailing newline read from a file) is not the
        # key: the upstream refuses it, so we compare the token exactly.
        if state is None:
            detail, code = "Invalid API key.", "invalid_api_key"
        elif state == "expired":
            detail, code = "API key has expired.", "api_key_expired"
        elif state == "revoked":
            detail, code = "API key has been revoked.", "api_key_revoked"
        else:
            return None
        return json_reply(401, {"detail": detail, "code": code}, {"WWW-Authenticate": "Bearer"})

    def throttle(self, log_id, key_hash):
        now = time.time()
        limit = self.store.get("rate_limit", 3)
        if self.take_count("force_429_next"):
            wait = self.rate_window / max(limit, 1)
        else:
            wait = self.store.throttle(log_id, key_hash, now, limit, self.rate_window)
        if not wait:
            return None
        seconds = max(1, math.ceil(wait))
        mode = self.plan.get("retry_after_mode") or "seconds"
        detail = f"Request was throttled. Expected available in {seconds} seconds."
        headers = {}
        if mode == "seconds":
            headers["Retry-After"] = str(seconds)
        elif mode == "http_date":
            # HTTP dates have whole seconds: round up so waiting until then is enough.
            headers["Retry-After"] = email.utils.formatdate(math.ceil(now) + seconds, usegmt=True)
        elif mode == "none":
            detail = "Request was throttled."
        return json_reply(429, {"detail": detail, "error_code": "RATE_LIMITED"}, headers)

    def wallet(self):
        cents = self.store.balance_cents()
        return json_reply(
            200,
            {
                "balance": f"{cents // 100}.{cents % 100:02d}",
                "rate_limit": self.store.get("rate_limit"),
            },
        )

    def gateway_error(self, target):
        plan = self.plan
        if self.take_count(f"{target}_5xx_next") or self.roll(
            f"{target}_5xx", plan.get(f"{target}_5xx_rate")
        ):
            reply = Reply(503, BAD_GATEWAY_HTML, "text/html")
            reply.note = "injected 503"
            return reply
        return None

    def submit(self, req, path, raw):
        # A 503 from the gateway in front: the request never reached the app, no task exists.
        failure = self.gateway_error("submit")
        if failure:
            return failure
        try:
            body = fields.parse_body(req.headers.get("Content-Type"), raw)
        except fields.UnsupportedMediaType as exc:
            return json_reply(415, {"detail": f'Unsupported media type "{exc}" in request.'})
        except fields.ValidationFailed as exc:
            # A body that does not parse: DRF's message alone, no field to name.
            return json_reply(400, {"detail": exc.message, "code": "validation_failed"})
        plan = self.plan
        try:
            job = contract.SUBMIT_ROUTES[path](body, self.quirk_rates(plan))
        except contract.ValidationFailed as exc:
            return json_reply(400, {"detail": exc.detail, "code": "validation_failed"})

        ok, before = self.store.try_charge(job.price)
        if not ok:
            balance = f"{before // 100}.{before % 100:02d}"
            detail = f"Insufficient credits: this request costs {job.price}, balance is {balance}."
            return json_reply(402, {"detail": detail, "code": "insufficient_credits"})
        task_id, created_at = self.create_task(path, job, plan)

        # Everything below happens after the task exists and was charged: the ambiguous
        # cases a client must not answer by submitting again.
        if plans.drops(plan, "submit"):
            return dropped("dropped after creating " + task_id)
        hang = plan.get("hang_submit_after_receive")
        if hang:
            self.stopping.wait(None if hang < 0 else hang)
            if self.stopping.is_set():
                return dropped("hung until stop")
        answer = {"task_id": task_id, "created_at": iso_z(created_at)}
        malformed = plans.malformed_for(plan, "submit")
        if malformed:
            reply = self.malformed_reply(malformed, answer)
            reply.note = f"malformed {malformed} for {task_id}"
            return reply
        # Reading: 200, as in the documented examples (DRF's CreateAPIView would say 201;
        # the contract says to treat any 2xx as accepted).
        return json_reply(200, answer)

    def create_task(self, path, job, plan):
        now = time.time()
        seq = self.store.next_counter("task_seq")
        rng = self.rng("task", seq)
        # Draw every number in a fixed order so one seed gives one story per submit.
        task_seed = rng.getrandbits(31)
        typical = typical_duration(job.provider, job.options, rng)
        pending = 1 + 5 * rng.random()
        outcome_roll = rng.random()
        fail_point = 0.2 + 0.7 * rng.random()
        reason = rng.choice(FAILURE_REASONS)
        no_asset_reason = rng.choice(NO_ASSET_REASONS)
        null_roll = rng.random()
        null_count = rng.randint(1, 3)
        progress_roll = rng.random()

        durations = plan.get("durations") or {}
        run = durations.get(job.provider, typical) * self.time_scale
        pending = durations.get("pending", pending) * self.time_scale
        rates = self.quirk_rates(plan)
        fail_rate = (
            plan["fail_rate"] if plan.get("fail_rate") is not None else rates["random_failed_rate"]
        )
        started = now + pending
        finishes = started + run
        failure_reason = None
        null_polls = 0
        if outcome_roll < fail_rate:
            outcome, failure_reason = "failed", reason
            finishes = started + run * fail_point
        elif outcome_roll < fail_rate + rates["finished_no_asset_rate"]:
            outcome, failure_reason = "finished_no_asset", no_asset_reason
        else:
            outcome = "ok"
            if plan.get("null_asset_polls") is not None:
                null_polls = plan["null_asset_polls"]
            elif null_roll < rates["null_asset_rate"]:
                null_polls = null_count

        if job.provider == "optimize" and plan.get("draco_optimize"):
            job.options["draco"] = True
        task_id = str(uuid.uuid4())
        task_dir = self.task_dir(task_id)
        task_dir.mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(job.images):
            (task_dir / f"input-{index}.bin").write_bytes(image)
        for name, data in job.files.items():
            (task_dir / name).write_bytes(data)
        for result in job.results:
            result.name = f"{result.stem}_{self.asset_number()}"
        stored = asdict(job)
        stored.pop("images")
        stored.pop("files")
        stored["run_seconds"] = run
        self.store.insert_task(
            {
                "task_id": task_id,
                "seq": seq,
                "endpoint": path,
                "provider": job.provider,
                "job": json.dumps(stored),
                "seed": task_seed,
                "charged": job.price,
                "created_at": now,
                "started_at": started,
                "finishes_at": finishes,
                "outcome": outcome,
                "failure_reason": failure_reason,
                "null_polls_left": null_polls,
                "hide_progress": int(progress_roll < rates["missing_progress_rate"]),
            }
        )
        return task_id, now

    def asset_number(self):
        """A number no other result file of this state has: names are unique per asset, like
        the upstream's, so clients that name downloads after the URL never overwrite one.
        The base is random per state file; the counter survives resets."""
        base = self.store.setdefault("asset_base", 1_000_000_000 + secrets.randbelow(10**9))
        return base + self.store.next_counter("asset_seq")

    def malformed_reply(self, kind, answer):
        if kind == "truncated_json":
            text = json.dumps(answer).encode()
            return Reply(200, text[: len(text) // 2], "application/json")
        if kind == "html_200":
            return Reply(200, MAINTENANCE_HTML, "text/html; charset=utf-8")
        if kind == "missing_task_id":
            return json_reply(200, {k: v for k, v in answer.items() if k != "task_id"})
        if kind == "unknown_status":
            return json_reply(200, dict(answer, status="WAITING_FOR_GPU"))
        # empty_results: claims to be done but carries nothing.
        return json_reply(
            200, dict(answer, status="FINISHED", progress=100, failure_reason=None, results=[])
        )

    def status(self, task_id, base, auth=None):
        failure = self.gateway_error("status")
        if failure:
            return failure
        plan = self.plan
        hang = plan.get("hang_status")
        if hang:
            self.stopping.wait(None if hang < 0 else hang)
            if self.stopping.is_set():
                return dropped("hung until stop")
        if plans.drops(plan, "status"):
            return dropped("dropped status")
        task = self.store.task(task_id)
        if task is None:
            return json_reply(
                404, {"detail": "No PublicAPIGenerationRequest matches the given query."}
            )
        answer = self.describe(task, time.time(), base, auth)
        malformed = plans.malformed_for(plan, "status")
        if malformed:
            reply = self.malformed_reply(malformed, answer)
            reply.note = f"malformed {malformed}"
            return reply
        return json_reply(200, answer)

    def describe(self, task, now, base, auth=None):
        """The status answer of a task at `now`, from its stored timestamps."""
        job = json.loads(task["job"])
        started, finishes = task["started_at"], task["finishes_at"]
        run = max(job["run_seconds"], 1e-9)
        answer = {"status": "", "progress": 0, "failure_reason": None, "results": []}
        finished = now >= finishes
        must_hide_asset = self.store.count_poll(
            task["task_id"], finished and task["outcome"] == "ok"
        )
        if now < started:
            answer["status"] = "PENDING"
            # "progress may be missing early": drop it in the first half of PENDING.
            if task["hide_progress"] and now < (task["created_at"] + started) / 2:
                del answer["progress"]
        elif not finished:
            self.prebuild(task, job)
            answer["status"] = "IN_PROGRESS"
            answer["progress"] = min(99, int(100 * (now - started) / run))
        elif task["outcome"] == "failed":
            answer["status"] = "FAILED"
            # The progress reached when it failed; it never goes backwards.
            answer["progress"] = min(99, int(100 * (finishes - started) / run))
            answer["failure_reason"] = task["failure_reason"]
        else:
            self.prebuild(task, job)
            answer["status"] = "FINISHED"
            answer["progress"] = 100
            results = job["results"]
            if task["outcome"] == "finished_no_asset":
                answer["failure_reason"] = task["failure_reason"]
                results = results[:1]
            hide = must_hide_asset or task["outcome"] == "finished_no_asset"
            old_shape = bool(self.plan.get("old_status_shape"))
            answer["results"] = [
                self.result_item(task, job, r, base, hide=hide, old_shape=old_shape)
                for r in results
            ]
        return self.echo_into_status(answer, auth)

    def result_item(self, task, job, result, base, *, hide, old_shape):
        """One entry of `results`. A METADATA result has no file: its facts are in
        `metadata`. The old shape (`old_status_shape`) names the URL `asset_url` and adds a
        downloadable `thumbnail` URL inside the item."""
        url = metadata = None
        if hide:
            pass
        elif result["asset_type"] == "METADATA":
            metadata = self.metadata(task, job, result)
        else:
            url = self.asset_url(task, result, base)
        if not old_shape:
            return {"asset": url, "asset_type": result["asset_type"], "metadata": metadata}
        thumbnail = None if url is None else self.asset_url(task, result, base, thumbnail=True)
        return {
            "asset_url": url,
            "asset_type": result["asset_type"],
            "thumbnail": thumbnail,
            "metadata": metadata,
        }

    def metadata(self, task, job, result):
        self.build(task, job)
        name = f"{result['name']}.{result['ext']}"
        return json.loads((self.task_dir(task["task_id"]) / name).read_text())

    def build(self, task, job):
        assets.ensure_files(
            self.task_dir(task["task_id"]), task["task_id"], job, task["seed"], self.load_source
        )

    # --- echo_authorization --------------------------------------------------------------

    def echo_fields(self, auth):
        """The free-text places `echo_authorization` copies the Authorization header into."""
        if auth is None:
            return set()
        return plans.echo_fields(self.plan)

    def echo_into_status(self, answer, auth):
        echo = self.echo_fields(auth)
        if "failure_reason" in echo and answer.get("failure_reason"):
            answer["failure_reason"] = f"{answer['failure_reason']} (via proxy, {auth})"
        if "status" in echo:
            answer["status"] = f"{answer['status']}: {auth}"
        return answer

    def echo_into_error(self, reply, auth):
        """An error answer (4xx/5xx) whose message carries the Authorization header."""
        if reply.drop or reply.status < 400 or "detail" not in self.echo_fields(auth):
            return reply
        text = f"Request with Authorization {auth} failed."
        if reply.content_type.startswith("application/json"):
            try:
                data = json.loads(reply.body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                data["detail"] = f"{data.get('detail', '')} {text}".strip()
                data["message"] = text
                reply.body = json.dumps(data).encode()
                return reply
        if reply.content_type.startswith("application/xml"):
            reply.body = reply.body.replace(b"</Message>", f" {text}</Message>".encode())
        elif b"</body>" in reply.body:
            reply.body = reply.body.replace(b"</body>", f"<p>{text}</p></body>".encode())
        else:
            reply.body += f"\n{text}".encode()
        return reply

    def prebuild(self, task, job):
        if task["outcome"] != "ok" or task["task_id"] in self._queued_builds:
            return
        self._queued_builds.add(task["task_id"])
        self._builder.submit(self._build_quietly, task, job)

    def _build_quietly(self, task, job):
        if self.stopping.is_set():
            return
        try:
            self.build(task, job)
        except Exception:
            # A download builds again and reports the error where someone is looking.
            traceback.print_exc(file=sys.stderr)

    def asset_url(self, task, result, base, *, thumbnail=False):
        plan = self.plan
        ttl = plan.get("asset_ttl_seconds")
        ttl = self.asset_ttl if ttl is None else ttl
        # Signed once for the moment the task finished: a URL read a day later is expired,
        # like the upstream's ("download at once").
        expires = int(task["finishes_at"] + ttl)
        base = (plan.get("asset_host") or base).rstrip("/")
        filename = assets.thumbnail_name(result) if thumbnail else assets.file_name(result)
        return assets.signed_url(base, self.secret, task["task_id"], filename, expires)

    # --- storage -------------------------------------------------------------------------

    def download(self, req, method, path, query):
        # Like S3: a second auth mechanism beside the signature is an error.
        if req.headers.get("Authorization") is not None:
            return s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
            )
        if method not in ("GET", "HEAD"):
            return s3_error(405, "MethodNotAllowed", "The specified method is not allowed.")
        pieces = path.split("/")
        if len(pieces) != 4:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        _, _, task_id, filename = pieces
        params = urllib.parse.parse_qs(query)
        verdict = assets.check_signature(
            self.secret,
            task_id,
            filename,
            (params.get("expires") or [None])[0],
            (params.get("signature") or [None])[0],
        )
        if verdict == "bad":
            return s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
        if verdict == "expired":
            return s3_error(403, "AccessDenied", "Request has expired")
        task = self.store.task(task_id)
        job = json.loads(task["job"]) if task else None
        files = assets.served_files(job) if job else {}
        if filename not in files or task["outcome"] != "ok":
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        self.build(task, job)
        data = assets.read_served(self.task_dir(task_id), filename, files[filename])
        return self.asset_reply(task, filename, data)

    def asset_reply(self, task, filename, data):
        plan = self.plan
        ext = filename.rsplit(".", 1)[-1]
        reply = Reply(200, b"", assets.content_type(ext))
        if plan.get("corrupt_asset"):
            data = assets.corrupt_bytes(task["seed"], len(data))
            reply.note = "corrupt"
        declared = len(data)
        send = len(data)
        close_after = False
        padding = 0
        if plan.get("oversized_asset_mb"):
            # The real file first, then zeros: generated on the fly, never stored.
            declared = max(int(plan["oversized_asset_mb"] * 1024 * 1024), len(data))
            padding = declared - len(data)
            send = declared
            reply.note = "oversized"
        if plan.get("truncated_asset"):
            send = declared // 2
            close_after = True
            reply.note = "truncated"
        drip = plan.get("asset_drip_kbps")
        reply.stream = (declared, self.chunks(data, padding, send, drip), close_after)
        return reply

    def chunks(self, data, padding, limit, drip_kbps=None):
        """Yield the file, then zero padding, up to `limit` bytes; optionally as a slow drip."""
        size = CHUNK
        if drip_kbps:
            # Small pieces, each sent after its share of time, so the drip is steady.
            size = max(256, min(CHUNK, int(drip_kbps * 1024 / 10)))
        sent = 0
        zeros = b"\0" * size
        while sent < limit:
            if sent < len(data):
                chunk = data[sent : sent + size]
            else:
                chunk = zeros[: min(size, len(data) + padding - sent)]
            chunk = chunk[: limit - sent]
            if not chunk:
                return
            if drip_kbps and self.stopping.wait(len(chunk) / (drip_kbps * 1024)):
                return
            yield chunk
            sent += len(chunk)

    def load_source(self, url, seed):
        """The model the convert tool starts from. Never leaves loopback: our own storage
        URLs are read from disk, other loopback URLs fetched, anything else becomes a
        deterministic placeholder built from the URL."""
        parts = urllib.parse.urlsplit(url)
        scene = None
        ext = parts.path.rsplit(".", 1)[-1].lower() if "." in parts.path else ""
        pieces = parts.path.split("/")
        params = urllib.parse.parse_qs(parts.query)
        own = len(pieces) == 4 and pieces[1] == "storage"
        # One of our own pre-signed URLs (whatever host it names) is read from disk.
        own = own and not assets.check_signature(
            self.secret,
            pieces[2],
            pieces[3],
            (params.get("expires") or [None])[0],
            (params.get("signature") or [None])[0],
        )
        task = self.store.task(pieces[2]) if own else None
        if task is not None and task["outcome"] == "ok":
            job = json.loads(task["job"])
            try:
                self.build(task, job)
                data = (self.task_dir(task["task_id"]) / pieces[3]).read_bytes()
                scene = assets.load_model_bytes(data, ext)
            except (OSError, ValueError):
                scene = None
        elif not own and contract.is_loopback_url(url):
            try:
                scene = assets.load_model_bytes(contract.fetch_loopback(url, 100 << 20), ext)
            except (OSError, ValueError):
                scene = None
        if scene is None:
            scene = assets.meshes.model_from_prompt(url, seed)
        return scene

    # --- admin ---------------------------------------------------------------------------

    def admin(self, req, method, path, query):
        client = req.client_address[0]
        try:
            loopback = ipaddress.ip_address(client).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return json_reply(403, {"detail": "The admin endpoints answer loopback only."})
        route = path.rstrip("/")
        raw = (self.read_body(req) or b"") if method in ("PUT", "POST", "PATCH") else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return json_reply(400, {"detail": "Body is not JSON."})

        if route == "/_sandbox/health" and method == "GET":
            return json_reply(200, {"ok": True})
        if route == "/_sandbox/faults":
            if method == "GET":
                return json_reply(200, self.plan)
            if method in ("PUT", "PATCH"):
                # PUT replaces the plan, PATCH merges into it (a null value removes a key).
                plan = dict(self.plan) if method == "PATCH" else {}
                plan.update(body if isinstance(body, dict) else {"": body})
                plan = {k: v for k, v in plan.items() if v is not None}
                try:
                    plans.check(plan)
                except plans.BadPlan as exc:
                    return json_reply(400, {"detail": str(exc)})
                self.store.put("faults", plan)
                return json_reply(200, plan)
        if route == "/_sandbox/log" and method == "GET":
            since = urllib.parse.parse_qs(query).get("since", ["0"])[0]
            try:
                since = int(since)
            except ValueError:
                return json_reply(400, {"detail": "since must be an integer"})
            return json_reply(200, self.store.log_since(since))
        if route == "/_sandbox/tasks" and method == "GET":
            self.store.settle(time.time())
            return json_reply(200, [self.task_facts(t) for t in self.store.tasks()])
        if route == "/_sandbox/reset" and method == "POST":
            return self.reset()
        if route == "/_sandbox/wallet":
            if method == "PUT":
                return self.set_wallet(body)
            if method == "GET":
                return self.wallet()
        if route == "/_sandbox/keys" and method == "PUT":
            if not isinstance(body, dict) or any(
                v not in ("active", "expired", "revoked") for v in body.values()
            ):
                return json_reply(400, {"detail": 'Expected {"<key>": "active|expired|revoked"}'})
            for key, state in body.items():
                self.store.set_key(key, state)
            return json_reply(200, body)
        return json_reply(404, {"detail": "Unknown admin endpoint."})

    def task_facts(self, task):
        return {
            "task_id": task["task_id"],
            "endpoint": task["endpoint"],
            "provider": task["provider"],
            "status": self.upstream_state(task, time.time()),
            "outcome": task["outcome"],
            "charged": task["charged"],
            "refunded": task["charged"] if task["refunded"] else 0,
            "created_at": task["created_at"],
            "started_at": task["started_at"],
            "finishes_at": task["finishes_at"],
            "polls": task["polls"],
        }

    def upstream_state(self, task, now):
        # Like describe(), without counting a poll.
        if now < task["started_at"]:
            return "PENDING"
        if now < task["finishes_at"]:
            return "IN_PROGRESS"
        return "FAILED" if task["outcome"] == "failed" else "FINISHED"

    def reset(self):
        """Clear tasks and log, restore the starting wallet, rate limit and keys."""
        with self.store.lock:
            self.store.clear()
            self.store.put("balance_cents", self.store.get("start_balance_cents"))
            self.store.put("rate_limit", self.store.get("start_rate_limit"))
            self.store.reset_keys(self.api_keys)
            for name in ("task_seq", "roll_submit_5xx", "roll_status_5xx"):
                self.store.put(name, 0)
        for child in self.assets_dir.iterdir():
            if child.is_dir():
                for file in child.iterdir():
                    file.unlink()
                child.rmdir()
        return json_reply(200, {"ok": True})

    def set_wallet(self, body):
        if not isinstance(body, dict):
            return json_reply(400, {"detail": "Expected an object."})
        if "balance" in body:
            try:
                cents = int(round(float(body["balance"]) * 100))
            except (TypeError, ValueError):
                return json_reply(400, {"detail": "balance must be a number"})
            if cents < 0:
                return json_reply(400, {"detail": "balance must not be negative"})
            self.store.put("balance_cents", cents)
        if "rate_limit" in body:
            limit = body["rate_limit"]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                return json_reply(400, {"detail": "rate_limit must be an integer >= 0"})
            self.store.put("rate_limit", limit)
        return self.wallet()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real service behind its proxy
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK adds ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True

    def _dispatch(self):
        self.server.app.handle(self, self.command)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format, *args):
        # The request log in SQLite is the record; keep stderr quiet.
        pass
