"""Pages and fragments: full page without HX-Request, only the fragment with it."""

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from generations.models import Asset, Generation, State

pytestmark = pytest.mark.django_db


RAPID_TEXT = {"provider": "hunyuan_rapid", "mode": "text"}


def make_generation(owner, **fields):
    defaults = {"provider": "hunyuan_rapid", "prompt": "a red chair", "credit_estimate": 35}
    defaults.update(fields)
    return Generation.objects.create(owner=owner, **defaults)


@pytest.fixture
def doorbell(monkeypatch):
    sent = []
    monkeypatch.setattr("generations.tasks.submit_generation.delay", sent.append)
    return sent


def test_pages_need_a_login(client, member):
    generation = make_generation(member)
    for url in [
        reverse("generations:list"),
        reverse("generations:new"),
        reverse("generations:detail", args=[generation.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_new_form_shows_the_cost(member_client):
    response = member_client.get(reverse("generations:new"))
    assert response.status_code == 200
    assert b'data-testid="cost-total">35<' in response.content
    assert b'name="form_token"' in response.content


def test_the_cost_fragment_updates_with_pbr(member_client):
    response = member_client.get(
        reverse("generations:cost"), {**RAPID_TEXT, "enable_pbr": "on"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b'id="cost"' in response.content
    assert b"<html" not in response.content
    assert b">55<" in response.content
    assert b"PBR materials 20" in response.content


def test_submitting_saves_a_queued_generation_and_rings_after_commit(
    member_client, member, doorbell, django_capture_on_commit_callbacks
):
    token = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("generations:new"),
            {**RAPID_TEXT, "prompt": "  a blue vase  ", "enable_pbr": "on", "form_token": token},
        )
    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("generations:detail", args=[generation.pk])
    assert generation.owner == member
    assert generation.prompt == "a blue vase"
    assert generation.state == State.QUEUED
    assert generation.credit_estimate == 55
    assert generation.price_breakdown == [["Base", 35], ["PBR materials", 20]]
    assert doorbell == [generation.pk]


def test_a_double_click_makes_one_generation(
    member_client, doorbell, django_capture_on_commit_callbacks
):
    data = {**RAPID_TEXT, "prompt": "a mug", "form_token": uuid.uuid4()}
    with django_capture_on_commit_callbacks(execute=True):
        first = member_client.post(reverse("generations:new"), data)
        second = member_client.post(reverse("generations:new"), data)
    assert Generation.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert len(doorbell) == 1


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"prompt": ""}, "prompt", "This field is required"),
        ({"prompt": "   "}, "prompt", "This field is required"),
        ({"prompt": "x" * 1025}, "prompt", "at most 1024 characters"),
        ({"prompt": "nul\x00byte"}, "prompt", "Null characters are not allowed"),
        ({"prompt": "ok", "form_token": "not-a-uuid"}, "form_token", "valid UUID"),
    ],
)
def test_bad_input_gets_a_clear_error_and_loses_nothing(
    member_client, doorbell, data, field, words
):
    data = {**RAPID_TEXT, "form_token": str(uuid.uuid4()), **data}
    response = member_client.post(reverse("generations:new"), data)
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert Generation.objects.count() == 0
    assert doorbell == []
    if field == "prompt" and data["prompt"].strip():
        assert data["prompt"][:20].encode() in response.content  # the member's text is kept


def test_members_without_the_add_permission_cannot_submit(client, outsider, doorbell):
    client.force_login(outsider)
    response = client.post(reverse("generations:new"), {"prompt": "x", "form_token": uuid.uuid4()})
    assert response.status_code == 403
    assert Generation.objects.count() == 0


def test_the_detail_page_and_its_fragment(member_client, member):
    generation = make_generation(
        member, state=State.IN_PROGRESS, progress=40, submitted_at=timezone.now()
    )
    url = reverse("generations:detail", args=[generation.pk])
    page = member_client.get(url)
    assert page.status_code == 200
    assert b"<html" in page.content
    assert b'id="status-card"' in page.content
    assert b'hx-trigger="every 2s"' in page.content
    fragment = member_client.get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert b'id="status-card"' in fragment.content
    assert b"<html" not in fragment.content
    assert b'value="40"' in fragment.content


