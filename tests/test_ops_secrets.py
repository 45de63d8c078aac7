"""The API key never appears in HTML, logs, task arguments or the database.

One generation runs through the whole pipeline (in this process, against the
sandbox over real HTTP, whose key is the sentinel); then every place the key
could leak to is searched for it.
"""

import io
import json
import logging

import pytest
from django.apps import apps
from django.db import models
from django.urls import reverse

from generations import tasks
from generations.models import Generation, State
from ops.logs import JsonFormatter
from tests.conftest import SANDBOX_KEY
from tests.test_pipeline import drive, queue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recorded_delays(monkeypatch):
    """Every .delay() is recorded with its arguments, then run here as a worker would."""
    calls = []
    for task in (
        tasks.submit_generation,
        tasks.poll_generation,
        tasks.ingest_generation,
        tasks.submit_conversion,
        tasks.poll_conversion,
    ):

        def delay(*args, _task=task, **kwargs):
            calls.append((_task.name, args, kwargs))
            return _task(*args, **kwargs)

        monkeypatch.setattr(task, "delay", delay)
    return calls


@pytest.fixture
def json_console():
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    old_stream, old_formatter = handler.setStream(buffer), handler.formatter
    handler.setFormatter(JsonFormatter())
    yield buffer
    handler.setStream(old_stream)
    handler.setFormatter(old_formatter)


def text_values():
    """Every text-ish value in every table (char, text, JSON columns)."""
    for model in apps.get_models():
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        if not fields:
            continue
        for row in model._default_manager.values_list(*fields):
            for name, value in zip(fields, row, strict=True):
                yield f"{model._meta.label}.{name}", value


def test_the_key_never_leaks_from_a_full_generation(
    sandbox_server, recorded_delays, json_console, client, member, admin_user, redis_limiter
):
    generation = drive(queue(member))
    assert generation.state == State.FINISHED, generation.attention_reason
    assert tasks.refresh_wallet() is not None  # the wallet call uses the key too
    tasks.sweep()
    # A pipeline line that tries hard to leak it.
    logging.getLogger("generations.upstream").warning("using key %s", SANDBOX_KEY)

    # Task arguments.
    assert recorded_delays, "the pipeline enqueued nothing?"
    assert {name for name, _, _ in recorded_delays} >= {
        "generations.tasks.submit_generation",
        "generations.tasks.poll_generation",
        "generations.tasks.ingest_generation",
    }
    for name, args, kwargs in recorded_delays:
        assert SANDBOX_KEY not in repr((args, kwargs)), name

    # Logs: every line is JSON, pipeline lines carry the generation id, no key.
    output = json_console.getvalue()
    assert SANDBOX_KEY not in output
    entries = [json.loads(line) for line in output.splitlines()]
    submitted = [e for e in entries if "submitted as upstream task" in e["message"]]
    assert submitted and submitted[0]["generation_id"] == generation.pk

    # The database.
    leaks = [where for where, value in text_values() if SANDBOX_KEY in str(value)]
    assert leaks == []

    # The main pages, for a member and an admin.
    pages = [
        reverse("home"),
        reverse("generations:list"),
        reverse("generations:detail", args=[generation.pk]),
        reverse("generations:new"),
        reverse("library:index"),
    ]
    admin_pages = [
        reverse("reviews:queue"),
        reverse("generations:attention"),
        reverse("credits:spend"),
        reverse("credits:wallet"),
        reverse("ops:status"),
        reverse("ops:metrics"),
        reverse("ops:healthz"),
        reverse("admin:generations_generation_change", args=[generation.pk]),
    ]
    client.force_login(member)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SANDBOX_KEY not in response.content.decode(), url
    client.force_login(admin_user)
    for url in pages + admin_pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SANDBOX_KEY not in response.content.decode(), url


def test_the_database_search_would_find_a_leak(member):
    """A control: the search above is not blind."""
    from generations.models import Alert

    Alert.objects.create(message=f"oops {SANDBOX_KEY}")
    Generation.objects.create(
        owner=member, provider="hunyuan_rapid", credit_estimate=1, options={"k": SANDBOX_KEY}
    )
    leaks = {where for where, value in text_values() if SANDBOX_KEY in str(value)}
    assert leaks == {"generations.Alert.message", "generations.Generation.options"}
