"""The storage switch: local disk unless an S3 bucket is configured, and then private."""

import runpy
import warnings

import pytest
from django.core.exceptions import ImproperlyConfigured

S3_VARIABLES = ["S3_BUCKET", "S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"]


def load_settings(monkeypatch, **env):
    for name in S3_VARIABLES + ["S3_REGION"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Runs the settings module afresh, as a process starting with this environment would.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'studio_dashboard.settings' found", RuntimeWarning)
        return runpy.run_module("studio_dashboard.settings")


def test_media_stays_on_local_disk_when_no_bucket_is_configured(monkeypatch):
    config = load_settings(monkeypatch)
    assert config["STORAGES"]["default"] == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }


def test_it_selects_s3_when_a_bucket_is_configured(monkeypatch):
    config = load_settings(
        monkeypatch,
        S3_BUCKET="studio-media",
        S3_ENDPOINT_URL="http://minio:9000",
        S3_ACCESS_KEY_ID="AKIDEXAMPLE",
        S3_SECRET_ACCESS_KEY="secret-example",
        S3_REGION="eu-central-1",
    )
    default = config["STORAGES"]["default"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    options = default["OPTIONS"]
    assert options["bucket_name"] == "studio-media"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["access_key"] == "AKIDEXAMPLE"
    assert options["secret_key"] == "secret-example"
    assert options["region_name"] == "eu-central-1"
    assert options["addressing_style"] == "path"


def test_stored_objects_are_private_and_any_url_is_signed_and_short_lived(monkeypatch):
    options = load_settings(monkeypatch, S3_BUCKET="studio-media")["STORAGES"]["default"]["OPTIONS"]
    assert options["default_acl"] is None
    assert options["querystring_auth"] is True
    assert options["querystring_expire"] <= 600
    # Without keys boto3's own credential chain (an instance role) applies.
    assert options["access_key"] is None and options["secret_key"] is None
    assert options["endpoint_url"] is None and options["addressing_style"] is None


def test_it_bounds_the_memory_of_uploads_and_spooled_reads(monkeypatch):
    options = load_settings(monkeypatch, S3_BUCKET="studio-media")["STORAGES"]["default"]["OPTIONS"]
    config = options["transfer_config"]
    assert config.multipart_chunksize * config.max_request_concurrency <= 32 * 1024 * 1024
    assert 0 < options["max_memory_size"] <= 8 * 1024 * 1024


def test_keys_can_come_from_files(monkeypatch, tmp_path):
    (tmp_path / "key").write_text("AKIDFROMFILE\n")
    monkeypatch.setenv("S3_ACCESS_KEY_ID_FILE", str(tmp_path / "key"))
    options = load_settings(monkeypatch, S3_BUCKET="studio-media")["STORAGES"]["default"]["OPTIONS"]
    assert options["access_key"] == "AKIDFROMFILE"


def test_an_endpoint_without_a_bucket_is_refused(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="S3_BUCKET"):
        load_settings(monkeypatch, S3_ENDPOINT_URL="http://minio:9000")
