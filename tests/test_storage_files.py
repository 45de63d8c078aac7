"""Stored files on local disk and on S3: downloads stream, and nothing needs a path."""

import hashlib
import re
from pathlib import Path

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from moto import mock_aws

from generations import storage
from generations.models import Asset, Generation, State

pytestmark = pytest.mark.django_db

BUCKET = "studio-test-media"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def s3(settings, monkeypatch):
    """Media in a private bucket, served by moto inside this process (no socket opens)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": BUCKET,
                    "region_name": "us-east-1",
                    "default_acl": None,
                    "querystring_auth": True,
                    "max_memory_size": 4 * 1024 * 1024,
                },
            },
        }
        yield boto3.client("s3", region_name="us-east-1")


def finished_with_asset(owner, name, data):
    generation = Generation.objects.create(
        owner=owner, provider="hunyuan_rapid", prompt="a chair", credit_estimate=35,
        state=State.FINISHED, progress=100,
    )  # fmt: skip
    stored = default_storage.save(name, ContentFile(data))
    asset = Asset.objects.create(
        generation=generation, role="model", file=stored, format="glb", bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )  # fmt: skip
    return generation, asset


def test_it_stores_in_the_bucket_when_s3_is_configured(s3, member):
    _generation, asset = finished_with_asset(member, "assets/1/a.glb", b"glTF" + b"x" * 100)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [asset.file.name]
    # Private: the only grant is the owner's.
    grants = s3.get_object_acl(Bucket=BUCKET, Key=asset.file.name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]


def test_a_download_from_the_bucket_streams_in_chunks_without_spooling(
    s3, member, member_client, monkeypatch
):
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    generation, asset = finished_with_asset(member, "assets/1/big.glb", data)

    def no_spool(*args, **kwargs):
        raise AssertionError("storage.open() copies the whole object before streaming")

    monkeypatch.setattr(type(default_storage._wrapped), "_open", no_spool)
    response = member_client.get(reverse("generations:asset", args=[generation.pk, asset.pk]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Length"] == str(len(data))
    chunks = list(response.streaming_content)
    assert max(len(c) for c in chunks) <= storage.CHUNK
    assert len(chunks) >= len(data) // storage.CHUNK
    assert b"".join(chunks) == data


def test_a_download_from_local_disk_streams_in_chunks(settings, tmp_path, member, member_client):
    settings.MEDIA_ROOT = tmp_path
    data = b"glTF" + b"\0" * (1024 * 1024)
    generation, asset = finished_with_asset(member, "assets/1/m.glb", data)
    response = member_client.get(reverse("generations:asset", args=[generation.pk, asset.pk]))
    assert response.streaming
    assert response["Content-Length"] == str(len(data))
    chunks = list(response.streaming_content)
    assert max(len(c) for c in chunks) <= storage.CHUNK
    assert b"".join(chunks) == data


def test_a_file_missing_from_the_bucket_is_a_404_and_an_error_in_the_log(
    s3, member, member_client, caplog
):
    generation, asset = finished_with_asset(member, "assets/1/gone.glb", b"glTF" + b"x" * 10)
    s3.delete_object(Bucket=BUCKET, Key=asset.file.name)
    response = member_client.get(reverse("generations:asset", args=[generation.pk, asset.pk]))
    assert response.status_code == 404
    assert "stored file missing: assets/1/gone.glb" in caplog.text


def test_a_file_missing_from_disk_is_a_404_and_an_error_in_the_log(
    settings, tmp_path, member, member_client, caplog
):
    settings.MEDIA_ROOT = tmp_path
    generation, asset = finished_with_asset(member, "assets/1/gone.glb", b"glTF" + b"x" * 10)
    Path(asset.file.path).unlink()
    url = reverse("generations:asset-view", args=[generation.pk, asset.pk])
    assert member_client.get(url).status_code == 404
    assert "stored file missing: assets/1/gone.glb" in caplog.text


def test_a_local_copy_of_a_bucket_object_is_a_real_file_removed_afterwards(s3, member, tmp_path):
    _generation, asset = finished_with_asset(member, "assets/1/a.zip", b"PK\x03\x04zip-bytes")
    with pytest.raises(NotImplementedError):
        asset.file.path  # noqa: B018 - a bucket has no paths
    with storage.local_copy(asset.file, tmp_path, ".zip") as path:
        assert path.read_bytes() == b"PK\x03\x04zip-bytes"
        assert path.parent == tmp_path
    assert not path.exists()


def test_a_local_copy_of_a_file_on_disk_is_the_file_itself(settings, tmp_path, member):
    settings.MEDIA_ROOT = tmp_path / "media"
    _generation, asset = finished_with_asset(member, "assets/1/a.zip", b"PK\x03\x04zip")
    with storage.local_copy(asset.file, tmp_path, ".zip") as path:
        assert path == Path(asset.file.path)
    assert path.exists()


def test_a_stored_file_is_described_by_its_name_and_on_disk_its_path(s3, member):
    _generation, asset = finished_with_asset(member, "assets/1/a.glb", b"glTF")
    assert storage.describe(asset.file) == asset.file.name


def test_the_store_step_puts_a_checked_file_in_the_bucket_and_removes_the_temp(
    s3, settings, tmp_path
):
    from generations import ingest

    settings.MEDIA_ROOT = tmp_path
    temp = ingest.incoming_dir() / "x.part"
    temp.write_bytes(b"glTF" + b"\1" * 1000)
    name = ingest.store(temp, 7, "glb")
    assert not temp.exists()
    body = s3.get_object(Bucket=BUCKET, Key=name)["Body"].read()
    assert body == b"glTF" + b"\1" * 1000
    assert not (tmp_path / "assets").exists()


def test_no_product_code_asks_a_stored_file_for_its_path():
    # A bucket has no paths (S3Storage.path raises): use storage.local_copy or describe.
    pattern = re.compile(r"\.file\.path\b|\.file\.url\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("generations", "credits", "reviews", "studio_dashboard", "ops")
        for path in (ROOT / package).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
