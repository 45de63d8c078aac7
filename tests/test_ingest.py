"""Fetching result files: the URL checks, the caps, the magic bytes, the atomic store."""

import io
import struct
import zipfile

import pytest
import trimesh

from generations import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_resolver(monkeypatch):
    """Resolve every name to a public address, without DNS."""
    answers = {}
    monkeypatch.setattr(ingest, "resolver", lambda host, port: answers.get(host, ["93.184.216.34"]))
    return answers


@pytest.fixture
def real_upstream(settings):
    settings.SANDBOX_MODE = False
    settings.UPSTREAM_ASSET_HOSTS = ["*.3daistudio.com", "files.example.com"]


def leftovers(tmp_path):
    incoming = tmp_path / "media" / ".incoming"
    return list(incoming.iterdir()) if incoming.exists() else []


def glb_bytes():
    return trimesh.creation.box(extents=(1, 2, 3)).export(file_type="glb")


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://files.example.com/a.glb", "only https"),
        ("ftp://files.example.com/a.glb", "only https"),
        ("https://evil.example.net/a.glb", "not on the allow-list"),
        ("https://user:pw@files.example.com/a.glb", "credentials"),
        ("https:///a.glb", "no host"),
        ("https://files.example.com:99999/a.glb", "Malformed"),
    ],
)
def test_it_refuses_urls_before_any_socket(real_upstream, public_resolver, url, words):
    with pytest.raises(ingest.AssetRefused, match=words):
        ingest.check_url(url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "0.0.0.0",
        "100.64.0.1",
    ],
)
def test_it_refuses_hosts_that_resolve_to_private_addresses(
    real_upstream, public_resolver, address
):
    public_resolver["files.example.com"] = ["93.184.216.34", address]
    with pytest.raises(ingest.AssetRefused, match="non-public"):
        ingest.check_url("https://files.example.com/a.glb")


def test_it_accepts_an_allowed_public_https_host(real_upstream, public_resolver):
    ingest.check_url("https://bucket.3daistudio.com/results/a.glb?X-Amz-Signature=abc")


def test_the_configured_sandbox_is_allowed_over_http(settings, public_resolver):
    settings.SANDBOX_MODE = True
    settings.SANDBOX_URL = "http://127.0.0.1:8765"
    ingest.check_url("http://127.0.0.1:8765/storage/t/a.glb")
    with pytest.raises(ingest.AssetRefused):
        ingest.check_url("http://127.0.0.1:8766/storage/t/a.glb")


def test_the_file_format_comes_from_the_path_not_the_query():
    assert ingest.url_extension("https://s/x/model.GLB?name=evil.zip") == ".glb"
    assert ingest.url_extension("https://s/x/archive.zip") == ".zip"


@pytest.mark.parametrize(
    "head, fmt",
    [
        (b"glTF\x02\x00\x00\x00", "glb"),
        (b"PK\x03\x04rest", "zip"),
        (b"Kaydara FBX Binary  \x00", "fbx"),
        (b"\x89PNG\r\n\x1a\nxxxx", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"<html>", "unknown"),
    ],
)
def test_sniff_recognises_files_by_their_first_bytes(head, fmt):
    assert ingest.sniff(head) == fmt


@pytest.fixture
def sandboxed(settings, canned, tmp_path):
    """Treat the canned server as the configured sandbox, media in a temp dir."""
    settings.SANDBOX_MODE = True
    settings.SANDBOX_URL = canned.url
    settings.MEDIA_ROOT = tmp_path / "media"
    return canned


def test_it_downloads_without_the_authorization_header(sandboxed, settings):
    settings.UPSTREAM_API_KEY = "sk-sentinel"
    sandboxed.answer(200, glb_bytes())
    downloaded = ingest.download(sandboxed.url + "/storage/a.glb?sig=1")
    assert downloaded.format == "glb"
    assert "Authorization" not in sandboxed.requests[0]["headers"]
    assert downloaded.path.read_bytes()[:4] == b"glTF"


def test_a_declared_oversize_file_is_refused_before_reading(sandboxed, tmp_path):
    sandboxed.answer(200, b"glTF" + b"\0" * 5000)
    with pytest.raises(ingest.AssetRefused, match="cap"):
        ingest.download(sandboxed.url + "/a.glb", max_bytes=1000)
    assert leftovers(tmp_path) == []