def test_the_fragment_stops_polling_when_final(member_client, member):
    generation = make_generation(
        member, state=State.FAILED, failure_reason="Content moderation refused it."
    )
    response = member_client.get(
        reverse("generations:detail", args=[generation.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 286
    assert b"Content moderation refused it." in response.content
    assert b"hx-trigger" not in response.content


def test_a_finished_generation_shows_the_viewer_and_downloads(
    member_client, member, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "m.glb").write_bytes(b"glTF-bytes")
    generation = make_generation(member, state=State.FINISHED, progress=100)
    asset = Asset.objects.create(
        generation=generation,
        role="model",
        file="assets/m.glb",
        format="glb",
        bytes=10,
        sha256="x",
        facts={"vertices": 8, "faces": 12, "materials": 1, "textures": [], "dimensions": [1, 2, 3]},
    )
    page = member_client.get(reverse("generations:detail", args=[generation.pk]))
    assert b"<model-viewer" in page.content
    view_url = reverse("generations:asset-view", args=[generation.pk, asset.pk])
    assert view_url.encode() in page.content
    download = member_client.get(reverse("generations:asset", args=[generation.pk, asset.pk]))
    assert download.status_code == 200
    assert download["Content-Type"] == "model/gltf-binary"
    assert download["Content-Disposition"].startswith("attachment;")
    assert b"".join(download.streaming_content) == b"glTF-bytes"
    inline = member_client.get(view_url)
    assert "attachment" not in inline.get("Content-Disposition", "")


def test_members_see_the_teams_generations_but_cannot_act_on_them(
    client, member, second_member, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "x.glb").write_bytes(b"glTF")
    generation = make_generation(member, state=State.FINISHED)
    asset = Asset.objects.create(
        generation=generation, role="model", file="assets/x.glb", format="glb", bytes=4, sha256="x"
    )
    client.force_login(second_member)
    for url in [
        reverse("generations:detail", args=[generation.pk]),
        reverse("generations:asset", args=[generation.pk, asset.pk]),
        reverse("generations:asset-view", args=[generation.pk, asset.pk]),
    ]:
        assert client.get(url).status_code == 200
        assert client.get(url, HTTP_HX_REQUEST="true").status_code in (200, 286)
    page = client.get(reverse("generations:detail", args=[generation.pk]))
    assert b"Regenerate with changes" not in page.content
    assert b"Duplicate" not in page.content
    for url, data in [
        (reverse("generations:duplicate", args=[generation.pk]), {"form_token": uuid.uuid4()}),
        (reverse("generations:convert", args=[generation.pk]), {"output_format": "stl"}),
        (reverse("generations:poster", args=[generation.pk]), {}),
    ]:
        assert client.post(url, data).status_code == 403
        assert client.post(url, data, HTTP_HX_REQUEST="true").status_code == 403
    assert client.get(reverse("generations:new"), {"source": generation.pk}).status_code == 403
    assert Generation.objects.count() == 1


def test_someone_without_a_role_sees_only_their_own(client, member, outsider, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    generation = make_generation(member, state=State.FINISHED)
    asset = Asset.objects.create(
        generation=generation, role="model", file="assets/x.glb", format="glb", bytes=1, sha256="x"
    )
    client.force_login(outsider)
    for url in [
        reverse("generations:detail", args=[generation.pk]),
        reverse("generations:asset", args=[generation.pk, asset.pk]),
        reverse("generations:asset-view", args=[generation.pk, asset.pk]),
    ]:
        assert client.get(url).status_code == 404
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404
    assert client.post(reverse("generations:convert", args=[generation.pk])).status_code == 404
    assert b"#%d" % generation.pk not in client.get(reverse("generations:list")).content


def test_an_admin_may_act_on_anyones_generation(client, member, admin_user):
    generation = make_generation(member, state=State.FINISHED)
    client.force_login(admin_user)
    page = client.get(reverse("generations:detail", args=[generation.pk]))
    assert b"Regenerate with changes" in page.content
    assert client.get(reverse("generations:new"), {"source": generation.pk}).status_code == 200


def test_an_asset_of_another_generation_is_404(member_client, member):
    mine = make_generation(member)
    other = make_generation(member)
    asset = Asset.objects.create(
        generation=other, role="model", file="assets/x.glb", format="glb", bytes=1, sha256="x"
    )
    assert (
        member_client.get(reverse("generations:asset", args=[mine.pk, asset.pk])).status_code == 404
    )


def test_reviewers_see_everyones_generations(client, member, reviewer):
    generation = make_generation(member)
    client.force_login(reviewer)
    assert client.get(reverse("generations:detail", args=[generation.pk])).status_code == 200


def test_the_list_query_count_does_not_grow_with_rows(
    member_client, member, django_assert_max_num_queries
):
    for i in range(3):
        make_generation(member, prompt=f"p{i}")
    with django_assert_max_num_queries(14) as few:
        member_client.get(reverse("generations:list"))
    for i in range(30):
        make_generation(member, prompt=f"q{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = member_client.get(reverse("generations:list"))
    assert len(response.context["page"].object_list) == 24


def test_the_progress_fragment_uses_few_queries(
    member_client, member, django_assert_max_num_queries
):
    generation = make_generation(member, state=State.PENDING, submitted_at=timezone.now())
    with django_assert_max_num_queries(7):
        member_client.get(
            reverse("generations:detail", args=[generation.pk]), HTTP_HX_REQUEST="true"
        )


def test_htmx_posts_without_the_csrf_token_are_refused(member):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    response = strict.post(
        reverse("generations:new"),
        {**RAPID_TEXT, "prompt": "x", "form_token": uuid.uuid4()},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 403
    assert Generation.objects.count() == 0


def test_the_sandbox_badge_shows_without_an_api_key(member_client, settings):
    settings.SANDBOX_MODE = True
    assert b"badge-sandbox" in member_client.get(reverse("generations:list")).content
    settings.SANDBOX_MODE = False
    assert b"badge-sandbox" not in member_client.get(reverse("generations:list")).content


def test_a_queued_generation_with_nothing_ahead_says_any_moment_now(
    member_client, member, redis_limiter
):
    generation = make_generation(member, state=State.QUEUED, due_at=timezone.now())
    response = member_client.get(reverse("generations:detail", args=[generation.pk]))
    assert b"It should be sent any moment now." in response.content
    assert b"in about 0" not in response.content
