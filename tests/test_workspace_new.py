"""The new-generation form: built from the catalogue, swapped by htmx, safe with uploads."""

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generations import pricing
from generations.catalogue import PROVIDERS
from generations.models import BudgetExceeded, Generation, GenerationQuerySet, State

pytestmark = pytest.mark.django_db

NEW = reverse("generations:new")
COST = reverse("generations:cost")


def png(size=(256, 256), mode="RGB", color=(200, 40, 40)):
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else (*color, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(data, name="ref.png", content_type="image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def doorbell(monkeypatch):
    sent = []
    monkeypatch.setattr("generations.tasks.submit_generation.delay", sent.append)
    return sent


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def post(client, data, files=None, **headers):
    payload = {"form_token": str(uuid.uuid4()), **data, **(files or {})}
    return client.post(NEW, payload, **headers)


COMBINATIONS = [
    (key, mode, edition)
    for key, spec in PROVIDERS.items()
    for mode in spec.modes
    for edition in (spec.editions or ("",))
]


def test_the_form_opens_on_a_text_provider_with_its_defaults(member_client):
    response = member_client.get(NEW)
    assert response.status_code == 200
    assert b"<html" in response.content
    assert b'id="generation-form"' in response.content
    assert b'data-testid="cost-total">35<' in response.content
    assert b'name="form_token"' in response.content
    assert b'enctype="multipart/form-data"' in response.content


@pytest.mark.parametrize("key, mode, edition", COMBINATIONS)
def test_each_combination_shows_exactly_its_options(member_client, key, mode, edition):
    spec = PROVIDERS[key]
    response = member_client.get(NEW, {"provider": key, "mode": mode, "edition": edition})
    assert response.status_code == 200
    form = response.context["form"]
    offered = {opt.name for opt in spec.options_for(mode, edition)}
    assert set(form.option_names) == offered
    every_option = {opt.name for p in PROVIDERS.values() for opt in p.options}
    for name in every_option - offered:
        assert f'name="{name}"'.encode() not in response.content
    for opt in spec.options_for(mode, edition):
        assert f'name="{opt.name}"'.encode() in response.content
        assert opt.help.encode() in response.content or "&" in opt.help
    assert (b'name="prompt"' in response.content) == spec.takes_prompt(mode, edition)
    slots = [slot for slot, _, _ in spec.views_for(mode, edition)]
    for slot in slots:
        assert f'name="view_{slot}"'.encode() in response.content
    assert (b'name="image"' in response.content) == (mode == "image")
    price = pricing.estimate(key, mode, {}, edition).total
    assert f'data-testid="cost-total">{price}<'.encode() in response.content


def test_the_fields_swap_as_a_fragment_under_htmx(member_client):
    response = member_client.get(
        NEW, {"provider": "tripo_v3", "mode": "multiview", "edition": "3.1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b'id="generation-form"' in response.content
    assert b"<html" not in response.content
    assert b'name="view_front"' in response.content
    assert b'name="view_right"' in response.content
    # The address bar shows the selection, not the form's contents.
    assert response["HX-Push-Url"] == f"{NEW}?provider=tripo_v3&mode=multiview&edition=3.1"


def test_a_mismatched_selection_falls_back_to_what_the_provider_offers(member_client):
    response = member_client.get(NEW, {"provider": "trellis2", "mode": "text", "edition": "9"})
    assert response.status_code == 200
    assert response.context["form"].mode == "image"
    assert response.context["form"].edition == ""
    assert member_client.get(NEW, {"provider": "nope"}).status_code == 200


def test_what_was_typed_survives_a_change_of_selection(member_client):
    token = str(uuid.uuid4())
    response = member_client.get(
        NEW,
        {
            "provider": "tripo_p1",
            "mode": "text",
            "prompt": "a green teapot",
            "form_token": token,
            "shown": "enable_pbr enable_geometry",
        },
        HTTP_HX_REQUEST="true",
    )
    assert b"a green teapot" in response.content
    assert token.encode() in response.content
    # Options new to this form start at their defaults (Tripo textures are on).
    assert response.context["form"]["texture"].value() is True


def test_an_unchecked_box_stays_unchecked_after_a_refresh(member_client):
    response = member_client.get(
        NEW, {"provider": "tripo_v3", "mode": "text", "shown": "texture pbr", "pbr": "on"}
    )
    form = response.context["form"]
    assert form["texture"].value() is False
    assert form["pbr"].value() is True


@pytest.mark.parametrize(
    "params, total",
    [
        ({"provider": "hunyuan_rapid", "mode": "text", "enable_pbr": "on"}, 55),
        ({"provider": "hunyuan_pro", "mode": "multiview", "enable_pbr": "on"}, 100),
        ({"provider": "trellis2", "mode": "image", "resolution": "1536"}, 25),
        (
            {
                "provider": "trellis2",
                "mode": "image",
                "resolution": "1536",
                "textures": "on",
                "texture_size": "4096",
                "generate_thumbnail": "on",
            },
            57,
        ),
        ({"provider": "tripo_v3", "mode": "image", "texture": "on", "quad": "on"}, 70),
        ({"provider": "tripo_p1", "mode": "text"}, 60),
        ({"provider": "tripo_v3", "mode": "text", "face_limit": "not a number"}, 20),
    ],
)
def test_the_live_cost_follows_the_options(member_client, params, total):
    fragment = member_client.get(COST, params, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert b'id="cost"' in fragment.content
    assert b"<html" not in fragment.content
    assert f'data-testid="cost-total">{total}<'.encode() in fragment.content


def test_the_cost_fragment_works_without_htmx_too(member_client):
    response = member_client.get(COST, {"provider": "tripo_p1", "mode": "image"})
    assert response.status_code == 200
    assert b'data-testid="cost-total">80<' in response.content


def test_the_cost_sits_next_to_the_remaining_budget_when_budgets_exist(member_client, monkeypatch):
    monkeypatch.setattr(pricing, "remaining_budget", lambda user: 50, raising=False)
    response = member_client.get(COST, {"provider": "tripo_p1", "mode": "text"})
    assert b'data-testid="budget-left">50<' in response.content
    assert b"more than your remaining monthly budget" in response.content


def test_the_cost_fragment_uses_few_queries(member_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        member_client.get(COST, {"provider": "tripo_v3", "mode": "text"}, HTTP_HX_REQUEST="true")


# --- submissions -----------------------------------------------------------------------------


def test_a_text_prompt_on_tripo_is_saved_with_typed_options(
    member_client, member, doorbell, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            member_client,
            {
                "provider": "tripo_v3",
                "edition": "3.1",
                "mode": "text",
                "prompt": "a lamp",
                "texture": "on",
                "texture_quality": "detailed",
                "face_limit": "5000",
                "shown": "texture pbr",
            },
        )
    generation = Generation.objects.get()
    assert response.status_code == 302
    assert generation.provider == "tripo_v3"
    assert generation.edition == "3.1"
    assert generation.options["texture"] is True
    assert generation.options["pbr"] is False
    assert generation.options["face_limit"] == 5000
    assert generation.credit_estimate == 20 + 40
    assert doorbell == [generation.pk]
    body = PROVIDERS["tripo_v3"].request_body(
        "text", generation.prompt, generation.options, edition="3.1"
    )
    assert body["face_limit"] == 5000


def test_one_image_is_cleaned_and_stored(member_client, doorbell, media):
    response = post(
        member_client,
        {"provider": "trellis2", "mode": "image", "resolution": "512"},
        {"image": upload(png((3000, 1500)))},
    )
    assert response.status_code == 302, response.context["form"].errors
    generation = Generation.objects.get()
    (image,) = generation.images.all()
    assert image.slot == "image"
    assert max(image.width, image.height) == 2048
    assert image.format == "jpeg"
    assert generation.credit_estimate == 15


def test_tripo_gets_transparency_flattened(member_client, doorbell, media):
    response = post(
        member_client,
        {"provider": "tripo_p1", "mode": "image"},
        {"image": upload(png(mode="RGBA"))},
    )
    assert response.status_code == 302
    assert Generation.objects.get().images.get().format == "jpeg"


def test_hunyuan_keeps_real_transparency(member_client, doorbell, media):
    post(
        member_client,
        {"provider": "hunyuan_rapid", "mode": "image"},
        {"image": upload(png(mode="RGBA"))},
    )
    assert Generation.objects.get().images.get().format == "png"


def test_each_view_lands_in_its_slot(member_client, doorbell, media):
    response = post(
        member_client,
        {"provider": "hunyuan_pro", "edition": "3.1", "mode": "multiview"},
        {"view_front": upload(png()), "view_left_front": upload(png(color=(0, 0, 200)))},
    )
    assert response.status_code == 302, response.context["form"].errors
    generation = Generation.objects.get()
    assert [i.slot for i in generation.images.all()] == ["front", "left_front"]
    assert generation.credit_estimate == 80


def test_tripo_views_must_be_filled_in_order(member_client, doorbell, media):
    response = post(
        member_client,
        {"provider": "tripo_v3", "mode": "multiview"},
        {"view_front": upload(png()), "view_back": upload(png())},
    )
    assert response.status_code == 200
    assert "in that order" in " ".join(response.context["form"].errors["view_front"])
    assert Generation.objects.count() == 0


def test_a_missing_front_view_is_an_error_on_that_field(member_client, doorbell, media):
    response = post(
        member_client, {"provider": "tripo_v3", "mode": "multiview"}, {"view_left": upload(png())}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["view_front"]


def test_a_missing_image_is_an_error_on_the_field(member_client, doorbell):
    response = post(member_client, {"provider": "trellis2", "mode": "image"})
    assert response.status_code == 200
    assert response.context["form"].errors["image"]
    assert Generation.objects.count() == 0


HOSTILE = {
    "empty": (b"", "The submitted file is empty"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>', "SVG image"),
    "gif": (b"GIF89a" + b"\x00" * 64, "GIF image"),
    "text named png": (b"hello, I am not an image at all" * 10, "not a PNG, JPEG or WebP"),
    "truncated png": (png()[:120], "damaged or incomplete"),
    "too small": (png((40, 40)), "at least 128"),
    "too long": (png((6000, 130)), "at most 39 times"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_uploads_get_a_message_on_the_field_never_a_500(
    member_client, doorbell, media, name
):
    data, words = HOSTILE[name]
    response = post(
        member_client, {"provider": "trellis2", "mode": "image"}, {"image": upload(data)}
    )
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors["image"])
    assert Generation.objects.count() == 0
    assert words.encode() in response.content


def test_a_pixel_flood_is_refused_from_its_header(member_client, doorbell, media):
    import struct
    import zlib

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    flood = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    response = post(
        member_client, {"provider": "trellis2", "mode": "image"}, {"image": upload(flood)}
    )
    assert response.status_code == 200
    assert "too large to process" in " ".join(response.context["form"].errors["image"])


def test_too_many_files_is_refused_with_a_4xx(member_client, doorbell, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 8
    files = {f"view_{i}": upload(png()) for i in range(9)}
    response = post(member_client, {"provider": "hunyuan_pro", "mode": "multiview"}, files)
    assert response.status_code == 400
    assert Generation.objects.count() == 0


def test_a_mode_the_provider_lacks_is_refused(member_client, doorbell):
    response = post(member_client, {"provider": "trellis2", "mode": "text", "prompt": "a cup"})
    assert response.status_code == 200
    assert response.context["form"].errors["mode"]


def test_a_catalogue_rule_shows_on_its_field(member_client, doorbell):
    response = post(
        member_client,
        {
            "provider": "tripo_v3",
            "mode": "text",
            "prompt": "a robot",
            "generate_parts": "on",
            "texture": "on",
            "shown": "texture pbr generate_parts",
        },
    )
    assert response.status_code == 200
    assert "Texture and PBR turned off" in " ".join(
        response.context["form"].errors["generate_parts"]
    )


def test_a_refused_budget_is_shown_and_nothing_typed_is_lost(member_client, doorbell, monkeypatch):
    def refuse(self, **kwargs):
        raise BudgetExceeded("Only 10 credits are left this month; ask an admin for more.")

    monkeypatch.setattr(GenerationQuerySet, "create_queued", refuse)
    response = post(
        member_client, {"provider": "hunyuan_rapid", "mode": "text", "prompt": "a brass key"}
    )
    assert response.status_code == 200
    assert b"Only 10 credits are left this month" in response.content
    assert b"a brass key" in response.content
    assert Generation.objects.count() == 0


def test_an_htmx_post_redirects_the_browser_or_returns_the_form_with_errors(
    member_client, doorbell
):
    ok = post(
        member_client,
        {"provider": "hunyuan_rapid", "mode": "text", "prompt": "a mug"},
        HTTP_HX_REQUEST="true",
    )
    generation = Generation.objects.get()
    assert ok.status_code == 200
    assert ok["HX-Redirect"] == reverse("generations:detail", args=[generation.pk])
    bad = post(member_client, {"provider": "hunyuan_rapid", "mode": "text"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200
    assert b'id="generation-form"' in bad.content
    assert b'id="form-errors"' in bad.content
    assert b"<html" not in bad.content


# --- regenerate ------------------------------------------------------------------------------


def make_source(owner, media, **fields):
    from django.core.files.base import ContentFile

    defaults = {
        "provider": "tripo_v3",
        "edition": "3.1",
        "mode": "image",
        "prompt": "",
        "options": {"texture": False, "pbr": True, "face_limit": 8000},
        "credit_estimate": 40,
        "state": State.FINISHED,
    }
    defaults.update(fields)
    generation = Generation.objects.create(owner=owner, **defaults)
    if generation.mode == "image":
        generation.images.create(
            slot="image", file=ContentFile(png(), name="ref.png"), format="png",
            width=256, height=256, bytes=100,
        )  # fmt: skip
    return generation


def test_regenerate_prefills_the_form_from_the_generation(member_client, member, media):
    source = make_source(member, media)
    response = member_client.get(NEW, {"source": source.pk})
    assert response.status_code == 200
    form = response.context["form"]
    assert (form.spec.key, form.mode, form.edition) == ("tripo_v3", "image", "3.1")
    assert form["face_limit"].value() == 8000
    assert form["texture"].value() is False
    assert form["pbr"].value() is True
    assert not form.fields["image"].required  # the stored image is used again
    image = source.images.get()
    assert (
        reverse("generations:reference-image", args=[source.pk, image.pk]).encode()
        in response.content
    )


def test_regenerate_links_the_new_version_and_reuses_the_images(
    member_client, member, doorbell, media
):
    source = make_source(member, media)
    response = post(
        member_client,
        {
            "provider": "tripo_v3",
            "edition": "3.1",
            "mode": "image",
            "source": source.pk,
            "face_limit": "9000",
            "pbr": "on",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    new = Generation.objects.exclude(pk=source.pk).get()
    assert new.previous_version == source
    assert new.options["face_limit"] == 9000
    assert new.images.get().slot == "image"
    page = member_client.get(reverse("generations:detail", args=[source.pk]))
    assert f"#{new.pk}".encode() in page.content


def test_only_the_owner_or_an_admin_can_regenerate(client, member, second_member, media, doorbell):
    source = make_source(member, media)
    client.force_login(second_member)
    response = post(
        client,
        {"provider": "tripo_v3", "edition": "3.1", "mode": "image", "source": source.pk},
    )
    assert response.status_code == 403
    assert Generation.objects.count() == 1
