"""End to end with real processes: the sandbox, Celery workers and beat, PostgreSQL and Redis."""

import uuid

import pytest
import requests
import trimesh

from credits.models import LedgerEntry
from generations.models import Generation, State
from tests.processes import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(tmp_path, settings):
    stack = Stack(tmp_path)
    settings.MEDIA_ROOT = stack.media
    try:
        yield stack
    finally:
        stack.stop()


def queue(owner, prompt):
    return Generation.objects.create_queued(
        owner=owner, provider="hunyuan_rapid", mode="text", prompt=prompt,
        options={"enable_pbr": True}, form_token=uuid.uuid4(),
    )  # fmt: skip


def final(generation):
    generation.refresh_from_db()
    return generation.is_final or generation.state == State.NEEDS_ATTENTION


def submits(stack):
    log = requests.get(f"{stack.sandbox_url}/_sandbox/log", timeout=5).json()
    entries = log["entries"] if isinstance(log, dict) else log
    return [e for e in entries if e["method"] == "POST" and not e["path"].startswith("/_sandbox/")]


def test_a_prompt_becomes_a_valid_stored_glb(stack, member):
    stack.start()
    generation = queue(member, "a golden robot")
    wait_for(lambda: final(generation), 60, message="the generation to finish")
    assert generation.state == State.FINISHED, (
        generation.attention_reason,
        stack.log_text("worker0"),
    )
    model = generation.glb_asset
    scene = trimesh.load(model.file.path, file_type="glb", force="scene")
    assert len(scene.geometry) >= 1
    assert model.facts["faces"] == sum(len(g.faces) for g in scene.geometry.values())
    assert len(submits(stack)) == 1
    assert LedgerEntry.objects.filter(generation=generation).balance() == -55


def test_a_lost_doorbell_is_recovered_by_the_dispatcher(stack, member, monkeypatch):
    from kombu.exceptions import OperationalError

    from generations import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    # The broker is down at publish time: the on_commit doorbell is lost, the row is not.
    with monkeypatch.context() as patch:
        patch.setattr(tasks.submit_generation, "delay", broker_down)
        generation = queue(member, "a blue vase")
    assert generation.state == State.QUEUED
    stack.start()
    wait_for(lambda: final(generation), 60, message="the dispatcher to submit it")
    assert generation.state == State.FINISHED
    assert len(submits(stack)) == 1
