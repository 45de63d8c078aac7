"""Cancel on the generation's page: a button while it waits, the reason once it was sent."""

import pytest
from django.urls import reverse

from credits.models import LedgerEntry
from generations.models import Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client

pytestmark = pytest.mark.django_db


def queued(owner):
    response = token_client(owner).post(
        "/api/v1/generations/",
        {"provider": "hunyuan_rapid", "prompt": "a chair"},
        content_type="application/json",
    )
    return Generation.objects.get(pk=response.json()["id"])


def test_the_owner_cancels_from_the_page_and_the_hold_is_released(member_client, member):
    generation = queued(member)
    page = member_client.get(reverse("generations:detail", args=[generation.pk])).content.decode()
    assert 'id="cancel-generation"' in page
    response = member_client.post(reverse("generations:cancel", args=[generation.pk]), follow=True)
    assert "its held credits are released" in response.content.decode()
    generation.refresh_from_db()
    assert generation.state == State.CANCELED
    assert LedgerEntry.objects.get(generation=generation, kind="release").amount == 35


def test_once_sent_the_page_says_the_upstream_has_no_cancel(member_client, member):
    generation = queued(member)
    Generation.objects.filter(pk=generation.pk).update(state=State.IN_PROGRESS, progress=20)
    page = member_client.get(reverse("generations:detail", args=[generation.pk])).content.decode()
    assert 'id="cancel-generation"' not in page
    assert "which has no cancel" in page
    response = member_client.post(reverse("generations:cancel", args=[generation.pk]), follow=True)
    assert "already sent upstream" in response.content.decode()
    assert not LedgerEntry.objects.filter(kind="release").exists()


def test_another_member_sees_no_button_and_cannot_cancel(client, member, second_member):
    generation = queued(member)
    client.force_login(second_member)
    page = client.get(reverse("generations:detail", args=[generation.pk])).content.decode()
    assert 'id="cancel-generation"' not in page
    assert client.post(reverse("generations:cancel", args=[generation.pk])).status_code == 403
    generation.refresh_from_db()
    assert generation.state == State.QUEUED


def test_the_navigation_links_batches_and_api_tokens(member_client, client, reviewer):
    page = member_client.get(reverse("home")).content.decode()
    assert reverse("batches:new") in page and reverse("api:tokens") in page
    client.force_login(reviewer)
    page = client.get(reverse("generations:list")).content.decode()
    assert reverse("batches:new") not in page and reverse("api:tokens") in page
