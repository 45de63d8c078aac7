"""Library downloads: the team fetches approved files, streamed like the generation's own
downloads (in blocks, from disk or one S3 GET), with the same headers."""

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from generations import storage
from reviews.models import Decision, Review
from tests.test_reviews_support import fast_passwords  # noqa: F401
from tests.test_storage_files import finished_with_asset, s3  # noqa: F401

pytestmark = pytest.mark.django_db

DATA = b"glTF" + bytes(range(256)) * 4096 * 2  # 2 MiB and a bit: many blocks


def approved_asset(owner, admin, data=DATA):
    generation, asset = finished_with_asset(owner, "assets/1/model.glb", data)
    Review.objects.record_decision(generation, admin, Decision.APPROVED, "fine")
    return generation, asset


def client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def download(user, generation, asset, name="library:asset"):
    return client_for(user).get(reverse(name, args=[generation.pk, asset.pk]))


def assert_streamed(response, data):
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "model/gltf-binary"
    assert response["X-Content-Type-Options"] == "nosniff"
    chunks = list(response.streaming_content)
    assert max(len(c) for c in chunks) == storage.CHUNK  # the same blocks as the generation page
    assert len(chunks) >= len(data) // storage.CHUNK
    assert b"".join(chunks) == data


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_a_teammate_downloads_an_approved_model_from_disk_in_blocks(
    media, member, second_member, admin_user
):
    generation, asset = approved_asset(member, admin_user)
    response = download(second_member, generation, asset)
    assert_streamed(response, DATA)
    assert response["Content-Disposition"] == (
        f'attachment; filename="generation-{generation.pk}-model-{asset.pk}.glb"'
    )


def test_the_view_url_serves_the_same_bytes_inline(media, member, reviewer, admin_user):
    generation, asset = approved_asset(member, admin_user)
    response = download(reviewer, generation, asset, "library:asset-view")
    assert_streamed(response, DATA)
    assert response["Content-Disposition"].startswith("inline;")


def test_a_download_from_the_bucket_streams_one_get_without_spooling(
    s3,  # noqa: F811
    member,
    second_member,
    admin_user,
    monkeypatch,
):
    generation, asset = approved_asset(member, admin_user)

    def no_spool(*args, **kwargs):
        raise AssertionError("storage.open() copies the whole object before streaming")

    monkeypatch.setattr(type(default_storage._wrapped), "_open", no_spool)
    assert_streamed(download(second_member, generation, asset), DATA)


def test_the_library_and_the_generation_page_serve_a_file_alike(media, member, admin_user):
    generation, asset = approved_asset(member, admin_user)
    library = download(member, generation, asset)
    own = download(member, generation, asset, "generations:asset")
    for header in ("Content-Length", "Content-Type", "X-Content-Type-Options"):
        assert library[header] == own[header]
    assert library.block_size == own.block_size == storage.CHUNK
    assert b"".join(library.streaming_content) == b"".join(own.streaming_content)


def test_outsiders_are_refused_and_visitors_sent_to_log_in(media, member, outsider, admin_user):
    generation, asset = approved_asset(member, admin_user)
    assert download(outsider, generation, asset).status_code == 403
    anonymous = download(None, generation, asset)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_a_model_not_yet_approved_is_not_in_the_library(media, member, second_member):
    generation, asset = finished_with_asset(member, "assets/1/model.glb", DATA)
    assert download(second_member, generation, asset).status_code == 404
