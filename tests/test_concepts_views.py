"""The pages of "Start from an image": the form, its live cost, the job's page, a pick
made a 3D model, and the lineage on the generation's page."""

import io
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from credits.models import Budget
from generations import concepts
from generations.models import (
    ConceptImage,
    ConceptJob,
    ConceptPick,
    Generation,
    State,
)

pytestmark = pytest.mark.django_db


def png(size=(256, 256), color=(200, 40, 40)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def doorbell(monkeypatch):
    """Doorbells are not rung here: the pipeline is tested in test_concepts_pipeline."""
    rung = []
    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *a: rung.append(a))
    from generations import tasks

    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *a: rung.append(a))
    return rung


def finished_job(owner, count=2, **fields):
    job = ConceptJob.objects.create(
        owner=owner,
        image_model="gemini_25_flash",
        prompt="a brass owl lamp",
        count=count,
        credit_estimate=5 * count,
        state=State.FINISHED,
        **fields,
    )
    for position in range(count):
        ConceptImage.objects.create(
            job=job,
            position=position,
            file=ContentFile(png(color=(40 * position, 90, 160)), name=f"c{position}.png"),
            format="png",
            width=256,
            height=256,
            bytes=100,
        )
    return job


def new_post(client, data, files=None, **headers):
    body = {
        "form_token": str(uuid.uuid4()),
        "image_model": "gemini_3_pro",
        "prompt": "a ceramic fox",
        "count": "2",
        **data,
    }
    if files:
        body["references"] = files
    return client.post(reverse("generations:concept-new"), body, **headers)


# --- the form ---------------------------------------------------------------------


def test_the_form_shows_the_chosen_models_options_cost_and_budget(member_client, member):
    Budget.objects.create(user=member, monthly_limit=500)
    response = member_client.get(
        reverse("generations:concept-new"), {"image_model": "gemini_3_pro"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="resolution"' in page and 'name="image_size"' not in page
    assert '<span data-testid="cost-total">100</span>' in page  # 2 x 50 at 1K
    assert '<span data-testid="budget-left">500</span>' in page


def test_the_model_swaps_the_form_as_a_fragment_keeping_what_was_typed(member_client):
    response = member_client.get(
        reverse("generations:concept-new"),
        {"image_model": "seedream_v5_lite", "prompt": "a tin robot", "count": "3"},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert '<form id="concept-form"' in page and "<html" not in page
    assert 'name="image_size"' in page and 'name="resolution"' not in page
    assert "a tin robot" in page
    assert '<span data-testid="cost-total">30</span>' in page


@pytest.mark.parametrize(
    "params, total",
    [
        ({"image_model": "gemini_3_pro", "resolution": "4K", "count": "3"}, 240),
        ({"image_model": "gemini_31_flash", "resolution": "512px", "count": "4"}, 40),
        ({"image_model": "gemini_25_flash", "count": "1"}, 5),
        ({"image_model": "seedream_v5_lite", "count": "2"}, 20),
    ],
)
def test_the_live_cost_follows_model_resolution_and_count(member_client, params, total):
    response = member_client.get(reverse("generations:concept-cost"), params)
    page = response.content.decode()
    assert f'<span data-testid="cost-total">{total}</span>' in page
    assert "<html" not in page


def test_a_job_is_saved_once_and_held_whatever_the_double_click(
    member_client, member, doorbell, media, django_capture_on_commit_callbacks
):
    token = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        first = new_post(member_client, {"form_token": token, "resolution": "2K"})
        second = new_post(member_client, {"form_token": token, "resolution": "2K"})
    job = ConceptJob.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("generations:concept", args=[job.pk])
    assert (job.image_model, job.count, job.options["resolution"]) == ("gemini_3_pro", 2, "2K")
    assert job.credit_estimate == 100
    assert len(doorbell) == 1


def test_reference_images_are_cleaned_and_make_it_an_edit(member_client, doorbell, media):
    files = [
        SimpleUploadedFile("a.png", png(), "image/png"),
        SimpleUploadedFile("b.png", png(color=(0, 0, 0)), "image/png"),
    ]
    response = new_post(member_client, {}, files=files)
    assert response.status_code == 302
    job = ConceptJob.objects.get()
    assert [r.format for r in job.references.all()] == ["jpeg", "jpeg"]  # re-encoded
    assert job.is_edit
    assert job.model_spec.endpoint(job.is_edit) == "/v1/images/gemini/3/pro/edit/"


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"prompt": ""}, "prompt", "required"),
        ({"count": "5"}, "count", "valid choice"),
        ({"resolution": "8K"}, "resolution", "valid choice"),
        ({"image_model": "dall-e"}, "image_model", "valid choice"),
    ],
)
def test_bad_fields_are_refused_on_their_field_and_nothing_is_lost(
    member_client, doorbell, data, field, words
):
    response = new_post(member_client, {"prompt": "a ceramic fox", **data})
    assert response.status_code == 200
    assert not ConceptJob.objects.exists()
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field])
    if field != "prompt":
        assert "a ceramic fox" in response.content.decode()


