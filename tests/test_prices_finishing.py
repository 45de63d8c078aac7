"""The finishing steps' and the image models' prices in the admins' versioned price table:
today's figures as defaults, a version published before they existed still complete and
valid, the publishing form showing them in words, and the price shown before asking being
the price held."""

import uuid

import pytest
from django.urls import reverse

from credits import prices
from credits.audit import credit_event
from credits.models import LedgerEntry, PriceTable
from generations import finishing, tasks
from generations.catalogue import PRICE_SECTIONS, PRICE_TABLE
from generations.image_models import IMAGE_MODELS
from generations.models import ConceptJob, Conversion
from tests.test_credits_prices import changed, form_data
from tests.test_finishing_page import post
from tests.test_workspace_detail import finished, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def doorbell(monkeypatch):
    monkeypatch.setattr(tasks.submit_conversion, "delay", lambda *a: None)


def before_the_sections():
    """A table as published before the finishing steps and image models were priced."""
    table = changed(("tripo_v3", "quad"), 12)
    for section in PRICE_SECTIONS:
        del table[section]
    return table


# --- the figures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, options, credits",
    [
        ("remesh", {"engine": "tripo", "polygons": "triangles"}, 10),
        ("remesh", {"engine": "tripo", "polygons": "quads", "face_limit": 2000}, 20),
        ("remesh", {"engine": "tencent", "polygons": "quads"}, 100),
        ("texture", {"prompt": "oak", "texture_quality": "standard"}, 20),
        ("texture", {"prompt": "oak", "texture_quality": "detailed"}, 40),
        ("repair", {"quality": "default", "hollow": False}, 60),
        ("repair", {"quality": "max", "hollow": True}, 90),
        ("optimize", {"preset": "low"}, 10),
        ("render", {"output": "image", "angle": "front"}, 5),
        ("render", {"output": "image", "angle": "turntable_8"}, 20),
        ("render", {"output": "video", "angle": "3/4"}, 20),
    ],
)
def test_without_a_version_the_steps_cost_what_they_did(kind, options, credits):
    assert finishing.price(kind, options) == credits


@pytest.mark.parametrize(
    "key, options, each",
    [
        ("gemini_3_pro", {"resolution": "1K"}, 50),
        ("gemini_3_pro", {"resolution": "4K"}, 80),
        ("gemini_31_flash", {"resolution": "512px"}, 10),
        ("gemini_31_flash", {}, 15),
        ("gemini_25_flash", {}, 5),
        ("seedream_v5_lite", {"image_size": "square_hd"}, 10),
    ],
)
def test_without_a_version_the_images_cost_what_they_did(key, options, each):
    assert IMAGE_MODELS[key].price(options, 3) == (
        3 * each,
        [(f"3 x {each} credits an image:", 3 * each)],
    )


def test_every_image_model_and_step_has_its_prices():
    assert set(PRICE_TABLE["images"]) == set(IMAGE_MODELS)
    assert set(PRICE_TABLE["finishing"]) == set(finishing.STEPS)
    for key, model in IMAGE_MODELS.items():
        assert set(PRICE_TABLE["images"][key]) == set(model.price_labels())


def test_the_newest_version_prices_steps_and_images(admin_user):
    table = changed(("finishing", "remesh", "quads"), 15)
    table = changed(("images", "gemini_3_pro", "4K"), 90, table)
    prices.publish(table, user=admin_user)
    assert finishing.price("remesh", {"engine": "tripo", "polygons": "quads"}) == 25
    assert finishing.price("remesh", {"engine": "tripo", "polygons": "triangles"}) == 10
    assert IMAGE_MODELS["gemini_3_pro"].price({"resolution": "4K"}, 2)[0] == 180


# --- a version published before the sections existed ---------------------------------------


def test_an_earlier_version_loads_complete_with_the_defaults_for_what_it_lacks():
    PriceTable.objects.create(version=1, table=before_the_sections(), note="before")
    version, table = prices.active()
    assert version == 1
    assert prices.shape_errors(table) == []
    assert table["tripo_v3"]["quad"] == 12  # its own figures stand
    assert table["finishing"] == PRICE_TABLE["finishing"]
    assert table["images"] == PRICE_TABLE["images"]
    assert finishing.price("repair", {"hollow": True}) == 90
    assert IMAGE_MODELS["gemini_25_flash"].price({}, 2)[0] == 10


