"""UPSTREAM_EXTRA_ASSET_ORIGINS: a keyed upstream whose result files come over http
or from a private network, named exactly, and nothing else let through.

No test here resolves a name or opens a socket to anything but loopback: the
resolver is replaced by one that fails the test if it is asked.
"""

import os
import subprocess
import sys

import pytest
import trimesh

from generations import ingest

pytestmark = pytest.mark.django_db

STAGING = "http://staging.internal:8080"


@pytest.fixture
def no_resolver(monkeypatch):
    def refuse(host, port):
        raise AssertionError(f"resolved {host}:{port}")

    monkeypatch.setattr(ingest, "resolver", refuse)


@pytest.fixture
def keyed(settings):
    """A real key, so no sandbox origin is trusted; one extra origin named."""
    settings.SANDBOX_MODE = False
    settings.UPSTREAM_ASSET_HOSTS = ["*.3daistudio.com"]
    settings.UPSTREAM_EXTRA_ASSET_ORIGINS = ["http://staging.internal:8080"]
    return settings


def test_without_the_setting_an_http_result_is_refused(keyed, no_resolver):
    keyed.UPSTREAM_EXTRA_ASSET_ORIGINS = []
    with pytest.raises(ingest.AssetRefused, match="only https"):
        ingest.check_url(STAGING + "/results/a.glb")


def test_a_named_origin_is_fetched_over_http_without_the_address_checks(keyed, no_resolver):
    ingest.check_url(STAGING + "/results/a.glb?sig=1")
    ingest.check_url("HTTP://Staging.Internal:8080/results/b.glb")


@pytest.mark.parametrize(
    "url",
    [
        "http://staging.internal:8081/a.glb",  # another port
        "http://staging.internal/a.glb",  # the default port is another port
        "https://staging.internal:8080/a.glb",  # another scheme
        "http://evil.staging.internal:8080/a.glb",  # a subdomain
        "http://staging.internal.evil.com:8080/a.glb",  # a longer name
        "http://user:pw@staging.internal:8080/a.glb",  # credentials
        "http://169.254.169.254:8080/a.glb",
    ],
)
def test_anything_but_the_exact_origin_is_still_refused_before_a_socket(keyed, no_resolver, url):
    with pytest.raises(ingest.AssetRefused):
        ingest.check_url(url)


def test_a_default_port_matches_when_written_or_not(keyed, no_resolver):
    keyed.UPSTREAM_EXTRA_ASSET_ORIGINS = ["http://proxy.lan:80"]
    ingest.check_url("http://proxy.lan/a.glb")
    ingest.check_url("http://proxy.lan:80/a.glb")


def test_a_file_on_a_named_loopback_origin_is_delivered_and_its_redirects_checked(
    keyed, canned, tmp_path
):
    keyed.MEDIA_ROOT = tmp_path / "media"
    keyed.UPSTREAM_EXTRA_ASSET_ORIGINS = [
        ingest.origin("http", "127.0.0.1", canned.httpd.server_port)
    ]
    canned.answer(200, trimesh.creation.box().export(file_type="glb"))
    downloaded = ingest.download(canned.url + "/results/a.glb")
    assert downloaded.format == "glb"
    # A redirect off the named origin is checked like any URL, and refused.
    canned.answer(302, b"", {"Location": "http://127.0.0.2:9/elsewhere.glb"})
    canned.responses.pop(0)
    with pytest.raises(ingest.AssetRefused, match="only https"):
        ingest.download(canned.url + "/results/b.glb")


def settings_with(value):
    """Import the settings in a fresh interpreter with the variable set; its stderr."""
    env = {**os.environ, "UPSTREAM_EXTRA_ASSET_ORIGINS": value}
    code = "import studio_dashboard.settings as s; print(s.UPSTREAM_EXTRA_ASSET_ORIGINS)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    return done


def test_the_setting_is_normalised_and_refuses_what_is_not_an_origin():
    done = settings_with("http://Staging.Internal:8080, https://proxy.lan")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['http://staging.internal:8080', 'https://proxy.lan:443']"
    for bad in ("ftp://host", "staging.internal:8080", "http://host/path", "http://u:p@host"):
        done = settings_with(bad)
        assert done.returncode != 0
        assert "UPSTREAM_EXTRA_ASSET_ORIGINS" in done.stderr