def test_a_hostile_upload_gets_a_message_never_a_500(member_client, doorbell, media):
    files = [SimpleUploadedFile("x.png", b"<svg onload=alert(1)>", "image/png")]
    response = new_post(member_client, {}, files=files)
    assert response.status_code == 200
    assert "references" in response.context["form"].errors
    assert not ConceptJob.objects.exists()


def test_a_job_over_the_budget_is_refused_with_the_reason(member_client, member, doorbell):
    Budget.objects.create(user=member, monthly_limit=60)
    response = new_post(member_client, {"count": "2"})  # 100 credits
    assert response.status_code == 200
    assert "only 60" in " ".join(response.context["form"].non_field_errors())
    assert not ConceptJob.objects.exists()


def test_edit_again_starts_from_the_chosen_image(member_client, member, doorbell, media):
    job = finished_job(member)
    image = job.images.last()
    page = member_client.get(reverse("generations:concept-new"), {"edit_of": image.pk})
    assert page.context["edit_of"] == image
    assert "a brass owl lamp" in page.content.decode()
    response = new_post(member_client, {"edit_of": str(image.pk), "image_model": "gemini_25_flash"})
    assert response.status_code == 302
    edit = ConceptJob.objects.exclude(pk=job.pk).get()
    assert edit.edit_of == image
    assert [j.pk for j in edit.lineage()] == [job.pk, edit.pk]


def test_someone_elses_image_cannot_be_edited_by_an_outsider(client, outsider, member, media):
    image = finished_job(member).images.first()
    client.force_login(outsider)
    response = client.get(reverse("generations:concept-new"), {"edit_of": image.pk})
    assert response.status_code in (403, 404)


# --- the job's page -----------------------------------------------------------------


def test_the_page_polls_while_in_flight_and_stops_when_done(member_client, member):
    job = ConceptJob.objects.create(
        owner=member, image_model="gemini_25_flash", prompt="p", count=2, credit_estimate=10
    )
    url = reverse("generations:concept", args=[job.pk])
    full = member_client.get(url).content.decode()
    assert "<html" in full and 'hx-trigger="every 2s"' in full
    fragment = member_client.get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert 'id="concept-status"' in fragment.content.decode()
    ConceptJob.objects.filter(pk=job.pk).update(state=State.FAILED, failure_reason="out of ink")
    done = member_client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx: stop polling
    assert "out of ink" in done.content.decode()


def test_the_finished_page_shows_the_images_to_pick_from(member_client, member, media):
    job = finished_job(member, count=3)
    page = member_client.get(reverse("generations:concept", args=[job.pk])).content.decode()
    for image in job.images.all():
        assert reverse("generations:concept-image", args=[job.pk, image.pk]) in page
        assert f"?edit_of={image.pk}" in page
    assert "Make the 3D model" in page
    image = job.images.first()
    served = member_client.get(reverse("generations:concept-image", args=[job.pk, image.pk]))
    assert served.status_code == 200 and served["Content-Type"] == "image/png"


def test_an_outsider_sees_nothing_of_a_job(client, outsider, member, media):
    job = finished_job(member)
    image = job.images.first()
    client.force_login(outsider)
    for url in (
        reverse("generations:concept", args=[job.pk]),
        reverse("generations:concept-image", args=[job.pk, image.pk]),
        reverse("generations:concept-model-cost", args=[job.pk]),
    ):
        assert client.get(url).status_code == 404
    assert client.post(reverse("generations:concept-model", args=[job.pk])).status_code == 403


def test_a_teammate_may_look_but_not_spend_on_it(client, second_member, member, media):
    job = finished_job(member)
    client.force_login(second_member)
    assert client.get(reverse("generations:concept", args=[job.pk])).status_code == 200
    response = client.post(
        reverse("generations:concept-model", args=[job.pk]),
        {
            "form_token": str(uuid.uuid4()),
            "target": "trellis2::image",
            "image": job.images.first().pk,
        },
    )
    assert response.status_code == 403
    assert not Generation.objects.exists()


# --- a pick made a model -------------------------------------------------------------


