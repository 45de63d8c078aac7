"""The one client for the 3D AI Studio API (and our sandbox, which speaks the same).

Every outbound call to the API goes through ``UpstreamClient``; result files are
fetched by ``generations.ingest``, which never sends our key. Errors are mapped
to a small set of exceptions whose *type* tells the caller what is safe to do:

- ``NotSent``: nothing reached the upstream (connect failure). Safe to retry.
- ``RateLimited``: refused for rate; wait ``retry_after`` seconds.
- ``Unavailable``: 502/503, the gateway answered before the application
  accepted anything. Retry with backoff.
- ``Rejected``: a definite refusal (400, 401, 402, 404). Do not retry.
- ``Ambiguous``: the request may have been acted on (read timeout after
  sending, connection reset, 500/504, a body we cannot read). A submit that
  ends here must never be resent automatically.

Every string the upstream sends (a failure reason, an error detail, a status
word, a task id, the raw body kept for diagnosis) passes through ``Answer``
first, which removes our API key from it: an upstream or a proxy that echoes
the Authorization header cannot put the key on a page, in a log or in the
database, because nothing downstream ever sees the text as received.
"""

import email.utils
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings
from requests_toolbelt import MultipartEncoder

from ops import logs

log = logging.getLogger(__name__)

STATUSES = {"PENDING", "IN_PROGRESS", "FINISHED", "FAILED"}