def test_the_form_shows_the_new_prices_in_words_and_publishes_them(client, admin_user):
    PriceTable.objects.create(version=1, table=before_the_sections(), note="before")
    events = []
    credit_event.connect(lambda **kw: events.append(kw), weak=False, dispatch_uid="t-prices")
    client.force_login(admin_user)
    page = client.get(reverse("credits:prices")).content.decode()
    for words in [
        "<legend>Finishing steps</legend>",
        "Remesh (Tencent smart topology)",
        "Repair: extra for hollowing it",
        "Render a turntable (images or animation)",
        "<legend>Concept images: Gemini 3 Pro</legend>",
        "Resolution 4K, each image",
        "<legend>Concept images: Seedream V5 Lite</legend>",
        "Each image",
    ]:
        assert words in page
    assert 'name="price__finishing__remesh__tencent" value="100"' in page
    assert 'name="price__images__gemini_3_pro__4K" value="80"' in page
    table = changed(("finishing", "render", "still"), 7, prices.active()[1])
    response = client.post(reverse("credits:prices"), form_data(table, note="dearer stills"))
    assert response.status_code == 302
    row = PriceTable.objects.active()
    assert row.version == 2
    assert prices.shape_errors(row.table) == []
    assert row.table["finishing"]["render"]["still"] == 7
    assert row.table["tripo_v3"]["quad"] == 12
    # The record names the one price that changed, not every price the old version lacked.
    credit_event.disconnect(dispatch_uid="t-prices")
    published = [event for event in events if event["action"] == "prices.publish"]
    assert published[0]["details"]["changes"] == ["finishing.render.still: 5 -> 7"]


def test_a_published_table_must_hold_the_new_prices(admin_user):
    with pytest.raises(ValueError, match=r"finishing\.optimize is missing"):
        prices.publish(before_the_sections(), user=admin_user)
    bad = changed(("images", "gemini_25_flash", "each"), -1)
    assert prices.shape_errors(bad) == [
        "images.gemini_25_flash.each must be a whole number of credits, 0 or more."
    ]


# --- shown is held -------------------------------------------------------------------------


def test_the_finishing_forms_show_the_tables_price_and_the_hold_is_the_same(
    member_client, member, media, doorbell, django_capture_on_commit_callbacks
):
    generation = finished(member)
    prices.publish(changed(("finishing", "optimize"), 13))
    page = member_client.get(url("detail", generation)).content.decode()
    assert "Optimize for the web · from 13 credits" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = post(member_client, generation, "optimize", {"preset": "default"})
    assert response.status_code == 302
    job = Conversion.objects.get()
    assert job.credit_estimate == 13
    assert job.price_version == prices.active()[0]  # the version it was priced by
    assert [(e.kind, e.amount) for e in LedgerEntry.objects.all()] == [("hold", -13)]


def test_the_concept_forms_cost_is_the_tables_and_the_hold_is_the_same(
    member_client, member, monkeypatch, django_capture_on_commit_callbacks
):
    from generations import concepts

    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *a: None)
    prices.publish(changed(("images", "gemini_31_flash", "2K"), 22))
    shown = member_client.get(
        reverse("generations:concept-cost"),
        {"image_model": "gemini_31_flash", "resolution": "2K", "count": "3"},
    ).content.decode()
    assert '<span data-testid="cost-total">66</span>' in shown
    assert "3 x 22 credits an image:" in shown
    body = {
        "form_token": str(uuid.uuid4()),
        "image_model": "gemini_31_flash",
        "resolution": "2K",
        "prompt": "a ceramic fox",
        "count": "3",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("generations:concept-new"), body)
    assert response.status_code == 302
    job = ConceptJob.objects.get()
    assert (job.credit_estimate, job.price_breakdown) == (66, [["3 x 22 credits an image:", 66]])
    assert job.price_version == prices.active()[0]
    assert [(e.kind, e.amount) for e in LedgerEntry.objects.all()] == [("hold", -66)]


# --- read once while nothing changes --------------------------------------------------------


def test_the_page_reads_the_table_once_for_every_form_and_a_new_version_at_once(
    member_client, member, media
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    generation = finished(member)
    with CaptureQueriesContext(connection) as queries:
        page = member_client.get(url("detail", generation)).content.decode()
    assert "Repair · from 60 credits" in page
    assert sum('FROM "credits_pricetable"' in q["sql"] for q in queries) == 1
    # Published by another process meanwhile (its commit bumps the data version).
    PriceTable.objects.create(version=1, table=changed(("finishing", "repair", "base"), 65))
    assert (
        "Repair · from 65 credits" in member_client.get(url("detail", generation)).content.decode()
    )
    assert finishing.price("repair", {}) == 65


def test_a_version_the_data_version_missed_is_read_within_a_minute(monkeypatch):
    from credits import prices as module

    assert finishing.price("optimize", {}) == 10
    # bulk_create sends no post_save: as if the bump was lost while Redis was away.
    PriceTable.objects.bulk_create(
        [PriceTable(version=1, table=changed(("finishing", "optimize"), 11))]
    )
    assert finishing.price("optimize", {}) == 10
    monkeypatch.setattr(module, "MEMO_SECONDS", 0)  # a minute later
    assert finishing.price("optimize", {}) == 11


def test_without_the_cache_every_price_reads_the_table(monkeypatch):
    from studio_dashboard import dataversion

    monkeypatch.setattr(dataversion, "current", lambda: None)  # Redis away
    assert finishing.price("optimize", {}) == 10
    PriceTable.objects.bulk_create(
        [PriceTable(version=1, table=changed(("finishing", "optimize"), 12))]
    )
    assert finishing.price("optimize", {}) == 12
