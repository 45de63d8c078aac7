"""The pipeline, task by task, against the sandbox over real HTTP and the real database.

Tasks run in this process (their doorbells call them directly); the dispatcher
is driven by hand. Worker processes, kills and broker faults are in
test_e2e_processes.py.
"""

import time
import uuid
from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from credits.models import LedgerEntry
from generations import tasks
from generations.models import Alert, Asset, Generation, State
from tests.conftest import at_once
from tests.sandbox_control import set_faults, upstream_calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inline_doorbells(monkeypatch):
    """Each .delay() runs the task here and now, as a worker would."""
    for task in (tasks.submit_generation, tasks.poll_generation, tasks.ingest_generation):
        monkeypatch.setattr(task, "delay", task)


def queue(owner, prompt="a red wooden chair", pbr=False):
    return Generation.objects.create_queued(
        owner=owner,
        provider="hunyuan_rapid",
        mode="text",
        prompt=prompt,
        options={"enable_pbr": pbr},
        form_token=uuid.uuid4(),
    )


def drive(generation, timeout=15.0, until=None):
    """Run the dispatcher until the generation is final or needs attention."""
    deadline = time.monotonic() + timeout
    until = until or (lambda g: g.is_final or g.state == State.NEEDS_ATTENTION)
    while time.monotonic() < deadline:
        generation.refresh_from_db()
        if until(generation):
            return generation
        Generation.objects.filter(pk=generation.pk, state=State.QUEUED).update(
            due_at=timezone.now()
        )
        tasks.dispatch()
        time.sleep(0.05)
    generation.refresh_from_db()
    raise AssertionError(f"generation still {generation.state} after {timeout} s")


def test_a_prompt_becomes_a_stored_glb(sandbox_server, inline_doorbells, member):
    generation = drive(queue(member))
    assert generation.state == State.FINISHED, generation.attention_reason
    roles = {a.role: a for a in generation.assets.all()}
    # Rapid answers a ZIP of OBJ + MTL + texture; we keep it and convert it for the preview.
    assert roles[Asset.Role.ORIGINAL].format == "zip"
    preview = roles[Asset.Role.PREVIEW]
    assert preview.format == "glb"
    with preview.file.open("rb") as fh:
        assert fh.read(4) == b"glTF"
    assert preview.facts["faces"] > 100
    assert preview.facts["vertices"] > 50
    assert len(preview.facts["dimensions"]) == 3
    entries = LedgerEntry.objects.filter(generation=generation)
    assert [(e.kind, e.amount) for e in entries] == [
        ("hold", -35),
        ("release", 35),
        ("charge", -35),
    ]
    assert len(upstream_calls(sandbox_server, "submit")) == 1
    assert generation.upstream_task_id
    assert generation.upstream_done_at is not None


def test_the_submit_delivered_five_times_at_once_submits_once(sandbox_server, member):
    generation = queue(member)
    assert at_once(*[partial(tasks.submit_generation, generation.pk)] * 5) == []
    generation.refresh_from_db()
    assert generation.state == State.PENDING
    assert len(upstream_calls(sandbox_server, "submit")) == 1
    assert LedgerEntry.objects.filter(generation=generation, kind="charge").count() == 1


@pytest.mark.parametrize(
    "fault, words",
    [
        ({"hang_submit_after_receive": 5}, "did not answer"),
        ({"drop_after_receive": "submit"}, "broke after the request was sent"),
        ({"malformed": {"submit": "missing_task_id"}}, "no task id"),
        ({"malformed": {"submit": "truncated_json"}}, "not JSON"),
        ({"malformed": {"submit": "html_200"}}, "not JSON"),
    ],
)
def test_an_unknown_submit_outcome_needs_attention_and_is_never_resent(
    sandbox_server, inline_doorbells, member, fault, words
):
    set_faults(sandbox_server, fault)
    generation = drive(queue(member))
    assert generation.state == State.NEEDS_ATTENTION
    assert words in generation.attention_reason
    # More dispatcher runs do not resend it.
    for _ in range(3):
        tasks.dispatch()
        tasks.sweep()
    assert len(upstream_calls(sandbox_server, "submit")) == 1
    assert not LedgerEntry.objects.filter(generation=generation, kind="charge").exists()
    # The hold stays until a person decides what happened upstream.
    assert LedgerEntry.objects.filter(generation=generation).balance() == -35


def test_503_three_times_then_it_proceeds(sandbox_server, inline_doorbells, member, monkeypatch):
    monkeypatch.setattr(tasks, "backoff", lambda attempt, **kw: 0.01)
    set_faults(sandbox_server, {"submit_5xx_next": 3})
    generation = drive(queue(member))
    assert generation.state == State.FINISHED
    assert generation.submit_attempts == 4
    assert len(upstream_calls(sandbox_server, "submit")) == 4