def test_the_model_cost_follows_the_target(member_client, member, media):
    job = finished_job(member)
    url = reverse("generations:concept-model-cost", args=[job.pk])
    rapid = member_client.get(url, {"target": "hunyuan_rapid::image"}).content.decode()
    pro = member_client.get(url, {"target": "hunyuan_pro:3.1:multiview"}).content.decode()
    assert '<span data-testid="model-cost-total">35</span>' in rapid
    assert '<span data-testid="model-cost-total">80</span>' in pro  # 60 + 20 multi-view


def test_a_picked_image_becomes_an_image_to_3d_generation_with_its_lineage(
    member_client, member, doorbell, media, django_capture_on_commit_callbacks
):
    job = finished_job(member, count=3)
    chosen = job.images.get(position=1)
    token = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):  # a double click makes one generation
            response = member_client.post(
                reverse("generations:concept-model", args=[job.pk]),
                {"form_token": token, "target": "tripo_v3:3.1:image", "image": chosen.pk},
            )
    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("generations:detail", args=[generation.pk])
    assert (generation.provider, generation.edition, generation.mode) == (
        "tripo_v3",
        "3.1",
        "image",
    )
    reference = generation.images.get()
    assert (reference.slot, reference.format) == ("image", "jpeg")  # Tripo: flattened JPEG
    assert [(p.image, p.slot) for p in ConceptPick.objects.all()] == [(chosen, "image")]
    assert len(doorbell) == 1
    page = member_client.get(reverse("generations:detail", args=[generation.pk])).content.decode()
    assert 'data-testid="lineage"' in page
    assert "a brass owl lamp" in page
    assert page.count('data-testid="chosen"') == 1
    for image in job.images.all():
        assert reverse("generations:concept-image", args=[job.pk, image.pk]) in page


def test_picked_images_fill_the_view_slots_of_a_multi_view(member_client, member, doorbell, media):
    job = finished_job(member, count=2)
    front, back = job.images.all()
    response = member_client.post(
        reverse("generations:concept-model", args=[job.pk]),
        {
            "form_token": str(uuid.uuid4()),
            "target": "hunyuan_pro:3.1:multiview",
            "view_front": front.pk,
            "view_back": back.pk,
        },
    )
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.mode == "multiview"
    assert sorted(generation.images.values_list("slot", flat=True)) == ["back", "front"]
    assert sorted(ConceptPick.objects.values_list("slot", flat=True)) == ["back", "front"]


@pytest.mark.parametrize(
    "data, words",
    [
        ({"target": "trellis2::image"}, "Image is required"),
        ({"target": "hunyuan_pro:3.1:multiview"}, "front view is required"),
        ({"target": "nobody::image", "image": "first"}, "valid choice"),
    ],
)
def test_a_bad_pick_is_refused_with_the_reason(member_client, member, doorbell, media, data, words):
    job = finished_job(member)
    if data.get("image") == "first":
        data["image"] = job.images.first().pk
    response = member_client.post(
        reverse("generations:concept-model", args=[job.pk]),
        {"form_token": str(uuid.uuid4()), **data},
    )
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not Generation.objects.exists()


def test_an_image_of_another_job_cannot_be_picked(member_client, member, doorbell, media):
    job, other = finished_job(member), finished_job(member)
    response = member_client.post(
        reverse("generations:concept-model", args=[job.pk]),
        {
            "form_token": str(uuid.uuid4()),
            "target": "trellis2::image",
            "image": other.images.first().pk,
        },
    )
    assert response.status_code == 400
    assert not Generation.objects.exists()


def test_home_and_the_new_generation_page_link_here(member_client):
    target = reverse("generations:concept-new")
    assert target in member_client.get(reverse("home")).content.decode()
    assert target in member_client.get(reverse("generations:new")).content.decode()


def test_the_list_shows_the_jobs_one_may_see_in_few_queries(
    client, member, outsider, media, django_assert_max_num_queries
):
    for _ in range(3):
        finished_job(member)
    client.force_login(member)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("generations:concepts")).content.decode()
    assert page.count('class="thumb"') == 3
    client.force_login(outsider)
    assert "No concept jobs yet" in client.get(reverse("generations:concepts")).content.decode()


def test_concept_spend_shows_on_the_spend_review_and_budgets(
    client, admin_user, member, doorbell, media
):
    ConceptJob.objects.create_queued(
        owner=member,
        image_model="gemini_3_pro",
        prompt="p",
        options={"resolution": "4K"},
        count=2,
        form_token=uuid.uuid4(),
    )
    client.force_login(admin_user)
    page = client.get(reverse("credits:spend")).content.decode()
    assert "gemini_3_pro" in page
    assert "160" in page
    Budget.objects.create(user=member, monthly_limit=200)
    client.force_login(member)
    left = client.get(reverse("generations:concept-new")).context["remaining"]
    assert left == 40  # the held 160 counts against the budget
