"""Network faults that only show with real sockets: a connect that is
never answered and a result file that drips in slower than its deadline.

Everything stays on loopback. The black hole is a listening socket whose accept
queue is full and never drained: Linux then drops further SYNs, so a connect
waits for its timeout exactly as it would against a firewall that drops packets.
"""

import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from credits.models import LedgerEntry
from generations import ingest, tasks
from generations.models import Alert, Asset, Generation, State
from generations.upstream import NotSent, UpstreamClient
from tests.sandbox_control import set_faults
from tests.test_pipeline import drive, inline_doorbells, queue  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)

CONNECT_TIMEOUT = 0.5
# Scheduling slack on a busy two-core machine; far below the read timeouts below.
MARGIN = 1.0


@pytest.fixture
def black_hole():
    """http://127.0.0.1:<port> where a TCP connect is never answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(16):  # the queue holds backlog + 1 connections; fill it
        filler = socket.socket()
        filler.settimeout(0.2)
        try:
            filler.connect(("127.0.0.1", port))
        except TimeoutError:
            filler.close()
            break
        fillers.append(filler)
    else:
        pytest.fail("the accept queue never filled: connects would not black-hole")
    yield f"http://127.0.0.1:{port}"
    for filler in fillers:
        filler.close()
    listener.close()


@pytest.fixture
def upstream_in_black_hole(settings, black_hole, redis_limiter, monkeypatch):
    settings.UPSTREAM_BASE_URL = black_hole
    settings.UPSTREAM_CONNECT_TIMEOUT = CONNECT_TIMEOUT
    settings.UPSTREAM_READ_TIMEOUT = 30.0  # a read timeout would show as a 30 s wait
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 10_000
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *args, **kwargs: None)
    return black_hole


def timed(call, *args):
    started = time.monotonic()
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


# --- connect black hole -------------------------------------------------------------


def step_into_black_hole(task, generation):
    """Run one task on ``generation``: it must return quietly within the connect timeout.

    Returns (seconds from the start until the row is due again, seconds the task took).
    """
    before = timezone.now()
    elapsed, error = timed(task, generation.pk)
    assert error is None
    assert elapsed < CONNECT_TIMEOUT + MARGIN
    generation.refresh_from_db()
    return (generation.due_at - before).total_seconds(), elapsed


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.submit("/v1/3d-models/tencent/generate/rapid/", {"prompt": "x"}),
        lambda client: client.status("task-1"),
    ],
    ids=["submit", "status"],
)
def test_an_unanswered_connect_is_not_sent_within_the_connect_timeout(black_hole, call):
    client = UpstreamClient(black_hole, "sk-test", connect_timeout=CONNECT_TIMEOUT, read_timeout=30)
    elapsed, error = timed(call, client)
    assert isinstance(error, NotSent), error
    assert "in time" in error.message
    # It waited for the timeout (the SYN was dropped, not refused), and no longer.
    assert CONNECT_TIMEOUT * 0.9 <= elapsed < CONNECT_TIMEOUT + MARGIN


def test_a_submit_into_a_black_hole_is_requeued_with_backoff_and_not_charged(
    upstream_in_black_hole, member
):
    generation = queue(member)
    for attempt in (1, 2):
        Generation.objects.filter(pk=generation.pk).update(due_at=timezone.now())
        wait, elapsed = step_into_black_hole(tasks.submit_generation, generation)
        assert generation.state == State.QUEUED
        assert generation.submit_attempts == attempt
        assert "Could not connect to the upstream in time" in generation.attention_reason
        # tasks.backoff: full jitter between half and all of 2 s, 4 s, ...
        assert 2.0**attempt / 2 <= wait <= 2.0**attempt + elapsed
    entries = [(e.kind, e.amount) for e in LedgerEntry.objects.filter(generation=generation)]
    assert entries == [("hold", -35)]
    assert not Alert.objects.exists()


def test_a_poll_into_a_black_hole_is_rescheduled_not_failed(upstream_in_black_hole, member):
    generation = queue(member)
    Generation.objects.filter(pk=generation.pk).update(
        state=State.PENDING,
        upstream_task_id="task-1",
        submitted_at=timezone.now(),
        due_at=timezone.now(),
    )
    wait, elapsed = step_into_black_hole(tasks.poll_generation, generation)
    assert generation.state == State.PENDING
    assert generation.poll_errors == 1
    assert generation.polls == 0
    assert 1.0 <= wait <= 2.0 + elapsed
    assert "Could not connect to the upstream in time" in generation.last_raw_response
    assert generation.attention_reason == ""


# --- slow-drip result files ---------------------------------------------------------

DEADLINE = 1.0


@pytest.fixture
def storage_host(settings, canned, tmp_path, monkeypatch):
    """The canned server as the configured sandbox's storage; a short download deadline."""
    settings.SANDBOX_MODE = True
    settings.SANDBOX_URL = canned.url
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPSTREAM_READ_TIMEOUT = 20.0
    settings.ASSET_DOWNLOAD_DEADLINE = DEADLINE
    return canned