def test_connect_failures_are_retried_a_bounded_number_of_times(
    sandbox_server, inline_doorbells, member, monkeypatch, settings
):
    monkeypatch.setattr(tasks, "backoff", lambda attempt, **kw: 0.01)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings.UPSTREAM_BASE_URL = dead
    generation = drive(queue(member))
    assert generation.state == State.NEEDS_ATTENTION
    assert generation.submit_attempts == tasks.MAX_SUBMIT_ATTEMPTS
    assert "could not be reached" in generation.attention_reason


@pytest.mark.parametrize(
    "key_state, status_words",
    [("expired", "expired"), ("revoked", "revoked")],
)
def test_a_refused_key_fails_the_generation_and_alerts_admins(
    sandbox_server, inline_doorbells, member, key_state, status_words
):
    import requests

    requests.put(
        f"{sandbox_server.url}/_sandbox/keys",
        json={"sk-sandbox-sentinel-7f3a": key_state},
        timeout=5,
    )
    generation = drive(queue(member))
    assert generation.state == State.FAILED
    assert status_words in generation.failure_reason.lower()
    assert Alert.objects.filter(message__icontains="API key").exists()
    entries = LedgerEntry.objects.filter(generation=generation)
    assert [(e.kind, e.amount) for e in entries] == [("hold", -35), ("release", 35)]
    assert len(upstream_calls(sandbox_server, "submit")) == 1


def test_an_empty_wallet_fails_with_the_reason_in_words(sandbox_server, inline_doorbells, member):
    import requests

    requests.put(f"{sandbox_server.url}/_sandbox/wallet", json={"balance": "10.00"}, timeout=5)
    generation = drive(queue(member))
    assert generation.state == State.FAILED
    assert "credits" in generation.failure_reason.lower()
    assert len(upstream_calls(sandbox_server, "submit")) == 1


def test_a_failed_generation_is_refunded_once(sandbox_server, inline_doorbells, member):
    set_faults(sandbox_server, {"fail_rate": 1.0})
    generation = drive(queue(member))
    assert generation.state == State.FAILED
    assert generation.failure_reason
    entries = [(e.kind, e.amount) for e in LedgerEntry.objects.filter(generation=generation)]
    assert entries == [("hold", -35), ("release", 35), ("charge", -35), ("refund", 35)]


def test_finished_without_a_url_keeps_polling_until_it_appears(
    sandbox_server, inline_doorbells, member
):
    set_faults(sandbox_server, {"null_asset_polls": 2})
    generation = drive(queue(member))
    assert generation.state == State.FINISHED
    assert len(upstream_calls(sandbox_server, "poll")) >= 3


# Result files the upstream may send that must be refused: (sandbox fault, words of the reason).
BAD_RESULT_FILES = [
    ({"corrupt_asset": True}, "not what it claims"),
    ({"asset_host": "http://169.254.169.254"}, "only https"),
    ({"asset_host": "https://files.example.invalid"}, "allow-list"),
    ({"oversized_asset_mb": 3}, "cap"),
]


@pytest.mark.parametrize("fault, words", BAD_RESULT_FILES)
def test_bad_result_files_are_refused_and_never_shown_as_done(
    sandbox_server, inline_doorbells, member, settings, fault, words
):
    settings.ASSET_MAX_BYTES = 2 * 1024 * 1024
    set_faults(sandbox_server, fault)
    generation = drive(queue(member))
    assert generation.state == State.NEEDS_ATTENTION
    assert words in generation.attention_reason
    assert not generation.assets.filter(role__in=["model", "preview"]).exists()
    incoming = settings.MEDIA_ROOT / ".incoming"
    assert not incoming.exists() or not [p for p in incoming.iterdir() if p.is_file()]


def test_an_expired_url_is_refreshed_once_then_needs_attention(
    sandbox_server, inline_doorbells, member
):
    set_faults(sandbox_server, {"asset_ttl_seconds": 0})
    generation = drive(queue(member))
    assert generation.state == State.NEEDS_ATTENTION
    assert generation.url_refreshes == 1
    assert "could not be fetched" in generation.attention_reason


def test_a_429_blocks_the_whole_budget_for_retry_after(
    sandbox_server, inline_doorbells, member, redis_limiter
):
    set_faults(sandbox_server, {"force_429_next": 1})
    generation = queue(member)
    tasks.submit_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.QUEUED
    decision = redis_limiter.acquire()
    assert not decision.allowed
    assert decision.wait > 0.5  # the sandbox said Retry-After: 1
    assert generation.due_at > timezone.now() + timezone.timedelta(seconds=0.5)


def test_the_poll_errors_are_bounded(sandbox_server, inline_doorbells, member, monkeypatch):
    monkeypatch.setattr(tasks, "backoff", lambda attempt, **kw: 0.01)
    set_faults(sandbox_server, {"status_5xx_rate": 1.0})
    generation = drive(queue(member))
    assert generation.state == State.NEEDS_ATTENTION
    assert "Polling failed" in generation.attention_reason
    assert len(upstream_calls(sandbox_server, "poll")) == tasks.MAX_POLL_ERRORS


