"""The API tests' helpers: a client carrying a personal token, images, the doorbell."""

import io

import pytest
from django.test import Client
from PIL import Image

from api.models import ApiToken


def token_client(user, name="tests"):
    """A client that sends ``user``'s new personal token (and no session cookie)."""
    _token, secret = ApiToken.objects.issue(user, name)
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def png(size=(256, 256), color=(200, 40, 40)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def doorbell(monkeypatch):
    """The submit task's doorbell, recorded instead of sent to a broker."""
    sent = []
    monkeypatch.setattr("generations.tasks.submit_generation.delay", sent.append)
    return sent


@pytest.fixture(autouse=True)
def fast_passwords(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