def test_a_streamed_oversize_file_is_aborted_at_the_cap(sandboxed, tmp_path):
    def endless(handler):
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: the cap must catch it while streaming
        handler.wfile.write(b"glTF" + b"\0" * 300_000)

    sandboxed.answer(200, endless)
    with pytest.raises(ingest.AssetRefused, match="cap"):
        ingest.download(sandboxed.url + "/a.glb", max_bytes=100_000)
    assert leftovers(tmp_path) == []


def test_a_truncated_download_leaves_no_file(sandboxed, tmp_path):
    def short(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"glTF" + b"\0" * 100)

    sandboxed.answer(200, short)
    with pytest.raises(ingest.AssetUnavailable):
        ingest.download(sandboxed.url + "/a.glb")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "path, payload, words",
    [
        ("/a.glb", b"<html>not a model</html>", "not what it claims"),
        ("/a.glb", b"PK\x03\x04" + b"\0" * 30, "not what it claims"),
        ("/a.glb", b"glTF\x02\x00\x00\x00\xff\x00\x00\x00" + b"\0" * 20, "truncated"),
    ],
)
def test_wrong_or_broken_bytes_are_refused(sandboxed, tmp_path, path, payload, words):
    sandboxed.answer(200, payload)
    with pytest.raises(ingest.AssetRefused, match=words):
        ingest.download(sandboxed.url + path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [400, 403])
def test_a_refused_presigned_url_is_expired(sandboxed, status):
    sandboxed.answer(status, "<Error>Request has expired</Error>")
    with pytest.raises(ingest.AssetExpired):
        ingest.download(sandboxed.url + "/a.glb")


def test_redirects_are_checked_like_the_first_url(sandboxed):
    sandboxed.answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(ingest.AssetRefused):
        ingest.download(sandboxed.url + "/a.glb")
    assert len(sandboxed.requests) == 1


def test_store_moves_the_file_under_a_generated_name(sandboxed, tmp_path):
    sandboxed.answer(200, glb_bytes())
    downloaded = ingest.download(sandboxed.url + "/../../etc/passwd.glb")
    name = ingest.store(downloaded.path, 7, downloaded.format)
    assert name.startswith("assets/7/") and name.endswith(".glb")
    assert (tmp_path / "media" / name).read_bytes()[:4] == b"glTF"
    assert not downloaded.path.exists()


def test_glb_facts_counts_what_is_in_the_file(tmp_path):
    path = tmp_path / "box.glb"
    path.write_bytes(glb_bytes())
    facts = ingest.glb_facts(path)
    assert facts["vertices"] == 8
    assert facts["faces"] == 12
    assert facts["dimensions"] == [1.0, 2.0, 3.0]
    assert facts["bytes"] == path.stat().st_size


def test_a_zip_of_obj_becomes_a_glb(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    mesh = trimesh.creation.icosphere()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/model.obj", mesh.export(file_type="obj"))
    path = tmp_path / "r.zip"
    path.write_bytes(buffer.getvalue())
    glb = ingest.zip_to_glb(path)
    assert ingest.glb_facts(glb)["faces"] == len(mesh.faces)


def test_a_zip_escaping_its_folder_is_refused(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../evil.obj", "v 0 0 0\n")
    path = tmp_path / "r.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ingest.AssetRefused, match="outside"):
        ingest.zip_to_glb(path)
    assert not (tmp_path / "evil.obj").exists()


def test_check_glb_wants_a_matching_length(tmp_path):
    data = glb_bytes()
    path = tmp_path / "x.glb"
    path.write_bytes(data[:-8])
    with pytest.raises(ingest.AssetRefused, match="truncated"):
        ingest.check_glb(path)
    path.write_bytes(struct.pack("<4sII", b"glTF", 1, 12))
    with pytest.raises(ingest.AssetRefused):
        ingest.check_glb(path)


def test_converted_obj_materials_are_not_metal(settings, tmp_path):
    from pygltflib import GLTF2

    settings.MEDIA_ROOT = tmp_path / "media"
    mesh = trimesh.creation.box()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "model.obj", "mtllib model.mtl\nusemtl red\n" + mesh.export(file_type="obj")
        )
        archive.writestr("model.mtl", "newmtl red\nKd 0.8 0.1 0.1\n")
    path = tmp_path / "r.zip"
    path.write_bytes(buffer.getvalue())
    gltf = GLTF2().load_binary(str(ingest.zip_to_glb(path)))
    assert gltf.materials
    assert all(m.pbrMetallicRoughness.metallicFactor == 0.0 for m in gltf.materials)
