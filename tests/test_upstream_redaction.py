"""Upstream text is redacted once, at the client, before anything stores, logs or shows it.

An upstream (or a proxy in front of it) that echoes the request's Authorization
header into the strings it answers must not put our key anywhere: not in a
failure reason, an error's words, a status word, a task id, nor the raw body
kept for diagnosis. The canned server here echoes the header it received, so
the key in these answers is exactly what such a proxy would send back.
"""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from generations import tasks
from generations.models import Generation, State
from generations.upstream import (
    Ambiguous,
    RateLimited,
    Rejected,
    Unavailable,
    UpstreamClient,
)
from tests.conftest import rapid_generation

KEY = "sk-echoed-sentinel-4242abcd"


def echoing(status, shape):
    """An answer built from the request's own Authorization header."""
    import json

    def answer(handler):
        auth = handler.headers.get("Authorization", "")
        payload = json.dumps(shape(auth)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    return answer


def assert_no_key(*texts):
    for text in texts:
        text = str(text)
        assert KEY not in text
        assert KEY.upper() not in text.upper(), "the key survives in another case"
        # Not even a cut part of it: a truncation before redaction would leave one.
        assert KEY[:12] not in text


@pytest.fixture
def upstream(canned, settings):
    settings.UPSTREAM_API_KEY = KEY
    return UpstreamClient(canned.url, KEY, connect_timeout=1, read_timeout=1)


def test_a_failure_reason_that_echoes_the_key_is_redacted(canned, upstream):
    canned.answer(
        200,
        echoing(200, lambda auth: {"status": "FAILED", "failure_reason": f"bad header {auth}"}),
    )
    status = upstream.status("t1")
    assert status.status == "FAILED"
    assert "bad header Bearer [redacted]" == status.failure_reason
    assert_no_key(status.failure_reason, status.raw)


def test_a_status_word_that_echoes_the_key_is_redacted_before_it_is_uppercased(
    canned, upstream, caplog
):
    canned.answer(200, echoing(200, lambda auth: {"status": auth.lower(), "progress": 5}))
    with caplog.at_level(logging.WARNING):
        status = upstream.status("t1")
    assert_no_key(status.status, status.raw, caplog.text)


def test_results_and_metadata_that_echo_the_key_are_redacted(canned, upstream):
    canned.answer(
        200,
        echoing(
            200,
            lambda auth: {
                "status": "FINISHED",
                "results": [
                    {
                        "asset": f"https://storage.3daistudio.com/{auth}.glb",
                        "asset_type": auth,
                        "metadata": {"echo": [auth], auth: 1},
                    }
                ],
                "thumbnail": f"https://storage.3daistudio.com/t.png?k={auth}",
            },
        ),
    )
    status = upstream.status("t1")
    result = status.results[0]
    assert_no_key(result.url, result.asset_type, result.metadata, status.thumbnail, status.raw)


def test_a_task_id_that_echoes_the_key_is_redacted(canned, upstream):
    canned.answer(200, echoing(200, lambda auth: {"task_id": f"t-{auth}", "created_at": auth}))
    submitted = upstream.submit("/x/", {})
    assert_no_key(submitted.task_id, submitted.created_at)


@pytest.mark.parametrize(
    "status, field, error",
    [
        (400, "detail", Rejected),
        (401, "message", Rejected),
        (402, "error", Rejected),
        (404, "detail", Rejected),
        (429, "detail", RateLimited),
        (500, "detail", Ambiguous),
        (503, "detail", Unavailable),
    ],
)
def test_error_words_that_echo_the_key_are_redacted(canned, upstream, status, field, error):
    canned.answer(status, echoing(status, lambda auth: {field: f"refused: {auth}"}))
    with pytest.raises(error) as caught:
        upstream.submit("/x/", {})
    assert_no_key(caught.value.message, caught.value.raw, caught.value)


def test_an_error_body_cut_for_display_keeps_no_part_of_the_key(canned, upstream):
    # The key straddles the 500-character cut of a plain-text refusal.
    def answer(handler):
        auth = handler.headers.get("Authorization", "")
        payload = ("x" * (500 - len("Bearer ") - 15) + auth + " and more").encode()
        handler.send_response(400)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    canned.answer(400, answer)
    with pytest.raises(Rejected) as caught:
        upstream.submit("/x/", {})
    assert_no_key(caught.value.message, caught.value.raw)


def test_a_body_that_is_not_json_is_redacted(canned, upstream):
    canned.answer(200, echoing(200, lambda auth: f"<html>{auth}</html>"))
    with pytest.raises(Ambiguous) as caught:
        upstream.status("t1")
    assert_no_key(caught.value.raw)


@pytest.mark.django_db
def test_a_generation_polled_from_an_echoing_upstream_stores_and_logs_no_key(
    canned, settings, member, caplog
):
    settings.UPSTREAM_BASE_URL = canned.url
    settings.UPSTREAM_API_KEY = KEY
    settings.RATE_LIMITER = "database"
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 1000
    from generations import ratelimit

    ratelimit.reset_limiter_cache()
    canned.answer(
        200,
        echoing(
            200,
            lambda auth: {"status": f"odd {auth}", "progress": 10, "failure_reason": auth},
        ),
    ).answer(
        200,
        echoing(200, lambda auth: {"status": "FAILED", "failure_reason": f"proxy saw {auth}"}),
    )
    generation = rapid_generation(
        member,
        prompt="a lamp",
        state=State.PENDING,
        upstream_task_id="t-echo",
        submitted_at=timezone.now() - timedelta(seconds=30),
        due_at=timezone.now(),
    )
    with caplog.at_level(logging.INFO):
        tasks.poll_generation(generation.pk)
        generation.refresh_from_db()
        assert_no_key(generation.upstream_status)
        tasks.poll_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.failure_reason == "proxy saw Bearer [redacted]"
    row = Generation.objects.filter(pk=generation.pk).values().get()
    assert_no_key(*row.values(), caplog.text)
    ratelimit.reset_limiter_cache()
