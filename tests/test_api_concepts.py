"""Concept jobs through the API: the image models, the estimate, a job made (JSON and
multipart, idempotent), followed, listed and downloaded, and picked images made a model,
through the same forms and model methods as the pages."""

import base64

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from credits.models import Budget, LedgerEntry
from generations import concepts, tasks
from generations.models import ConceptJob, ConceptPick, Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import png, token_client
from tests.conftest import make_user
from tests.test_concepts_views import finished_job

pytestmark = pytest.mark.django_db
CONCEPTS = "/api/v1/concepts/"


@pytest.fixture
def rung(monkeypatch):
    """The concept and generation doorbells, recorded instead of sent to a broker."""
    rung = []
    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *a: rung.append(("concept", a)))
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *a: rung.append(("model", a)))
    return rung


@pytest.fixture
def api(member):
    return token_client(member)


def post_json(client, url, body, **headers):
    return client.post(url, body, content_type="application/json", **headers)


# --- the catalogue and the estimate ------------------------------------------------------------


def test_the_image_models_list_their_options_and_prices(api):
    models = {m["key"]: m for m in api.get("/api/v1/image-models/").json()["image_models"]}
    assert set(models) == {"gemini_3_pro", "gemini_31_flash", "gemini_25_flash", "seedream_v5_lite"}
    pro = models["gemini_3_pro"]
    assert pro["credits_per_image"] == {"1K": 50, "2K": 50, "4K": 80}
    assert pro["priced_by"] == "resolution" and pro["max_images"] == 4
    resolution = next(o for o in pro["options"] if o["name"] == "resolution")
    assert resolution["choices"] == ["1K", "2K", "4K"] and resolution["default"] == "1K"
    assert models["gemini_25_flash"]["credits_per_image"] == {"each": 5}


def test_the_estimate_is_the_pages_price_with_the_budget_left(api, member):
    Budget.objects.create(user=member, monthly_limit=500)
    body = {"image_model": "gemini_3_pro", "count": 3, "options": {"resolution": "4K"}}
    answer = post_json(api, "/api/v1/concepts/estimate/", body).json()
    assert (answer["total"], answer["count"], answer["remaining"]) == (240, 3, 500)
    assert answer["breakdown"] == [{"label": "3 x 80 credits an image:", "credits": 240}]
    assert answer["errors"] == {}


def test_the_estimate_names_a_bad_option_and_an_unknown_model(api):
    bad = post_json(
        api, "/api/v1/concepts/estimate/", {"image_model": "gemini_3_pro", "count": 9}
    ).json()
    assert list(bad["errors"]) == ["count"]
    unknown = post_json(api, "/api/v1/concepts/estimate/", {"image_model": "dalle"})
    assert unknown.status_code == 400 and list(unknown.json()["errors"]) == ["image_model"]


# --- making a job ----------------------------------------------------------------------------


