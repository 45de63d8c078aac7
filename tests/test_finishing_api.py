"""POST /api/v1/generations/<id>/finish/<step>/: the page's form and model method over JSON."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credits.models import Budget, LedgerEntry
from generations import tasks
from generations.models import Conversion
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client
from tests.test_reviews_support import make_finished

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def job_doorbell(monkeypatch):
    rung = []
    monkeypatch.setattr(tasks.submit_conversion, "delay", rung.append)
    return rung


def finish(client, generation, kind, body, **headers):
    return client.post(
        f"/api/v1/generations/{generation.pk}/finish/{kind}/",
        body,
        content_type="application/json",
        **headers,
    )


def test_a_step_is_held_and_answered_with_its_job(member):
    generation = make_finished(member)
    response = finish(token_client(member), generation, "remesh", {"polygons": "quads"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["credits"], body["state"], body["source"]) == (
        "remesh",
        20,
        "queued",
        generation.pk,
    )
    assert body["new_version"] is None
    assert [(e.kind, e.amount) for e in LedgerEntry.objects.all()] == [("hold", -20)]


def test_the_same_idempotency_key_asks_once(member):
    client = token_client(member)
    generation = make_finished(member)
    for _ in range(2):
        response = finish(
            client, generation, "optimize", {"preset": "low"}, HTTP_IDEMPOTENCY_KEY="k1"
        )
        assert response.status_code == 201
    assert Conversion.objects.count() == 1
    assert LedgerEntry.objects.count() == 1


def test_bad_options_are_400_with_the_fields_named(member):
    response = finish(
        token_client(member), make_finished(member), "render", {"output": "video", "angle": "top"}
    )
    assert response.status_code == 400
    assert "angle" in str(response.json())
    assert not Conversion.objects.exists()


def test_an_impossible_step_is_409_in_words(member):
    generation = make_finished(member, upstream_done_at=timezone.now() - timedelta(hours=30))
    response = finish(token_client(member), generation, "render", {"angle": "front"})
    assert response.status_code == 409
    assert response.json()["code"] == "impossible"
    assert "takes only a URL" in response.json()["detail"]


def test_over_budget_is_402(member):
    Budget.objects.create(user=member, monthly_limit=50)
    response = finish(token_client(member), make_finished(member), "repair", {"hollow": True})
    assert response.status_code == 402
    assert response.json()["code"] == "budget_exceeded"
    assert not LedgerEntry.objects.exists()