class UpstreamError(Exception):
    def __init__(self, message, *, status=None, code="", raw=""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.raw = raw


class NotSent(UpstreamError):
    pass


class RateLimited(UpstreamError):
    def __init__(self, message, *, retry_after, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(UpstreamError):
    pass


class Rejected(UpstreamError):
    pass


class Ambiguous(UpstreamError):
    pass


@dataclass
class Submitted:
    task_id: str
    created_at: str


@dataclass
class Result:
    url: str | None
    asset_type: str
    metadata: object = None
    thumbnail: str | None = None  # the older docs' shape: a thumbnail per result item


@dataclass
class Status:
    status: str
    progress: int | None
    failure_reason: str | None
    results: list = field(default_factory=list)
    thumbnail: str | None = None
    raw: str = ""


@dataclass
class Wallet:
    balance: Decimal
    rate_limit: int | None


# Plain-words explanations for the codes the upstream sends.
CODE_MESSAGES = {
    "validation_failed": "The upstream refused the request as invalid",
    "invalid_api_key": "The API key was refused by the upstream",
    "api_key_expired": "The API key has expired",
    "api_key_revoked": "The API key has been revoked",
    "insufficient_credits": "The upstream wallet does not have enough credits",
    "rate_limited": "Too many requests to the upstream",
}

_AVAILABLE_IN = re.compile(r"available in (\d+(?:\.\d+)?) ?sec", re.IGNORECASE)
DEFAULT_RETRY_AFTER = 20.0


def redact(text: str, extra=()) -> str:
    """Remove the API key from anything we are about to store or log."""
    return logs.redact(text, extra) if text else text


_NOT_JSON = object()


class Answer:
    """An upstream answer as the rest of the dashboard may see it: the body read
    once, the key removed from its text and from every string of its JSON.

    It offers what the parsing below reads of a ``requests.Response``
    (``status_code``, ``headers``, ``text``, ``json()``), so no code after the
    client boundary can reach the text as received.
    """

    def __init__(self, response, secrets=()):
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = redact(response.text or "", secrets)
        try:
            self._body = logs.redact_strings(response.json(), secrets)
        except ValueError:
            self._body = _NOT_JSON

    def json(self):
        if self._body is _NOT_JSON:
            raise ValueError("the answer is not JSON")
        return self._body


def parse_error(response) -> tuple[str, str]:
    """(code, message) of an error ``Answer`` (already redacted), read as the API reference
    says we read it."""
    raw = response.text or ""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = ""
    message = ""
    if isinstance(body, dict):
        for name in ("code", "error_code", "error"):
            value = body.get(name)
            if isinstance(value, str) and value and re.fullmatch(r"[A-Za-z_]+", value):
                code = value.lower()
                break
        for name in ("detail", "message", "error", "code"):
            value = body.get(name)
            if isinstance(value, str) and value.strip():
                message = value.strip()
                break
            if isinstance(value, (list, dict)) and value:
                message = json.dumps(value)[:500]
                break
    if not message:
        message = raw.strip()[:500] or f"HTTP {response.status_code}"
    return code, message


def parse_retry_after(response, now=None) -> float:
    """Seconds to wait after a 429: the header (seconds or HTTP date), else the text, else a default."""
    header = response.headers.get("Retry-After", "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(header) if header else None
            if parsed is not None:
                now = time.time() if now is None else now
                return max(0.0, parsed.timestamp() - now)
    match = _AVAILABLE_IN.search(response.text or "")
    if match:
        return float(match.group(1))
    return DEFAULT_RETRY_AFTER


class UpstreamClient:
    def __init__(self, base_url=None, api_key=None, *, connect_timeout=None, read_timeout=None):
        self.base_url = (base_url or settings.UPSTREAM_BASE_URL).rstrip("/")
        self._api_key = (api_key if api_key is not None else settings.UPSTREAM_API_KEY).strip()
        self.timeout = (
            connect_timeout or settings.UPSTREAM_CONNECT_TIMEOUT,
            read_timeout or settings.UPSTREAM_READ_TIMEOUT,
        )
        self.session = requests.Session()
        # Environment proxies would send loopback sandbox traffic elsewhere.
        self.session.trust_env = False

    def __repr__(self):  # never show the key
        return f"<UpstreamClient {self.base_url}>"

    def _request(self, method, path, *, json_body=None, body=None, content_type=None):
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise NotSent(f"Could not connect to the upstream in time ({url})") from exc
        except requests.exceptions.ConnectionError as exc:
            # A refused or unroutable connection never carried our request; a
            # reset or a closed connection after sending may have.
            text = str(exc)
            if _looks_like_connect_failure(text):
                raise NotSent(f"Could not connect to the upstream ({url})") from exc
            raise Ambiguous(
                f"The connection to the upstream broke after the request was sent ({url})",
                raw=redact(text, [self._api_key])[:1000],
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise Ambiguous(
                f"The upstream did not answer within {self.timeout[1]:g} s ({url})"
            ) from exc
        return Answer(response, [self._api_key])

    def _check(self, response):
        status = response.status_code
        if 200 <= status < 300:
            return
        code, message = parse_error(response)
        raw = response.text[:4000]
        if status == 429:
            raise RateLimited(
                message,
                retry_after=parse_retry_after(response),
                status=status,
                code=code or "rate_limited",
                raw=raw,
            )
        if status in (400, 401, 402, 403, 404):
            plain = CODE_MESSAGES.get(code)
            text = (
                f"{plain}: {message}" if plain and plain.lower() not in message.lower() else message
            )
            raise Rejected(text, status=status, code=code, raw=raw)
        if status in (502, 503):
            raise Unavailable(
                f"The upstream is unavailable (HTTP {status})", status=status, raw=raw
            )
        raise Ambiguous(f"The upstream answered HTTP {status}: {message}", status=status, raw=raw)

    def _json(self, response):
        try:
            body = response.json()
        except ValueError:
            raise Ambiguous(
                f"The upstream answered HTTP {response.status_code} with a body that is not JSON",
                status=response.status_code,
                raw=response.text[:4000],
            ) from None
        if not isinstance(body, dict):
            raise Ambiguous(
                "The upstream answered with JSON that is not an object",
                status=response.status_code,
                raw=response.text[:4000],
            )
        return body

    # --- endpoints -------------------------------------------------------------
    def submit(self, endpoint: str, body: dict, *, upload=None) -> Submitted:
        """POST a job. ``upload`` = (field, file name, open) sends it as multipart (the
        fields as text, booleans as ``true``/``false``: see the API reference "Request
        encoding"), else ``body`` goes as JSON. Either way a submit, with a submit's care.

        ``open()`` gives (a readable file, its size in bytes). It is called for each send,
        so a send after a failed one starts from the file's first byte, and the file is
        streamed in chunks as the connection takes them: a 200 MB model is never held in
        memory (tests/bench/bench_upload.py)."""
        if upload is None:
            response = self._request("POST", endpoint, json_body=body)
        else:
            field_name, filename, open_file = upload
            fields = [
                (name, ("true" if value else "false") if isinstance(value, bool) else str(value))
                for name, value in body.items()
            ]
            try:
                handle, size = open_file()
            except OSError as exc:  # a stored file gone or unreadable: nothing was sent
                raise Rejected(
                    f"Our stored copy of the file could not be read ({type(exc).__name__}); "
                    "nothing was sent."
                ) from exc
            stream = _Sized(handle, size)
            try:
                part = (filename, stream, "application/octet-stream")
                encoder = MultipartEncoder(fields=[*fields, (field_name, part)])
                response = self._request(
                    "POST", endpoint, body=encoder, content_type=encoder.content_type
                )
            except UpstreamError as exc:
                if stream.missing:
                    # The body stopped short of the length it announced: the upstream
                    # never had a whole request to act on, and resending cannot help.
                    raise Rejected(
                        f"Our stored file ended {stream.missing} bytes before its recorded "
                        "size; nothing was sent whole."
                    ) from exc
                raise
            finally:
                handle.close()
        self._check(response)
        data = self._json(response)
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id.strip():
            raise Ambiguous(
                "The upstream accepted the request but sent no task id",
                status=response.status_code,
                raw=response.text[:4000],
            )
        return Submitted(task_id=task_id.strip(), created_at=str(data.get("created_at", "")))

    def status(self, task_id: str) -> Status:
        response = self._request("GET", f"/v1/generation-request/{task_id}/status/")
        self._check(response)
        data = self._json(response)
        raw = response.text[:4000]
        status = data.get("status")
        if not isinstance(status, str):
            raise Ambiguous("The status answer has no status", status=response.status_code, raw=raw)
        status = status.strip().upper()
        if status not in STATUSES:
            log.warning("upstream task %s reports unknown status %r", task_id, status)
        progress = data.get("progress")
        if not isinstance(progress, (int, float)) or isinstance(progress, bool):
            progress = None
        results = []
        for item in data.get("results") or []:
            if not isinstance(item, dict):
                continue
            url = item.get("asset") or item.get("asset_url")
            results.append(
                Result(
                    url=_text_or_none(url),
                    asset_type=str(item.get("asset_type") or "").upper(),
                    metadata=item.get("metadata"),
                    thumbnail=_text_or_none(item.get("thumbnail")),
                )
            )
        # One thumbnail per generation: the answer's own, else the first result's
        # (the older shape carries it inside each item, beside `asset_url`).
        thumbnail = _text_or_none(data.get("thumbnail")) or next(
            (r.thumbnail for r in results if r.thumbnail), None
        )
        failure = data.get("failure_reason")
        return Status(
            status=status,
            progress=None if progress is None else int(progress),
            failure_reason=failure.strip()
            if isinstance(failure, str) and failure.strip()
            else None,
            results=results,
            thumbnail=thumbnail,
            raw=raw,
        )

    def wallet(self) -> Wallet:
        response = self._request("GET", "/account/user/wallet/")
        if response.status_code == 404:
            # One doc page names the other path.
            response = self._request("GET", "/user/wallet/")
        self._check(response)
        data = self._json(response)
        try:
            balance = Decimal(str(data.get("balance")))
        except (InvalidOperation, TypeError):
            raise Ambiguous(
                "The wallet answer has no readable balance", raw=response.text[:4000]
            ) from None
        if not balance.is_finite():
            raise Ambiguous("The wallet balance is not a number", raw=response.text[:4000])
        rate_limit = data.get("rate_limit")
        if not isinstance(rate_limit, int) or isinstance(rate_limit, bool) or rate_limit < 1:
            rate_limit = None
        return Wallet(balance=balance, rate_limit=rate_limit)

    def convert(self, model_url: str, output_format: str) -> Submitted:
        """Start the convert tool (async, charged like a submit: same errors, same care)."""
        return self.submit(
            "/v1/tools/convert/", {"model_url": model_url, "output_format": output_format}
        )

    def images(self, endpoint: str, body: dict) -> Submitted:
        """Start an image generation or edit (charged like a submit: same errors, same care)."""
        return self.submit(endpoint, body)


class _Sized:
    """A readable file with the count of bytes still to come, which is what the multipart
    encoder asks of a part (``len``) to send the body's Content-Length up front. A bucket's
    stream (S3) has no file number to measure, so the size comes from the storage."""

    def __init__(self, handle, size):
        self.handle = handle
        self.left = size
        self.missing = 0

    @property
    def len(self):
        return self.left

    def read(self, length=-1):
        chunk = self.handle.read(length)
        if not chunk and self.left > 0:
            # The encoder would wait for the missing bytes forever.
            self.missing = self.left
            raise OSError(f"the file ended {self.left} bytes before its size")
        self.left -= len(chunk)
        return chunk


def _text_or_none(value):
    return value if isinstance(value, str) and value else None


def _looks_like_connect_failure(text: str) -> bool:
    markers = (
        "Connection refused",
        "Failed to establish a new connection",
        "Name or service not known",
        "No route to host",
        "Network is unreachable",
        "nodename nor servname",
        "Temporary failure in name resolution",
    )
    return any(marker in text for marker in markers)


def backoff(attempt: int, base: float = 2.0, cap: float = 120.0, rng=None) -> float:
    """Exponential backoff with full jitter, in seconds."""
    import random

    rng = rng or random
    ceiling = min(cap, base * math.pow(2, max(0, attempt - 1)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
