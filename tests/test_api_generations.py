"""The generations API: catalogue, estimate, create (JSON and multipart, idempotent),
list, detail, download and regenerate, through the same forms and model methods as
the pages."""

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from credits.models import Budget, LedgerEntry
from generations.models import Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import png, token_client
from tests.conftest import at_once, ensure_roles, make_user, rapid_generation
from tests.test_reviews_support import GLB_STUB, make_finished

pytestmark = pytest.mark.django_db
GENERATIONS = "/api/v1/generations/"


def post_json(client, url, body, **headers):
    return client.post(url, body, content_type="application/json", **headers)


@pytest.fixture
def api(member):
    return token_client(member)


def test_the_catalogue_lists_every_provider_with_options_and_prices(api):
    providers = {p["key"]: p for p in api.get("/api/v1/providers/").json()["providers"]}
    assert {"hunyuan_pro", "hunyuan_rapid"} <= set(providers)
    rapid = providers["hunyuan_rapid"]
    text = next(c for c in rapid["combinations"] if c["mode"] == "text")
    assert text["takes_prompt"] is True
    assert text["default_cost"] == 35
    assert {o["name"] for o in text["options"]} >= {"enable_pbr"}
    pro = providers["hunyuan_pro"]
    assert [e["key"] for e in pro["editions"]] == ["3.0", "3.1"]
    multiview = [c for c in pro["combinations"] if c["mode"] == "multiview"]
    assert multiview and all(c["views"] for c in multiview)


def test_the_estimate_is_the_forms_price_with_the_budget_left(api, member):
    Budget.objects.create(user=member, monthly_limit=500)
    body = {"provider": "hunyuan_rapid", "options": {"enable_pbr": True}}
    answer = post_json(api, "/api/v1/estimate/", body).json()
    from generations import pricing

    expected = pricing.estimate("hunyuan_rapid", "text", {"enable_pbr": True})
    assert answer["total"] == expected.total
    assert answer["breakdown"][0]["label"] == "Base"
    assert answer["remaining"] == 500
    assert answer["errors"] == {}