def test_a_json_job_is_held_and_its_doorbell_rung(
    api, member, rung, django_capture_on_commit_callbacks
):
    body = {
        "image_model": "gemini_3_pro",
        "prompt": "a ceramic fox",
        "count": 2,
        "options": {"resolution": "2K", "aspect_ratio": "1:1"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(api, CONCEPTS, body, HTTP_IDEMPOTENCY_KEY="fox")
    assert response.status_code == 201, response.json()
    job = ConceptJob.objects.get()
    answer = response.json()
    assert answer["id"] == job.pk and answer["state"] == "queued"
    assert answer["credit_estimate"] == 100 and answer["images"] == []
    assert answer["page_url"].endswith(f"/concepts/{job.pk}/")
    assert job.owner == member and job.options["resolution"] == "2K" and job.count == 2
    hold = LedgerEntry.objects.get()
    assert (hold.kind, hold.amount) == ("hold", -100)
    assert rung == [("concept", (job.pk,))]


def test_reference_images_in_json_and_multipart_make_it_an_edit(api, rung):
    encoded = base64.b64encode(png()).decode()
    body = {"image_model": "gemini_25_flash", "prompt": "bluer", "count": 1, "images": [encoded]}
    assert post_json(api, CONCEPTS, body).status_code == 201
    upload = SimpleUploadedFile("ref.png", png(), content_type="image/png")
    sent = api.post(
        CONCEPTS,
        {"image_model": "gemini_3_pro", "prompt": "bluer", "count": "1", "resolution": "4K",
         "images": [upload]},
    )  # fmt: skip
    assert sent.status_code == 201, sent.json()
    first, second = ConceptJob.objects.order_by("pk")
    assert first.references.count() == second.references.count() == 1
    assert second.options["resolution"] == "4K" and second.is_edit
    assert sent.json()["references"][0]["url"].endswith(
        f"/api/v1/concepts/{second.pk}/references/{second.references.get().pk}/"
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({"prompt": "a fox"}, "image_model"),
        ({"image_model": "dalle", "prompt": "a fox"}, "image_model"),
        ({"image_model": "gemini_3_pro"}, "prompt"),
        ({"image_model": "gemini_3_pro", "prompt": "a fox", "count": 5}, "count"),
        ({"image_model": "gemini_3_pro", "prompt": "a fox", "count": "many"}, "count"),
        (
            {"image_model": "gemini_3_pro", "prompt": "a fox", "options": {"resolution": "8K"}},
            "options.resolution",
        ),
        (
            {"image_model": "gemini_3_pro", "prompt": "a fox", "options": {"image_size": "x"}},
            "options.image_size",
        ),
        ({"image_model": "gemini_3_pro", "prompt": "a fox", "images": ["%%"]}, "images.0"),
        (
            {"image_model": "gemini_3_pro", "prompt": "a fox", "images": ["aGVsbG8="]},
            "images",
        ),
        ({"image_model": "gemini_3_pro", "prompt": "a fox", "edit_of": 999999}, "edit_of"),
        ({"image_model": "gemini_3_pro", "prompt": "a fox", "colour": "red"}, "colour"),
    ],
)
def test_every_bad_field_is_a_400_naming_it_and_nothing_is_made(api, rung, body, field):
    response = post_json(api, CONCEPTS, body)
    assert response.status_code == 400, response.json()
    assert list(response.json()["errors"]) == [field]
    assert not ConceptJob.objects.exists() and not LedgerEntry.objects.exists()


def test_over_the_budget_is_refused_like_a_generation(api, member, rung):
    Budget.objects.create(user=member, monthly_limit=60)
    body = {"image_model": "gemini_3_pro", "prompt": "a fox", "count": 2}
    response = post_json(api, CONCEPTS, body)
    assert response.status_code == 402
    answer = response.json()
    assert answer["code"] == "budget_exceeded"
    assert answer["detail"].startswith("This concept job costs 100 credits")
    assert (answer["budget"]["limit"], answer["budget"]["left"]) == (60, 60)
    assert not ConceptJob.objects.exists() and not LedgerEntry.objects.exists()


def test_edit_again_starts_from_a_visible_image_and_its_model(api, member, django_user_model, rung):
    source = finished_job(member)
    image = source.images.first()
    body = {"prompt": "bluer", "count": 1, "edit_of": image.pk}
    response = post_json(api, CONCEPTS, body)
    assert response.status_code == 201, response.json()
    job = ConceptJob.objects.exclude(pk=source.pk).get()
    assert job.edit_of == image and job.image_model == "gemini_25_flash"
    # Someone who may generate but sees only their own work cannot edit the member's image.
    loner = make_user(django_user_model, "loner")
    loner.user_permissions.add(Permission.objects.get(codename="add_generation"))
    stranger = post_json(token_client(loner), CONCEPTS, {**body, "image_model": "gemini_25_flash"})
    assert stranger.status_code == 400 and list(stranger.json()["errors"]) == ["edit_of"]


def test_a_role_without_generating_cannot_make_a_job(reviewer, rung):
    body = {"image_model": "gemini_25_flash", "prompt": "a fox", "count": 1}
    assert post_json(token_client(reviewer), CONCEPTS, body).status_code == 403


# --- following, listing, downloading ---------------------------------------------------------


def test_a_finished_job_shows_its_images_with_download_urls(api, member):
    job = finished_job(member)
    answer = api.get(f"{CONCEPTS}{job.pk}/").json()
    assert answer["state"] == "finished" and answer["state_label"] == "Finished"
    assert answer["image_model_label"] == "Gemini 2.5 Flash"
    assert [i["position"] for i in answer["images"]] == [0, 1]
    first = job.images.get(position=0)
    url = answer["images"][0]["url"]
    assert url.endswith(f"/api/v1/concepts/{job.pk}/images/{first.pk}/")
    download = api.get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == first.file.open("rb").read()
    assert download["Content-Disposition"] == (
        f'attachment; filename="concept-{job.pk}-image-1.png"'
    )


def test_a_failed_job_says_why(api, member):
    job = ConceptJob.objects.create(
        owner=member,
        image_model="gemini_3_pro",
        prompt="x",
        credit_estimate=50,
        state=State.FAILED,
        failure_reason="The prompt was refused by the safety filter.",
    )
    answer = api.get(f"{CONCEPTS}{job.pk}/").json()
    assert answer["state"] == "failed"
    assert answer["failure_reason"] == "The prompt was refused by the safety filter."


def test_a_strangers_job_and_its_images_are_404(member, outsider):
    job = finished_job(member)
    stranger = token_client(outsider)
    image = job.images.first()
    assert stranger.get(f"{CONCEPTS}{job.pk}/").status_code == 404
    assert stranger.get(f"{CONCEPTS}{job.pk}/images/{image.pk}/").status_code == 404
    picked = post_json(stranger, f"{CONCEPTS}{job.pk}/model/", {"provider": "trellis2"})
    assert picked.status_code == 404


def test_an_image_of_another_job_is_not_found_under_this_one(api, member):
    job, other = finished_job(member), finished_job(member)
    image = other.images.first()
    assert api.get(f"{CONCEPTS}{job.pk}/images/{image.pk}/").status_code == 404


def test_the_list_is_my_own_jobs_paginated_in_few_queries(
    api, member, second_member, django_assert_max_num_queries
):
    for _ in range(3):
        finished_job(member)
    finished_job(second_member)
    with django_assert_max_num_queries(9):
        answer = api.get(CONCEPTS, {"page_size": 2}).json()
    assert answer["count"] == 3 and len(answer["results"]) == 2 and answer["next"]
    assert {r["owner"] for r in answer["results"]} == {"member"}
    assert all(len(r["images"]) == 2 for r in answer["results"])


# --- a pick made a model ---------------------------------------------------------------------


def test_a_picked_image_becomes_an_image_to_3d_generation_once(
    api, member, rung, django_capture_on_commit_callbacks
):
    job = finished_job(member, count=3)
    chosen = job.images.get(position=1)
    body = {"provider": "tripo_v3", "edition": "3.1", "image": chosen.pk}
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            post_json(api, f"{CONCEPTS}{job.pk}/model/", body, HTTP_IDEMPOTENCY_KEY="pick")
            for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [201, 201], answers[0].json()
    generation = Generation.objects.get()
    assert answers[0].json()["id"] == answers[1].json()["id"] == generation.pk
    assert (generation.provider, generation.edition, generation.mode) == (
        "tripo_v3",
        "3.1",
        "image",
    )
    assert [(p.image, p.slot) for p in ConceptPick.objects.all()] == [(chosen, "image")]
    assert rung == [("model", (generation.pk,))]
    assert api.get(f"{CONCEPTS}{job.pk}/").json()["models"] == [generation.pk]


def test_picked_images_fill_the_view_slots_of_a_multi_view(api, member, rung):
    job = finished_job(member)
    front, back = job.images.all()
    body = {
        "provider": "hunyuan_pro",
        "edition": "3.1",
        "views": {"front": front.pk, "back": back.pk},
    }
    response = post_json(api, f"{CONCEPTS}{job.pk}/model/", body)
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.mode == "multiview"
    assert sorted(generation.images.values_list("slot", flat=True)) == ["back", "front"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"image": "first"}, "provider"),
        ({"provider": "nobody", "image": "first"}, "provider"),
        ({"provider": "hunyuan_pro", "edition": "9", "image": "first"}, "edition"),
        ({"provider": "hunyuan_rapid", "mode": "text", "image": "first"}, "mode"),
        ({"provider": "trellis2"}, "image"),
        ({"provider": "trellis2", "image": 999999}, "image"),
        ({"provider": "hunyuan_pro", "edition": "3.1", "views": {"back": "first"}}, "views"),
        ({"provider": "hunyuan_pro", "edition": "3.1", "views": {"side": "first"}}, "views.side"),
        ({"provider": "trellis2", "image": "first", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_pick_is_a_400_naming_the_field(api, member, rung, body, field):
    job = finished_job(member)
    first = job.images.first().pk
    body = {k: first if v == "first" else v for k, v in body.items()}
    if "views" in body:
        body["views"] = {k: first if v == "first" else v for k, v in body["views"].items()}
    response = post_json(api, f"{CONCEPTS}{job.pk}/model/", body)
    assert response.status_code == 400, response.json()
    assert list(response.json()["errors"]) == [field]
    assert not Generation.objects.exists()


def test_an_image_of_another_job_cannot_be_picked(api, member, rung):
    job, other = finished_job(member), finished_job(member)
    body = {"provider": "trellis2", "image": other.images.first().pk}
    response = post_json(api, f"{CONCEPTS}{job.pk}/model/", body)
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "image": [f"Select a valid choice. {body['image']} is not one of the available choices."]
    }


def test_a_job_not_finished_has_nothing_to_pick(api, member):
    job = ConceptJob.objects.create(
        owner=member, image_model="gemini_3_pro", prompt="x", credit_estimate=50
    )
    response = post_json(api, f"{CONCEPTS}{job.pk}/model/", {"provider": "trellis2", "image": 1})
    assert response.status_code == 409
    assert response.json()["code"] == "not_finished" and "queued" in response.json()["detail"]


def test_a_teammate_may_look_but_not_model_it(member, second_member, rung):
    job = finished_job(member)
    teammate = token_client(second_member)
    assert teammate.get(f"{CONCEPTS}{job.pk}/").status_code == 200
    body = {"provider": "trellis2", "image": job.images.first().pk}
    assert post_json(teammate, f"{CONCEPTS}{job.pk}/model/", body).status_code == 403


def test_a_model_over_the_budget_is_refused_like_a_generation(api, member, rung):
    Budget.objects.create(user=member, monthly_limit=10)
    job = finished_job(member)
    body = {"provider": "hunyuan_rapid", "image": job.images.first().pk}
    response = post_json(api, f"{CONCEPTS}{job.pk}/model/", body)
    assert response.status_code == 402 and response.json()["code"] == "budget_exceeded"
    assert response.json()["budget"]["left"] == 10
    assert not Generation.objects.exists()


def test_the_schema_documents_the_concept_endpoints(api):
    paths = api.get("/api/v1/schema/", {"format": "json"}).json()["paths"]
    for path in (
        "/api/v1/image-models/",
        "/api/v1/concepts/",
        "/api/v1/concepts/estimate/",
        "/api/v1/concepts/{id}/",
        "/api/v1/concepts/{id}/model/",
        "/api/v1/concepts/{id}/images/{image_pk}/",
        "/api/v1/generations/{id}/steps/{step_pk}/",
    ):
        assert path in paths, path
    assert "422" in paths["/api/v1/concepts/"]["post"]["responses"]