def leftovers(settings):
    incoming = settings.MEDIA_ROOT / ".incoming"
    return list(incoming.iterdir()) if incoming.exists() else []


def serve(storage_host, body, *, pace, stop_after):
    """Send headers for a 100 kB GLB, then ``body`` in pieces every ``pace`` s, then hang up."""
    pieces = list(body)

    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        started = time.monotonic()
        try:
            for piece in pieces:
                handler.wfile.write(piece)
                if time.monotonic() - started > stop_after:
                    return
                time.sleep(pace)
            time.sleep(max(0.0, stop_after - (time.monotonic() - started)))
        except OSError:
            return  # the client gave up

    storage_host.answer(200, drip)


def test_a_dripping_file_is_abandoned_at_the_deadline(storage_host, settings):
    # A byte every 20 ms: each read returns long before the 20 s read timeout.
    serve(storage_host, [b"glTF"] + [b"\0"] * 400, pace=0.02, stop_after=6)
    elapsed, error = timed(ingest.download, storage_host.url + "/a.glb")
    assert isinstance(error, ingest.AssetUnavailable), error
    assert "took too long" in str(error)
    assert DEADLINE <= elapsed < DEADLINE + MARGIN
    assert leftovers(settings) == []


def test_a_stall_shorter_than_the_read_timeout_is_cut_at_the_deadline(storage_host, settings):
    # Some bytes, then silence for 6 s: within the 20 s read timeout, past the deadline.
    serve(storage_host, [b"glTF" + b"\0" * 100], pace=0, stop_after=6)
    elapsed, error = timed(ingest.download, storage_host.url + "/a.glb")
    assert isinstance(error, ingest.AssetUnavailable), error
    assert "took too long" in str(error)
    assert DEADLINE <= elapsed < DEADLINE + MARGIN
    assert leftovers(settings) == []


def test_headers_that_never_come_before_the_deadline_are_its_timeout(storage_host, settings):
    # Silence before the headers: the wait for them is the deadline's too, and it counts as
    # the deadline's timeout (weighed as such), not as an ordinary failed fetch.
    def silent(handler):
        time.sleep(6)

    storage_host.answer(200, silent)
    elapsed, error = timed(ingest.download, storage_host.url + "/a.glb")
    assert isinstance(error, ingest.DownloadTimedOut), error
    assert "took too long" in str(error)
    assert DEADLINE <= elapsed < DEADLINE + MARGIN
    assert leftovers(settings) == []


@pytest.mark.usefixtures("inline_doorbells")
def test_a_generation_whose_result_drips_is_retried_once_then_asks_a_person(
    sandbox_server, member, settings, monkeypatch
):
    deadline = 0.5
    settings.ASSET_DOWNLOAD_DEADLINE = deadline
    monkeypatch.setattr(tasks, "backoff", lambda attempt, **kw: 0.01)
    set_faults(sandbox_server, {"asset_drip_kbps": 0.5})  # 256 bytes every half second
    durations = []
    download = ingest.download

    def timed_download(url, **kwargs):
        started = time.monotonic()
        try:
            return download(url, **kwargs)
        finally:
            durations.append(time.monotonic() - started)

    monkeypatch.setattr(ingest, "download", timed_download)
    generation = drive(queue(member), until=lambda g: g.poll_errors >= 1)
    # One slow download is a transient failure: the ingest is tried again later.
    assert generation.state == State.INGESTING
    assert generation.attention_reason == ""
    assert generation.due_at > timezone.now() - timedelta(seconds=1)
    assert not generation.assets.exists()
    assert leftovers(settings) == []

    generation = drive(generation, timeout=30)
    # Every try ended at the deadline; the second one asks a person (not 8 x 600 s).
    assert generation.state == State.NEEDS_ATTENTION
    assert "took too long" in generation.attention_reason
    assert len(durations) == tasks.MAX_DOWNLOAD_TIMEOUTS == 2
    assert all(deadline <= d < deadline + MARGIN for d in durations), durations
    assert not Asset.objects.filter(generation=generation).exists()
    assert leftovers(settings) == []


def test_a_conversion_poll_outlives_one_download_deadline(settings):
    """A dripping converted file must end by the download deadline's clear error, not by the
    task's time limit, and its step must not be handed out again while it downloads."""

    # ASSET_DOWNLOAD_DEADLINE is at most 600 s (settings refuse more).
    assert tasks.poll_conversion.soft_time_limit > 600 >= settings.ASSET_DOWNLOAD_DEADLINE
    assert tasks.poll_conversion.time_limit > tasks.poll_conversion.soft_time_limit
    assert tasks.CONVERSION_POLL_LEASE.total_seconds() > tasks.poll_conversion.time_limit