def test_an_unknown_status_is_treated_as_running_never_done(
    sandbox_server, inline_doorbells, member
):
    set_faults(sandbox_server, {"malformed": {"status": "unknown_status"}})
    generation = queue(member)
    with pytest.raises(AssertionError):
        drive(generation, timeout=2.0)
    generation.refresh_from_db()
    assert generation.state in (State.PENDING, State.IN_PROGRESS)
    assert not generation.assets.exists()


def test_a_step_that_keeps_dying_is_quarantined(member):
    generation = queue(member)
    Generation.objects.filter(pk=generation.pk).update(
        state=State.PENDING, deliveries=tasks.MAX_DELIVERIES, due_at=timezone.now()
    )
    tasks.dispatch()
    generation.refresh_from_db()
    assert generation.state == State.NEEDS_ATTENTION
    assert "Quarantined" in generation.attention_reason
    assert Alert.objects.filter(message__contains="quarantined").exists()


def test_the_sweep_asks_a_person_about_a_submit_interrupted_by_a_kill(sandbox_server, member):
    generation = queue(member)
    generation.claim_for_submit()  # the worker died right after this
    Generation.objects.filter(pk=generation.pk).update(
        due_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    tasks.sweep()
    tasks.dispatch()
    generation.refresh_from_db()
    assert generation.state == State.NEEDS_ATTENTION
    assert "may have accepted" in generation.attention_reason
    assert upstream_calls(sandbox_server, "submit") == []


def _due_rows(member, polls, submits):
    now = timezone.now()
    rows = [queue(member, prompt=f"p{i}") for i in range(polls + submits)]
    Generation.objects.filter(pk__in=[g.pk for g in rows[:polls]]).update(
        state=State.PENDING, due_at=now
    )
    Generation.objects.filter(pk__in=[g.pk for g in rows[polls:]]).update(due_at=now)
    return rows


def test_when_calls_are_short_polls_go_first(member, monkeypatch, settings, redis_limiter):
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 3
    monkeypatch.setattr(tasks, "_wallet_due", lambda now: False)  # read just now
    sent = []
    rows = _due_rows(member, 5, 5)
    monkeypatch.setattr(tasks.poll_generation, "delay", lambda pk, claim: sent.append(("poll", pk)))
    monkeypatch.setattr(
        tasks.submit_generation, "delay", lambda pk, claim=None: sent.append(("submit", pk))
    )
    tasks.dispatch()
    assert sent == [("poll", g.pk) for g in rows[:3]]


def test_two_dispatchers_at_once_hand_each_step_out_once(
    member, monkeypatch, settings, redis_limiter
):
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 1000
    sent = []
    monkeypatch.setattr(tasks.poll_generation, "delay", lambda pk, claim: sent.append(pk))
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda pk, claim=None: sent.append(pk))
    now = timezone.now()
    rows = [queue(member, prompt=f"p{i}") for i in range(20)]
    Generation.objects.filter(pk__in=[g.pk for g in rows[:10]]).update(
        state=State.PENDING, due_at=now
    )
    Generation.objects.filter(pk__in=[g.pk for g in rows[10:]]).update(due_at=now)
    sent.clear()  # the doorbells rung by create_queued
    assert at_once(tasks.dispatch, tasks.dispatch) == []
    assert sorted(sent) == sorted(g.pk for g in rows)


def test_a_request_that_cannot_be_prepared_is_requeued_not_stuck(
    sandbox_server, member, monkeypatch
):
    generation = queue(member)

    def broken(*args, **kwargs):
        raise FileNotFoundError("reference image missing")

    monkeypatch.setattr(type(generation.provider_spec), "request_body", broken)
    with pytest.raises(FileNotFoundError):
        tasks.submit_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.QUEUED
    assert generation.due_at > timezone.now()
    assert "could not prepare" in generation.attention_reason
    assert upstream_calls(sandbox_server, "submit") == []


def test_a_step_read_again_after_another_dispatcher_claimed_it_is_not_handed_out_twice(member):
    # The dispatcher orders the submits by id, then reads the rows again: one claimed by
    # another dispatcher in between comes back with that claim's later due time.
    now = timezone.now()
    generation = queue(member)
    Generation.objects.filter(pk=generation.pk).update(due_at=now)
    generation.refresh_from_db()
    assert tasks._claim_step(generation, now, timedelta(seconds=90))
    read_again = Generation.objects.get(pk=generation.pk)
    assert tasks._claim_step(read_again, now, timedelta(seconds=90)) is None
    assert Generation.objects.get(pk=generation.pk).deliveries == 1


def test_a_conversion_read_again_after_it_was_claimed_is_not_handed_out_twice(member):
    from tests.test_conversions_model import make_conversion

    now = timezone.now()
    conversion = make_conversion(member, due_at=now)
    assert conversion.claim_for_dispatch(now, timedelta(seconds=90))
    read_again = type(conversion).objects.get(pk=conversion.pk)
    assert read_again.claim_for_dispatch(now, timedelta(seconds=90)) is None
