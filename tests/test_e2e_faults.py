"""Reliability with real processes: kill -9 at each step, Redis flushed, poison, rate budget.

Leases and deadlines are shortened (seconds instead of minutes) so recovery is
visible within a test; the mechanisms are the production ones.
"""

import time
import uuid

import pytest
import redis
from django.conf import settings

from credits.models import LedgerEntry
from generations.models import Alert, Asset, Generation, State
from tests.processes import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FAST_RECOVERY = {
    "STEP_LEASE": "4",
    "INGEST_LEASE": "8",
    "SUBMIT_DEADLINE": "4",
    "SWEEP_INTERVAL": "1",
    "DISPATCH_INTERVAL": "0.5",
}


@pytest.fixture
def stack(tmp_path, settings):
    stack = Stack(tmp_path, extra_env=FAST_RECOVERY)
    settings.MEDIA_ROOT = stack.media
    try:
        yield stack
    finally:
        stack.stop()


def queue(owner, prompt="a red chair"):
    return Generation.objects.create_queued(
        owner=owner, provider="hunyuan_rapid", mode="text", prompt=prompt,
        options={}, form_token=uuid.uuid4(),
    )  # fmt: skip


def settled(generation):
    generation.refresh_from_db()
    return generation.is_final or generation.state == State.NEEDS_ATTENTION


def test_worker_killed_after_the_upstream_accepted_is_never_resubmitted(stack, member):
    stack.start()
    stack.set_faults({"hang_submit_after_receive": 2.5})
    generation = queue(member)
    wait_for(lambda: stack.submits(), 20, interval=0.05, message="the submit to reach the sandbox")
    stack.kill("worker0")  # the upstream accepted and charged; we never heard back
    stack.start_worker("worker1")
    wait_for(lambda: settled(generation), 40, message="the sweep to flag it")
    assert generation.state == State.NEEDS_ATTENTION
    assert "may have accepted" in generation.attention_reason
    time.sleep(2)  # more dispatcher and sweep rounds: still nothing resent
    assert len(stack.submits()) == 1
    assert not LedgerEntry.objects.filter(generation=generation, kind="charge").exists()
    assert Alert.objects.filter(message__contains=f"Generation {generation.pk}").exists()


def test_worker_killed_mid_poll_still_finishes(stack, member):
    stack.start()
    generation = queue(member)
    wait_for(lambda: Generation.objects.get(pk=generation.pk).state == State.PENDING, 20)
    stack.set_faults({"hang_status": 2.5})
    wait_for(lambda: stack.polls(), 20, interval=0.05, message="a poll to reach the sandbox")
    stack.kill("worker0")
    stack.set_faults({})
    stack.start_worker("worker1")
    wait_for(lambda: settled(generation), 40, message="the generation to finish")
    assert generation.state == State.FINISHED, generation.attention_reason
    assert len(stack.submits()) == 1


def test_worker_killed_mid_download_stores_one_asset_per_result(stack, member):
    stack.start()
    stack.set_faults({"asset_drip_kbps": 200})
    generation = queue(member)
    wait_for(
        lambda: Generation.objects.get(pk=generation.pk).state == State.INGESTING, 30,
        interval=0.05, message="the ingest to start",
    )  # fmt: skip
    time.sleep(1.0)  # mid-download
    stack.kill("worker0")
    stack.set_faults({})
    stack.start_worker("worker1")
    wait_for(lambda: settled(generation), 60, message="the generation to finish")
    assert generation.state == State.FINISHED, generation.attention_reason
    originals = Asset.objects.filter(generation=generation, role="original")
    assert originals.count() == len(generation.results)
    assert Asset.objects.filter(generation=generation, role="preview").count() == 1
    assert len(stack.submits()) == 1


def test_redis_flushed_with_ten_generations_in_flight(stack, member):
    stack.start(workers=2)
    generations = [queue(member, f"a vase number {i}") for i in range(10)]
    time.sleep(1.5)  # mixed states: queued, pending, ingesting
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    try:
        for generation in generations:
            wait_for(lambda g=generation: settled(g), 60, message=f"generation {generation.pk}")
    finally:
        print([(g.pk, g.state, g.due_at, g.claim, g.deliveries) for g in Generation.objects.all()])
    assert [g.state for g in generations] == [State.FINISHED] * 10
    assert len(stack.submits()) == 10
    assert len({e["path"] for e in stack.submits()}) == 1
    assert LedgerEntry.objects.filter(kind="charge").count() == 10


def test_a_poison_generation_is_quarantined_after_three_deliveries(stack, member):
    stack.start(worker_module="tests.crashing_worker")
    poison = queue(member, "a poison apple")
    healthy = queue(member, "a green apple")
    wait_for(lambda: settled(poison) and settled(healthy), 90, message="both to settle")
    assert poison.state == State.NEEDS_ATTENTION
    assert "Quarantined" in poison.attention_reason
    assert poison.deliveries >= 3
    assert healthy.state == State.FINISHED
    assert Alert.objects.filter(message__contains="quarantined").exists()
    assert len(stack.submits()) == 2


def test_the_upstream_never_sees_more_than_its_limit_in_a_window(tmp_path, settings, member):
    window = 3
    stack = Stack(
        tmp_path,
        rate_limit=3,
        sandbox_args=["--rate-window", str(window)],
        extra_env={
            **FAST_RECOVERY,
            "UPSTREAM_RATE_WINDOW": str(window),
            "UPSTREAM_RATE_LIMIT": "3",
        },
    )
    settings.MEDIA_ROOT = stack.media
    try:
        stack.start(workers=2)
        generations = [queue(member, f"a cube {i}") for i in range(8)]
        for generation in generations:
            wait_for(lambda g=generation: settled(g), 120, message=f"generation {generation.pk}")
        assert [g.state for g in generations] == [State.FINISHED] * 8
        counted = [e for e in stack.sandbox_log() if e.get("counted")]
        assert not [e for e in stack.sandbox_log() if e["status"] == 429]
        times = sorted(e["time"] for e in counted)
        busiest = max(sum(1 for t in times if start <= t < start + window) for start in times)
        assert busiest <= 3
    finally:
        stack.stop()
