"""An Idempotency-Key names one request: the same key and body replay the first answer,
the key sent with another body (or to another URL) is refused with 422 and makes nothing
(the IETF idempotency-key draft), for every endpoint that takes the header."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from api.models import IdempotencyKey
from credits.models import LedgerEntry
from generations import concepts, tasks
from generations.models import ConceptJob, Conversion, Generation
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import png, token_client
from tests.conftest import at_once, ensure_roles, make_user
from tests.test_concepts_views import finished_job
from tests.test_reviews_support import make_finished

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def doorbells(monkeypatch):
    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *a: None)
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *a: None)
    monkeypatch.setattr(tasks.submit_conversion, "delay", lambda *a: None)


def _generations(member):
    body = {"provider": "hunyuan_rapid", "prompt": "a chair", "options": {"enable_pbr": True}}
    other = {**body, "prompt": "a table"}
    return "/api/v1/generations/", body, other, Generation.objects.all


def _regenerate(member):
    source = make_finished(member)
    body = {"prompt": "a taller chair"}
    other = {"prompt": "a lower chair"}
    return (
        f"/api/v1/generations/{source.pk}/regenerate/",
        body,
        other,
        lambda: Generation.objects.exclude(pk=source.pk),
    )


def _finish(member):
    source = make_finished(member)
    url = f"/api/v1/generations/{source.pk}/finish/optimize/"
    return url, {"preset": "low"}, {"preset": "default"}, Conversion.objects.all


def _concepts(member):
    body = {"image_model": "gemini_3_pro", "prompt": "a fox", "count": 1}
    other = {**body, "count": 2}
    return "/api/v1/concepts/", body, other, ConceptJob.objects.all


def _concept_model(member):
    job = finished_job(member)
    first, second = job.images.all()
    url = f"/api/v1/concepts/{job.pk}/model/"
    body = {"provider": "trellis2", "image": first.pk}
    return url, body, {**body, "image": second.pk}, Generation.objects.all


ENDPOINTS = {
    "generations": _generations,
    "regenerate": _regenerate,
    "finish": _finish,
    "concepts": _concepts,
    "concept-model": _concept_model,
}


def post(client, url, body, key):
    return client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_the_same_key_and_body_replay_the_first_answer(member, endpoint):
    url, body, _other, made = ENDPOINTS[endpoint](member)
    client = token_client(member)
    first = post(client, url, body, "k1")
    assert first.status_code == 201, first.json()
    # The same body with its keys in another order is the same request.
    again = client.post(
        url,
        json.dumps(dict(reversed(list(body.items())))),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert again.json()["id"] == first.json()["id"]
    assert made().count() == 1
    assert LedgerEntry.objects.filter(kind="hold").count() == 1


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_the_same_key_with_another_body_is_refused_with_422(member, endpoint):
    url, body, other, made = ENDPOINTS[endpoint](member)
    client = token_client(member)
    assert post(client, url, body, "k1").status_code == 201
    holds = LedgerEntry.objects.count()
    refused = post(client, url, other, "k1")
    assert refused.status_code == 422, refused.content
    answer = refused.json()
    assert answer["code"] == "idempotency_key_reused"
    assert "different request" in answer["detail"]
    assert made().count() == 1 and LedgerEntry.objects.count() == holds
    # The first request is still answered to its own body, and a new key is a new request.
    assert post(client, url, body, "k1").status_code == 201
    assert post(client, url, other, "k2").status_code == 201
    assert made().count() == 2


def test_the_same_key_to_another_url_is_another_request(member):
    client = token_client(member)
    first, second = make_finished(member), make_finished(member)
    body = {"prompt": "taller"}
    assert post(client, f"/api/v1/generations/{first.pk}/regenerate/", body, "k").status_code == 201
    refused = post(client, f"/api/v1/generations/{second.pk}/regenerate/", body, "k")
    assert refused.status_code == 422
    assert Generation.objects.filter(previous_version=second).count() == 0


def test_a_refused_request_does_not_use_up_its_key(member):
    client = token_client(member)
    bad = post(client, "/api/v1/concepts/", {"image_model": "gemini_3_pro", "count": 1}, "k")
    assert bad.status_code == 400
    good = {"image_model": "gemini_3_pro", "prompt": "a fox", "count": 1}
    assert post(client, "/api/v1/concepts/", good, "k").status_code == 201
    assert IdempotencyKey.objects.count() == 1


def test_a_budget_refusal_does_not_use_up_its_key(member):
    from credits.models import Budget

    budget = Budget.objects.create(user=member, monthly_limit=10)
    client = token_client(member)
    body = {"provider": "hunyuan_rapid", "prompt": "a chair"}
    assert post(client, "/api/v1/generations/", body, "k").status_code == 402
    budget.monthly_limit = 100
    budget.save()
    assert (
        post(client, "/api/v1/generations/", {**body, "prompt": "a stool"}, "k").status_code == 201
    )


def test_a_multipart_body_is_fingerprinted_with_its_files(member):
    client = token_client(member)

    def send(color):
        upload = SimpleUploadedFile("ref.png", png(color=color), content_type="image/png")
        fields = {"image_model": "gemini_25_flash", "prompt": "bluer", "count": "1"}
        return client.post(
            "/api/v1/concepts/", {**fields, "images": [upload]}, HTTP_IDEMPOTENCY_KEY="m"
        )

    first = send((1, 2, 3))
    assert first.status_code == 201, first.json()
    assert send((1, 2, 3)).json()["id"] == first.json()["id"]
    assert send((200, 2, 3)).status_code == 422
    assert ConceptJob.objects.count() == 1


def test_the_key_itself_is_not_stored(member):
    post(
        token_client(member),
        "/api/v1/concepts/",
        {"image_model": "gemini_3_pro", "prompt": "x"},
        "secret-key-1",
    )
    record = IdempotencyKey.objects.get()
    assert "secret-key-1" not in f"{record.token} {record.fingerprint}"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_bodies_under_one_key_make_one_job_and_one_refusal(django_user_model):
    ensure_roles()
    owner = make_user(django_user_model, "racer", "Members")
    clients = [token_client(owner, "a"), token_client(owner, "b")]
    answers = []

    def send(client, prompt):
        def run():
            body = {"provider": "hunyuan_rapid", "prompt": prompt}
            answers.append(post(client, "/api/v1/generations/", body, "same"))

        return run

    assert at_once(send(clients[0], "a chair"), send(clients[1], "a table")) == []
    assert sorted(a.status_code for a in answers) == [201, 422]
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="hold").count() == 1
