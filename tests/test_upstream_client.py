"""The upstream client's error mapping, over real HTTP to a canned server on loopback."""

import email.utils
import socket
import time
from decimal import Decimal

import pytest

from generations.upstream import (
    Ambiguous,
    NotSent,
    RateLimited,
    Rejected,
    Unavailable,
    UpstreamClient,
    backoff,
)

SENTINEL_KEY = "sk-sentinel-0123456789"


@pytest.fixture
def upstream(canned, settings):
    settings.UPSTREAM_API_KEY = SENTINEL_KEY
    return UpstreamClient(canned.url, SENTINEL_KEY, connect_timeout=1, read_timeout=1)


def test_it_sends_the_bearer_key_and_reads_a_top_level_task_id(canned, upstream):
    canned.answer(200, {"task_id": "abc-123", "created_at": "2026-11-26T07:00:00Z"})
    submitted = upstream.submit("/v1/3d-models/tencent/generate/rapid/", {"prompt": "a cup"})
    assert submitted.task_id == "abc-123"
    request = canned.requests[0]
    assert request["path"] == "/v1/3d-models/tencent/generate/rapid/"
    assert request["headers"]["Authorization"] == f"Bearer {SENTINEL_KEY}"
    assert request["body"] == b'{"prompt": "a cup"}'


def test_it_accepts_any_2xx_for_a_submit(canned, upstream):
    canned.answer(201, {"task_id": "t-201"})
    assert upstream.submit("/x/", {}).task_id == "t-201"


def test_it_strips_whitespace_from_the_key(canned, settings):
    client = UpstreamClient(canned.url, SENTINEL_KEY + "\n")
    canned.answer(200, {"balance": "10.00", "rate_limit": 3})
    client.wallet()
    assert canned.requests[0]["headers"]["Authorization"] == f"Bearer {SENTINEL_KEY}"


@pytest.mark.parametrize(
    "status, body, code, words",
    [
        (
            400,
            {"detail": "prompt: too long", "code": "validation_failed"},
            "validation_failed",
            "prompt: too long",
        ),
        (
            401,
            {"detail": "Invalid API key.", "code": "INVALID_API_KEY"},
            "invalid_api_key",
            "Invalid API key.",
        ),
        (401, {"error": "api_key_expired"}, "api_key_expired", "expired"),
        (
            402,
            {"message": "Not enough credits", "error_code": "insufficient_credits"},
            "insufficient_credits",
            "Not enough credits",
        ),
        (
            404,
            {"detail": "No PublicAPIGenerationRequest matches the given query."},
            "",
            "No PublicAPIGenerationRequest",
        ),
        (400, "plain text refusal", "", "plain text refusal"),
    ],
)
def test_it_maps_refusals_to_rejected_with_the_reason_in_words(
    canned, upstream, status, body, code, words
):
    canned.answer(status, body)
    with pytest.raises(Rejected) as caught:
        upstream.submit("/x/", {})
    assert caught.value.status == status
    assert caught.value.code == code
    assert words.lower() in caught.value.message.lower()


def test_a_429_with_retry_after_seconds(canned, upstream):
    canned.answer(429, {"error_code": "RATE_LIMITED"}, {"Retry-After": "17"})
    with pytest.raises(RateLimited) as caught:
        upstream.status("t1")
    assert caught.value.retry_after == 17
    assert caught.value.code == "rate_limited"


