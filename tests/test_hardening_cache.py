"""Issue 16, item 6: no shared cache keeps a signed-in page or a download."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from generations.models import ReferenceImage, State
from reviews.models import Decision, Review
from tests import api_support
from tests.api_support import token_client
from tests.conftest import rapid_generation
from tests.test_storage_files import finished_with_asset

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def assert_private(response, status=200):
    assert response.status_code == status
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert "private" in directives and "public" not in directives
    return directives


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.parametrize(
    "name",
    ["home", "generations:list", "generations:new", "library:index", "api:tokens"],
)
def test_signed_in_pages_are_private(member_client, name):
    response = member_client.get(reverse(name))
    assert_private(response)
    assert "Cookie" in response["Vary"]


def test_the_review_queue_and_spend_pages_are_private(client, reviewer, admin_user):
    client.force_login(reviewer)
    assert_private(client.get(reverse("reviews:queue")))
    client.force_login(admin_user)
    assert_private(client.get(reverse("credits:spend")))


def test_every_download_is_private(media, member, second_member, admin_user):
    generation, asset = finished_with_asset(member, "assets/1/model.glb", b"glTF" + b"x" * 64)
    png = default_storage.save("references/a.png", ContentFile(api_support.png()))
    image = ReferenceImage.objects.create(
        generation=generation, file=png, format="png", width=256, height=256, bytes=1
    )
    owner = Client()
    owner.force_login(member)
    for name in ("generations:asset", "generations:asset-view"):
        assert_private(owner.get(reverse(name, args=[generation.pk, asset.pk])))
    assert_private(
        owner.get(reverse("generations:reference-image", args=[generation.pk, image.pk]))
    )
    Review.objects.record_decision(generation, admin_user, Decision.APPROVED, "fine")
    teammate = Client()
    teammate.force_login(second_member)
    for name in ("library:asset", "library:asset-view"):
        assert_private(teammate.get(reverse(name, args=[generation.pk, asset.pk])))
    api = token_client(member)
    assert_private(api.get(reverse("api:asset", args=[generation.pk, asset.pk])))
    assert_private(api.get(reverse("api:me")))


def test_the_polled_card_stays_no_cache_and_keeps_its_304(member_client, member):
    generation = rapid_generation(member, state=State.IN_PROGRESS, progress=40)
    url = reverse("generations:detail", args=[generation.pk])
    first = member_client.get(url, headers=HTMX)
    assert "no-cache" in assert_private(first)
    again = member_client.get(url, headers={**HTMX, "If-None-Match": first["ETag"]})
    assert_private(again, status=304)
