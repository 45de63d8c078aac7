"""Helpers for the review tests (and a check that they make what the tests assume)."""

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from generations.models import Asset, Generation, State
from reviews.models import awaiting_review

GLB_STUB = b"glTF" + b"\x02\x00\x00\x00" + b"\x00" * 12


def make_finished(owner, prompt="a red chair", previous=None, glb_bytes=GLB_STUB, **fields):
    """A FINISHED generation with a stored model asset, as if the pipeline had run."""
    now = timezone.now()
    defaults = {
        "provider": "hunyuan_rapid",
        "credit_estimate": 35,
        "state": State.FINISHED,
        "progress": 100,
        "finished_at": now,
        "options": {"enable_pbr": False},
    }
    defaults.update(fields)
    generation = Generation.objects.create(
        owner=owner, prompt=prompt, previous_version=previous, **defaults
    )
    Asset.objects.create(
        generation=generation,
        role=Asset.Role.MODEL,
        file=ContentFile(glb_bytes, name=f"model-{generation.pk}.glb"),
        format="glb",
        original_name="model.glb",
        bytes=len(glb_bytes),
        sha256="0" * 64,
        facts={"vertices": 8, "faces": 12},
    )
    return generation


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The cast is made for every test; the default hasher makes that seconds slower."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
def test_a_made_generation_awaits_review(member, media):
    generation = make_finished(member)
    assert list(awaiting_review()) == [generation]
    assert generation.glb_asset.format == "glb"