def test_a_429_with_an_http_date(canned, upstream):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    canned.answer(429, {"detail": "slow down"}, {"Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        upstream.status("t1")
    assert 27 <= caught.value.retry_after <= 31


def test_a_429_with_the_wait_only_in_the_text(canned, upstream):
    canned.answer(429, {"detail": "Request was throttled. Expected available in 42 seconds."})
    with pytest.raises(RateLimited) as caught:
        upstream.status("t1")
    assert caught.value.retry_after == 42


def test_a_429_with_no_hint_backs_off_by_default(canned, upstream):
    canned.answer(429, {"detail": "no"})
    with pytest.raises(RateLimited) as caught:
        upstream.status("t1")
    assert caught.value.retry_after == 20


@pytest.mark.parametrize("status", [502, 503])
def test_gateway_errors_are_unavailable(canned, upstream, status):
    canned.answer(status, "<html>bad gateway</html>")
    with pytest.raises(Unavailable):
        upstream.submit("/x/", {})


@pytest.mark.parametrize("status", [500, 504])
def test_server_errors_on_submit_are_ambiguous(canned, upstream, status):
    canned.answer(status, "oops")
    with pytest.raises(Ambiguous):
        upstream.submit("/x/", {})


@pytest.mark.parametrize(
    "body, words",
    [
        ('{"task_id": "abc"', "not JSON"),
        ("<html><body>Welcome</body></html>", "not JSON"),
        ({"created_at": "2026-11-26T07:00:00Z"}, "no task id"),
        ({"task_id": ""}, "no task id"),
        ([1, 2], "not an object"),
    ],
)
def test_malformed_submit_answers_are_ambiguous_and_keep_the_raw_body(
    canned, upstream, body, words
):
    canned.answer(200, body, {"Content-Type": "text/html"} if isinstance(body, str) else None)
    with pytest.raises(Ambiguous) as caught:
        upstream.submit("/x/", {})
    assert words in caught.value.message
    assert caught.value.raw


def test_the_key_is_redacted_from_kept_bodies(canned, upstream):
    canned.answer(500, f"internal error for key {SENTINEL_KEY}")
    with pytest.raises(Ambiguous) as caught:
        upstream.submit("/x/", {})
    assert SENTINEL_KEY not in caught.value.raw
    assert SENTINEL_KEY not in caught.value.message
    assert "[redacted]" in caught.value.raw


def test_a_refused_connection_was_not_sent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = UpstreamClient(f"http://127.0.0.1:{port}", "k", connect_timeout=1, read_timeout=1)
    with pytest.raises(NotSent):
        client.submit("/x/", {})


def test_a_read_timeout_after_sending_is_ambiguous(canned):
    canned.answer(200, lambda handler: time.sleep(2))
    client = UpstreamClient(canned.url, "k", connect_timeout=1, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Ambiguous) as caught:
        client.submit("/x/", {})
    assert time.monotonic() - started < 1.5
    assert "did not answer" in caught.value.message


def test_a_connection_dropped_after_the_request_is_ambiguous(canned):
    def drop(handler):
        handler.connection.shutdown(socket.SHUT_RDWR)

    canned.answer(200, drop)
    client = UpstreamClient(canned.url, "k", connect_timeout=1, read_timeout=1)
    with pytest.raises(Ambiguous):
        client.submit("/x/", {})


def test_status_reads_asset_and_falls_back_to_asset_url(canned, upstream):
    canned.answer(
        200,
        {
            "status": "FINISHED",
            "progress": 100,
            "failure_reason": None,
            "results": [
                {"asset": "https://s/a.glb?sig=1", "asset_type": "3D_MODEL"},
                {"asset_url": "https://s/b.zip", "asset_type": "archive"},
                {"asset": None, "asset_type": "IMAGE"},
            ],
            "thumbnail": "https://s/t.png",
        },
    )
    status = upstream.status("t1")
    assert status.status == "FINISHED"
    assert [r.url for r in status.results] == ["https://s/a.glb?sig=1", "https://s/b.zip", None]
    assert status.results[1].asset_type == "ARCHIVE"
    assert status.thumbnail == "https://s/t.png"


def test_status_takes_the_thumbnail_inside_an_old_shape_result_item(canned, upstream):
    canned.answer(
        200,
        {
            "status": "FINISHED",
            "results": [
                {
                    "asset_url": "https://s/a.glb",
                    "asset_type": "3D_MODEL",
                    "thumbnail": "https://s/a.png",
                },
                {
                    "asset_url": "https://s/a.fbx",
                    "asset_type": "3D_MODEL",
                    "thumbnail": "https://s/b.png",
                },
            ],
        },
    )
    status = upstream.status("t1")
    assert [r.url for r in status.results] == ["https://s/a.glb", "https://s/a.fbx"]
    assert status.thumbnail == "https://s/a.png"


def test_status_tolerates_missing_progress_and_unknown_status(canned, upstream):
    canned.answer(200, {"status": "QUEUED_FOR_GPU"})
    status = upstream.status("t1")
    assert status.status == "QUEUED_FOR_GPU"
    assert status.progress is None
    assert status.results == []


def test_status_without_a_status_is_ambiguous(canned, upstream):
    canned.answer(200, {"progress": 10})
    with pytest.raises(Ambiguous):
        upstream.status("t1")


def test_wallet_reads_a_decimal_balance_and_the_rate_limit(canned, upstream):
    canned.answer(200, {"balance": "1490.00", "rate_limit": 3})
    wallet = upstream.wallet()
    assert wallet.balance == Decimal("1490.00")
    assert wallet.rate_limit == 3
    assert canned.requests[0]["path"] == "/account/user/wallet/"


def test_wallet_falls_back_to_the_other_path_on_404(canned, upstream):
    canned.answer(404, {"detail": "Not found."}).answer(200, {"balance": "5", "rate_limit": 10})
    assert upstream.wallet().rate_limit == 10
    assert [r["path"] for r in canned.requests] == ["/account/user/wallet/", "/user/wallet/"]


@pytest.mark.parametrize("balance", ["NaN", "lots", None])
def test_wallet_refuses_an_unreadable_balance(canned, upstream, balance):
    canned.answer(200, {"balance": balance, "rate_limit": 3})
    with pytest.raises(Ambiguous):
        upstream.wallet()


def test_backoff_grows_with_jitter_and_is_capped():
    import random

    rng = random.Random(1)
    first = [backoff(1, rng=rng) for _ in range(50)]
    tenth = [backoff(10, rng=rng) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in first)
    assert all(60.0 <= d <= 120.0 for d in tenth)
    assert len(set(first)) > 10  # jitter
