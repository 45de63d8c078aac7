"""Issue 16, item 2: an oversized body is refused from its Content-Length, never read."""

import io
import random

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from PIL import Image

from tests.api_support import token_client

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
MULTIPART = "multipart/form-data; boundary=xyz"


class UnreadBody(io.RawIOBase):
    """A request body that records every read: a refused body must see none."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size=-1):
        self.read_bytes += max(size, 0)
        return b"--xyz--\r\n"[: max(size, 0)] if size else b""

    def readline(self, size=-1):
        return self.read(size)


def post(client, url, length, content_type=MULTIPART, **extra):
    body = UnreadBody()
    response = client.generic(
        "POST",
        url,
        content_type=content_type,
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": body},
        **extra,
    )
    return response, body


def test_the_upload_cap_comes_from_the_largest_legitimate_request():
    # 8 view slots (Hunyuan Pro 3.1) of 20 MB, as files (base64 JSON is capped lower),
    # plus the form fields.
    assert settings.REQUEST_MAX_UPLOAD_BYTES == 8 * 20 * MB + 2 * MB
    assert settings.REQUEST_MAX_UPLOAD_BYTES >= settings.API_MAX_JSON_BYTES
    assert settings.REQUEST_MAX_BODY_BYTES < 3 * MB


def test_an_anonymous_200_mb_login_post_is_refused_unread(client):
    response, body = post(client, reverse("login"), 200 * MB)
    assert response.status_code == 413
    assert body.read_bytes == 0
    assert "too large" in response.content.decode()
    assert "200 MB" in response.content.decode()


def test_an_anonymous_login_post_over_the_form_cap_is_refused_unread(client):
    response, body = post(client, reverse("login"), 3 * MB)
    assert response.status_code == 413 and body.read_bytes == 0


def test_an_anonymous_upload_to_the_new_form_gets_only_the_form_cap(client):
    response, body = post(client, reverse("generations:new"), 100 * MB)
    assert response.status_code == 413 and body.read_bytes == 0


def test_a_member_upload_over_the_upload_cap_is_refused_unread(member_client):
    length = settings.REQUEST_MAX_UPLOAD_BYTES + 1
    response, body = post(member_client, reverse("generations:new"), length)
    assert response.status_code == 413 and body.read_bytes == 0


def test_a_member_post_to_another_page_gets_the_form_cap(member_client, member):
    response, body = post(member_client, reverse("api:tokens"), 3 * MB)
    assert response.status_code == 413 and body.read_bytes == 0


def test_a_body_without_a_length_is_refused_unread(client):
    response, body = post(client, reverse("login"), "", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411 and body.read_bytes == 0


def test_the_api_answers_json(member):
    api = token_client(member)
    response, body = post(
        api, reverse("api:generations"), settings.REQUEST_MAX_UPLOAD_BYTES + 1, "application/json"
    )
    assert response.status_code == 413 and body.read_bytes == 0
    assert response.json()["code"] == "too_large"


def test_bodies_within_the_caps_go_through(settings, member, client):
    settings.REQUEST_MAX_BODY_BYTES = 4096
    settings.REQUEST_MAX_UPLOAD_BYTES = 100_000
    noise = Image.frombytes("RGB", (128, 128), random.Random(16).randbytes(128 * 128 * 3))
    image = io.BytesIO()
    noise.save(image, "PNG")
    assert 4096 < image.tell() < 90_000
    image.seek(0)
    image.name = "front.png"
    signed_in = Client()
    signed_in.force_login(member)
    # A member's upload between the two caps reaches the form (which answers 200 or 302).
    response = signed_in.post(
        reverse("generations:new"),
        {"provider": "hunyuan_rapid", "mode": "image", "image": image},
    )
    assert response.status_code in (200, 302)
    # A login form under the small cap reaches the login view.
    response = client.post(reverse("login"), {"username": "member", "password": "wrong"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