def test_the_estimate_refuses_an_unknown_provider_on_its_field(api):
    response = post_json(api, "/api/v1/estimate/", {"provider": "nope"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["provider"]


def test_a_json_create_holds_the_estimate_and_rings_the_doorbell(
    api, member, doorbell, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(
            api,
            GENERATIONS,
            {"provider": "hunyuan_rapid", "prompt": "a red chair", "options": {"enable_pbr": True}},
            HTTP_IDEMPOTENCY_KEY="chair-1",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    generation = Generation.objects.get()
    assert body["id"] == generation.pk and body["state"] == "queued"
    assert body["queue_position"] == 1 and body["estimated_start"]
    assert body["can_cancel"] is True
    assert generation.owner == member and generation.options["enable_pbr"] is True
    hold = LedgerEntry.objects.get(generation=generation)
    assert hold.kind == "hold" and hold.amount == -generation.credit_estimate
    assert doorbell == [generation.pk]


def test_a_base64_image_makes_an_image_generation(api):
    image = base64.b64encode(png()).decode()
    response = post_json(
        api,
        GENERATIONS,
        {"provider": "hunyuan_rapid", "mode": "image", "images": {"image": image}},
    )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.mode == "image"
    assert [i.slot for i in generation.images.all()] == ["image"]


def test_multipart_takes_the_pages_field_names(api):
    response = api.post(
        GENERATIONS,
        {
            "provider": "hunyuan_rapid",
            "mode": "image",
            "enable_pbr": "true",
            "image": SimpleUploadedFile("ref.png", png(), content_type="image/png"),
        },
    )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.images.count() == 1
    assert generation.options["enable_pbr"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "nope", "prompt": "x"}, "provider"),
        ({"provider": "hunyuan_rapid", "mode": "sculpt", "prompt": "x"}, "mode"),
        ({"provider": "hunyuan_rapid", "edition": "9", "prompt": "x"}, "edition"),
        ({"provider": "hunyuan_pro", "edition": "9", "prompt": "x"}, "edition"),
        ({"provider": "hunyuan_rapid"}, "prompt"),
        ({"provider": "hunyuan_rapid", "prompt": "x", "options": {"colour": 1}}, "options.colour"),
        ({"provider": "hunyuan_rapid", "prompt": "x", "options": "pbr"}, "options"),
        ({"provider": "hunyuan_rapid", "prompt": "x", "speed": 1}, "speed"),
        ({"provider": "hunyuan_rapid", "mode": "image"}, "images.image"),
        ({"provider": "hunyuan_rapid", "mode": "image", "images": {"image": "%%"}}, "images.image"),
        (
            {"provider": "hunyuan_rapid", "mode": "image", "images": {"image": "aGVsbG8="}},
            "images.image",
        ),
        ({"provider": "hunyuan_rapid", "mode": "image", "images": {"back": "aGk="}}, "images.back"),
    ],
)
def test_errors_are_json_with_a_message_on_the_field(api, body, field):
    response = post_json(api, GENERATIONS, body)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid"
    assert field in answer["errors"], answer
    assert all(isinstance(m, str) and m for m in answer["errors"][field])
    assert not Generation.objects.exists()


def test_an_option_value_is_checked_by_the_catalogue(api):
    body = {"provider": "hunyuan_pro", "prompt": "x", "options": {"face_count": 3}}
    response = post_json(api, GENERATIONS, body)
    assert response.status_code == 400
    assert "options.face_count" in response.json()["errors"]


def test_a_refused_budget_is_a_402_naming_the_budget(api, member):
    Budget.objects.create(user=member, monthly_limit=10)
    response = post_json(api, GENERATIONS, {"provider": "hunyuan_rapid", "prompt": "a chair"})
    assert response.status_code == 402
    answer = response.json()
    assert answer["code"] == "budget_exceeded"
    assert "your monthly budget" in answer["detail"]
    assert answer["budget"] == {
        "name": "your monthly budget",
        "provider": "",
        "limit": 10,
        "left": 10,
    }
    assert not Generation.objects.exists() and not LedgerEntry.objects.exists()


def test_the_same_idempotency_key_returns_the_first_generation(api, member):
    body = {"provider": "hunyuan_rapid", "prompt": "a chair"}
    first = post_json(api, GENERATIONS, body, HTTP_IDEMPOTENCY_KEY="k")
    again = post_json(api, GENERATIONS, body, HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    assert Generation.objects.count() == 1
    other = post_json(api, GENERATIONS, body, HTTP_IDEMPOTENCY_KEY="k2")
    assert other.json()["id"] != first.json()["id"]


def test_two_people_may_use_the_same_key(api, second_member):
    body = {"provider": "hunyuan_rapid", "prompt": "a chair"}
    mine = post_json(api, GENERATIONS, body, HTTP_IDEMPOTENCY_KEY="k")
    theirs = post_json(token_client(second_member), GENERATIONS, body, HTTP_IDEMPOTENCY_KEY="k")
    assert mine.json()["id"] != theirs.json()["id"]
    assert Generation.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_generation_and_one_hold(
    django_user_model, doorbell
):
    ensure_roles()
    owner = make_user(django_user_model, "racer", "Members")
    clients = [token_client(owner, "a"), token_client(owner, "b")]
    body = {"provider": "hunyuan_rapid", "prompt": "a chair"}
    answers = []

    def send(client):
        def run():
            answers.append(post_json(client, GENERATIONS, body, HTTP_IDEMPOTENCY_KEY="same"))

        return run

    assert at_once(*(send(c) for c in clients)) == []
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="hold").count() == 1


def test_the_list_is_paginated_and_filtered_like_the_history(api, member, second_member):
    for n in range(30):
        rapid_generation(member, prompt=f"chair {n}")
    rapid_generation(second_member, prompt="a lamp", state=State.FAILED)
    first = api.get(GENERATIONS).json()
    assert first["count"] == 31 and len(first["results"]) == 24 and first["next"]
    assert first["results"][0]["prompt"] == "a lamp"  # newest first
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 7 and second["previous"]
    sized = api.get(GENERATIONS, {"page_size": 5}).json()
    assert len(sized["results"]) == 5
    assert api.get(GENERATIONS, {"q": "lamp"}).json()["count"] == 1
    assert api.get(GENERATIONS, {"state": "failed"}).json()["count"] == 1
    assert api.get(GENERATIONS, {"owner": second_member.pk}).json()["count"] == 1
    bad = api.get(GENERATIONS, {"state": "exploded"})
    assert bad.status_code == 400 and "state" in bad.json()["errors"]
    assert api.get(GENERATIONS, {"page": 99}).status_code == 404


def test_a_user_without_the_team_view_sees_only_their_own(outsider, member):
    rapid_generation(member, prompt="theirs")
    mine = rapid_generation(outsider, prompt="mine")
    client = token_client(outsider)
    assert [g["id"] for g in client.get(GENERATIONS).json()["results"]] == [mine.pk]
    other = Generation.objects.get(prompt="theirs")
    assert client.get(f"{GENERATIONS}{other.pk}/").status_code == 404


def test_one_generation_has_its_assets_facts_and_links(api, member):
    generation = make_finished(member)
    body = api.get(f"{GENERATIONS}{generation.pk}/").json()
    assert body["state"] == "finished" and body["queue_position"] is None
    assert body["estimated_finish"] is None and body["can_cancel"] is False
    (asset,) = body["assets"]
    assert asset["role"] == "model" and asset["facts"] == {"vertices": 8, "faces": 12}
    download = api.get(asset["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == GLB_STUB
    assert "attachment" in download["Content-Disposition"]


def test_another_members_asset_is_404_to_an_outsider(outsider, member):
    generation = make_finished(member)
    asset = generation.assets.get()
    url = f"{GENERATIONS}{generation.pk}/assets/{asset.pk}/"
    assert token_client(outsider).get(url).status_code == 404
    other = make_finished(outsider)
    assert (
        token_client(outsider).get(f"{GENERATIONS}{other.pk}/assets/{asset.pk}/").status_code == 404
    )


def test_regenerate_keeps_what_is_not_changed_and_links_the_versions(api, member):
    source = make_finished(member, options={"enable_pbr": True})
    response = post_json(api, f"{GENERATIONS}{source.pk}/regenerate/", {"prompt": "a blue chair"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["previous_version"] == source.pk
    new = Generation.objects.get(pk=body["id"])
    assert new.prompt == "a blue chair" and new.provider == source.provider
    assert new.options["enable_pbr"] is True


def test_regenerate_is_for_the_owner_or_an_admin(member, second_member, admin_user):
    source = make_finished(member)
    url = f"{GENERATIONS}{source.pk}/regenerate/"
    assert post_json(token_client(second_member), url, {}).status_code == 403
    assert post_json(token_client(admin_user), url, {}).status_code == 201


def test_the_schema_and_docs_are_served_from_our_own_files(api):
    schema = api.get("/api/v1/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/generations/" in paths and "/api/v1/generations/{id}/cancel/" in paths
    docs = api.get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower() and "https://" not in docs
    # No inline script (a Content-Security-Policy without 'unsafe-inline' allows it): the
    # page's own start-up script is a file of its own.
    assert "<script>" not in docs
    script = api.get("/api/v1/docs/", {"script": ""})
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_the_schema_generates_without_a_warning_and_validates(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/v1/batches/{id}/submit/" in target.read_text()
