"""Personal API tokens: made on the member's page, shown once, stored hashed, revocable,
with a last-used time; a token acts as its owner and nothing more; its own rate limit."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken, digest
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client

pytestmark = pytest.mark.django_db
ME = "/api/v1/me/"
TOKENS = reverse("api:tokens")


def test_a_member_makes_a_named_token_on_their_page_and_sees_it_once(member_client, member):
    response = member_client.post(TOKENS, {"name": "Blender laptop"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("sdt_") and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=member)
    assert token.name == "Blender laptop"
    # Stored hashed: the secret is nowhere in the row.
    assert token.digest == digest(secret) and secret not in repr(token.__dict__)
    again = member_client.get(TOKENS)
    assert secret not in again.content.decode()
    assert "Blender laptop" in again.content.decode()
    assert token.prefix in again.content.decode()


def test_a_token_needs_a_name(member_client):
    response = member_client.post(TOKENS, {"name": ""})
    assert response.context["secret"] is None
    assert not ApiToken.objects.exists()


def test_the_token_page_needs_a_sign_in(client):
    response = client.get(TOKENS)
    assert response.status_code == 302


def test_a_token_authenticates_as_its_owner_and_records_its_use(member):
    client = token_client(member)
    token = ApiToken.objects.get()
    assert token.last_used_at is None
    response = client.get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == "member"
    assert response.json()["roles"] == ["Members"]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(member):
    client = token_client(member)
    token = ApiToken.objects.get()
    long_ago = timezone.now() - timedelta(hours=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=long_ago)
    client.get(ME)
    token.refresh_from_db()
    first = token.last_used_at
    assert first > long_ago
    client.get(ME)
    token.refresh_from_db()
    assert token.last_used_at == first


def test_a_revoked_token_stops_working_at_once(member_client, member):
    client = token_client(member)
    token = ApiToken.objects.get()
    assert client.get(ME).status_code == 200
    response = member_client.post(reverse("api:token-revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    refused = client.get(ME)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    assert "revoked" in refused.json()["detail"]


def test_nobody_revokes_another_members_token(client, member, second_member):
    token_client(member)
    token = ApiToken.objects.get()
    client.force_login(second_member)
    assert client.post(reverse("api:token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_wrong_or_missing_token_is_401(member, client):
    token_client(member)
    assert client.get(ME).status_code == 401
    wrong = client.get(ME, HTTP_AUTHORIZATION="Bearer sdt_not-a-real-token")
    assert wrong.status_code == 401
    assert wrong.json()["detail"]
    malformed = client.get(ME, HTTP_AUTHORIZATION="Bearer two words")
    assert malformed.status_code == 401


def test_a_deactivated_users_token_is_refused(member):
    client = token_client(member)
    member.is_active = False
    member.save()
    assert client.get(ME).status_code == 401


def test_a_token_has_its_owners_role_and_nothing_more(outsider, reviewer):
    # An outsider (no group) cannot start generations with a token either.
    response = token_client(outsider).post(
        "/api/v1/generations/",
        {"provider": "hunyuan_rapid", "prompt": "a chair"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    # A reviewer's token reviews but does not see the spend report.
    client = token_client(reviewer)
    assert client.get("/api/v1/reviews/queue/").status_code == 200
    assert client.get("/api/v1/spend/").status_code == 403


def test_session_auth_works_for_the_pages_scripts_with_csrf(client, member, doorbell):
    client.force_login(member)
    assert client.get(ME).json()["username"] == "member"
    strict = type(client)(enforce_csrf_checks=True)
    strict.force_login(member)
    body = {"provider": "hunyuan_rapid", "prompt": "a chair"}
    refused = strict.post("/api/v1/generations/", body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]


def test_a_token_over_its_rate_gets_429_with_retry_after(member, settings):
    settings.API_TOKEN_RATE = "3/min"
    client = token_client(member)
    assert [client.get(ME).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(ME)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 0 < int(refused["Retry-After"]) <= 60
    # Another token of the same member has a rate of its own; so do sessions.
    assert token_client(member, "second").get(ME).status_code == 200
