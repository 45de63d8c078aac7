"""Fetching result files from the upstream's storage into ours, safely.

Result URLs are pre-signed and expire, so we copy the bytes at once. The URL
comes from the upstream's answer, so it is untrusted: before a socket opens we
check the scheme, the host against an allow-list, and every address the host
resolves to (no loopback, private, link-local or reserved ranges), and we
follow redirects by hand under the same checks. The only exceptions are origins
named exactly (scheme, host and port): the configured sandbox, and those an
admin lists in ``UPSTREAM_EXTRA_ASSET_ORIGINS`` (an http staging host, a proxy
on a private network). Our API key is never sent: the
storage host answers 400 to an Authorization header, and it is not theirs.

Bytes stream to a temporary file under the media root, with a size cap and a
deadline, then their magic is checked and the file is moved into place with a
rename, so a half-written file is never visible.
"""

import fnmatch
import hashlib
import ipaddress
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
HEAD = 64  # first bytes kept to tell the format (a WebM names its DocType within them)
MAX_REDIRECTS = 3
DEFAULT_PORTS = {"http": 80, "https": 443}
ZIP_MAX_MEMBERS = 200
ZIP_MAX_TOTAL = 1024 * 1024 * 1024


class AssetRefused(Exception):
    """The URL or the bytes are not acceptable; the generation needs a person."""


class AssetExpired(Exception):
    """The storage host refused the pre-signed URL (expired): ask upstream for a fresh one."""


class AssetUnavailable(Exception):
    """A transient failure fetching the file; try again later."""


class DownloadTimedOut(AssetUnavailable):
    """The file did not arrive within ``ASSET_DOWNLOAD_DEADLINE``: a worker was held that long."""


def _resolve(host, port):
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# Tests replace this to check addresses without touching the network.
resolver = _resolve


def origin(scheme, host, port):
    """``scheme://host:port``, the port always written: how named origins are compared."""
    return f"{scheme}://{host}:{port or DEFAULT_PORTS.get(scheme, 0)}"


def _named_origins():
    """Origins fetched as named, without the https, allow-list and address checks."""
    named = set(settings.UPSTREAM_EXTRA_ASSET_ORIGINS)
    if settings.SANDBOX_MODE:
        parts = urlsplit(settings.SANDBOX_URL)
        named.add(origin(parts.scheme, parts.hostname, parts.port))
    return named


def check_url(url: str) -> None:
    """Raise AssetRefused unless ``url`` may be fetched. Opens no socket but DNS."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AssetRefused(f"Malformed result URL: {url[:200]!r}") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise AssetRefused("The result URL has no host")
    if parts.username or parts.password:
        raise AssetRefused("The result URL carries credentials")
    # The configured sandbox is ours and lives on loopback over plain http; an
    # extra origin was named by an admin. Both match exactly, or not at all.
    if origin(parts.scheme, host, port) in _named_origins():
        return
    if parts.scheme != "https":
        raise AssetRefused(f"Result URL refused: only https is allowed, not {parts.scheme!r}")
    allowed = settings.UPSTREAM_ASSET_HOSTS
    if not any(fnmatch.fnmatch(host, pattern.lower()) for pattern in allowed):
        raise AssetRefused(f"Result URL refused: host {host} is not on the allow-list")
    try:
        addresses = resolver(host, port or 443)
    except OSError as exc:
        raise AssetUnavailable(f"Cannot resolve {host}: {exc}") from None
    if not addresses:
        raise AssetUnavailable(f"{host} resolves to no address")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise AssetRefused(f"Result URL refused: {host} resolves to a non-public address")


def sniff(head: bytes) -> str:
    """The format of a file by its first bytes."""
    if head[:4] == b"glTF":
        return "glb"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:18] == b"Kaydara FBX Binary":
        return "fbx"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"  # a rendered turntable (finishing.py)
    if head[4:8] == b"ftyp":
        return "mp4" if _mp4_brands(head) & MP4_BRANDS else "unknown"  # a rendered turntable
    if head[:4] == EBML_MAGIC:
        return "webm" if _ebml_doctype(head) == "webm" else "unknown"  # a rendered turntable
    if head[:1] == b"#" or head[:2] in (b"v ", b"o ", b"g ") or head[:6] == b"mtllib":
        return "obj"  # text: Tencent's smart topology answers a bare OBJ (finishing.py)
    return "unknown"


EXTENSION_FORMATS = {
    ".glb": "glb",
    ".zip": "zip",
    ".fbx": "fbx",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".gif": "gif",
    ".mp4": "mp4",
    ".webm": "webm",
    ".obj": "obj",
}

# --- videos: a rendered turntable (the render tool answers MP4, WebM or GIF) -------------------

# ISO base media brands of an MP4 video a browser plays (ISO 14496-12/14, Apple's M4V, DASH):
# an ``ftyp`` of another brand (HEIC or AVIF pictures, QuickTime, 3GPP) is not one.
MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"dash",
    b"M4V ",
}
MP4_MAX_BOXES = 65_536  # top-level boxes walked at most: a real video has a handful
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
EBML_DOCTYPE = 0x4282
MATROSKA_SEGMENT = 0x18538067
EBML_HEADER_MAX = 4096


def _mp4_brands(head):
    """The major and compatible brands of an ``ftyp`` box at the start of ``head``."""
    size = int.from_bytes(head[:4], "big")
    end = min(len(head), size) if size >= 16 else 0
    brands = {head[8:12]} if end else set()
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def _vint(data, at, keep_marker=False):
    """An EBML variable-length integer at ``at``: (value, its length); None if cut off.
    An all-ones size (unknown length) is -1."""
    if at >= len(data) or data[at] == 0:
        return None
    length = 9 - data[at].bit_length()
    if at + length > len(data):
        return None
    value = int.from_bytes(data[at : at + length], "big")
    if keep_marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    return (-1 if value == (1 << (7 * length)) - 1 else value), length


def _ebml_elements(data, at, end):
    """(id, data start, data size) of the EBML elements in data[at:end], while readable."""
    while at < end:
        element = _vint(data, at, keep_marker=True)
        size = element and _vint(data, at + element[1])
        if not size or size[0] < 0:
            return
        start = at + element[1] + size[1]
        yield element[0], start, size[0]
        at = start + size[0]


def _ebml_doctype(head):
    """The DocType an EBML header names ("webm", "matroska"), or "" if it names none."""
    size = _vint(head, 4)
    if size is None:
        return ""
    start = 4 + size[1]
    for element, at, length in _ebml_elements(head, start, min(len(head), start + size[0])):
        if element == EBML_DOCTYPE and at + length <= len(head):
            return head[at : at + length].rstrip(b"\0").decode("ascii", "replace")
    return ""


def _looks_like(head):
    """What a file that is no format we take seems to be, for the refusal's words."""
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        return f"an ISO media file of brand '{brand}', not an MP4 video"
    if head[:4] == EBML_MAGIC:
        doctype = _ebml_doctype(head) or "none we can read"
        return f"a Matroska file of DocType '{doctype}', not WebM"
    return "unknown"


def check_video(path: Path, fmt: str) -> None:
    """An MP4 must be whole ISO boxes with a movie and its media; a WebM an EBML header
    naming webm, then one Segment that ends where the file does. Raises AssetRefused."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fmt == "mp4":
            _check_mp4(fh, size)
        else:
            _check_webm(fh, size)


def _check_mp4(fh, size):
    seen, at = set(), 0
    for _ in range(MP4_MAX_BOXES):
        if at == size:
            break
        header = fh.read(8)
        if len(header) < 8:
            raise AssetRefused(f"The MP4 is truncated (a box header is cut off at byte {at})")
        length, kind = int.from_bytes(header[:4], "big"), header[4:]
        if not all(32 <= c < 127 for c in kind):
            raise AssetRefused(f"The MP4 has a damaged box at byte {at}")
        name = kind.decode("ascii")
        if length == 1:  # a 64-bit size follows
            large = fh.read(8)
            length = int.from_bytes(large, "big") if len(large) == 8 else 0
            if length < 16:
                raise AssetRefused(f"The MP4's '{name}' box at byte {at} has a damaged size")
        elif length == 0:  # to the end of the file
            length = size - at
        elif length < 8:
            raise AssetRefused(f"The MP4's '{name}' box at byte {at} has a damaged size")
        if at + length > size:
            raise AssetRefused(f"The MP4 is truncated: its '{name}' box runs past the file's end")
        seen.add(name)
        at += length
        fh.seek(at)
    else:
        raise AssetRefused(f"The MP4 has over {MP4_MAX_BOXES:,} top-level boxes")
    if "moov" not in seen:
        raise AssetRefused("The MP4 has no 'moov' box: no movie to play")
    if not {"mdat", "moof"} & seen:
        raise AssetRefused("The MP4 has no media data ('mdat')")


def _check_webm(fh, size):
    data = fh.read(EBML_HEADER_MAX + 16)
    header = _vint(data, 4)
    if header is None or header[0] < 0 or 4 + header[1] + header[0] > EBML_HEADER_MAX:
        raise AssetRefused("The WebM's EBML header is damaged")
    doctype = _ebml_doctype(data)
    if doctype != "webm":
        raise AssetRefused(f"The file's DocType is '{doctype or 'missing'}', not webm")
    at = 4 + header[1] + header[0]
    segment = _vint(data, at, keep_marker=True)
    length = segment and _vint(data, at + segment[1])
    if not length or segment[0] != MATROSKA_SEGMENT:
        raise AssetRefused("The WebM has no Segment after its header: no video to play")
    end = at + segment[1] + length[1] + length[0]
    if length[0] >= 0 and end != size:
        state = "truncated" if end > size else "padded"
        raise AssetRefused(f"The WebM is {state} ({size} bytes, its Segment says {end})")


def url_extension(url: str) -> str:
    """The file extension of the URL's path; the query string is ignored."""
    return PurePosixPath(urlsplit(url).path).suffix.lower()


@dataclass
class Downloaded:
    path: Path
    format: str
    bytes: int
    sha256: str
    name: str


def incoming_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / ".incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def download(url: str, *, max_bytes: int | None = None, session=None) -> Downloaded:
    """Stream ``url`` to a temporary file under the media root and check what it is."""
    max_bytes = max_bytes or settings.ASSET_MAX_BYTES
    session = session or requests.Session()
    session.trust_env = False
    # One deadline for the whole file, redirects included. The read timeout only
    # bounds the wait for the next bytes, so a host that drips a few bytes at a
    # time would never trip it; every wait below is also capped by the deadline.
    deadline = time.monotonic() + settings.ASSET_DOWNLOAD_DEADLINE
    too_long = (
        "The result file took too long to download "
        f"(over ASSET_DOWNLOAD_DEADLINE, {settings.ASSET_DOWNLOAD_DEADLINE:g} s)"
    )

    def read_timeout():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DownloadTimedOut(too_long)
        return min(settings.UPSTREAM_READ_TIMEOUT, remaining)

    def ran_out(exc, wait):
        """Whether a failed wait of ``wait`` seconds was the deadline's: past it, or a
        timeout of a wait the deadline had cut short (a socket's timer may fire a little
        before our clock reaches the deadline)."""
        if time.monotonic() >= deadline:
            return True
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return False  # the host did not answer at all: not a slow file
        timed_out = isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
        return timed_out and wait < settings.UPSTREAM_READ_TIMEOUT

    current = url
    for _ in range(MAX_REDIRECTS + 1):
        check_url(current)
        wait = read_timeout()
        try:
            # No Authorization header here, ever.
            response = session.get(
                current,
                stream=True,
                timeout=(settings.UPSTREAM_CONNECT_TIMEOUT, wait),
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            if ran_out(exc, wait):
                raise DownloadTimedOut(too_long) from None
            raise AssetUnavailable(
                f"Could not fetch the result file: {type(exc).__name__}"
            ) from None
        if response.is_redirect:
            location = response.headers.get("Location", "")
            response.close()
            current = urljoin(current, location)
            continue
        break
    else:
        raise AssetRefused("Too many redirects fetching the result file")

    with response:
        if response.status_code in (400, 401, 403):
            raise AssetExpired(
                f"The storage host refused the result URL (HTTP {response.status_code})"
            )
        if response.status_code == 404:
            raise AssetExpired("The result file is gone from the storage host (HTTP 404)")
        if response.status_code >= 400:
            raise AssetUnavailable(f"The storage host answered HTTP {response.status_code}")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise AssetRefused(
                f"The result file is {int(declared):,} bytes, over the {max_bytes:,}-byte cap"
            )
        fd, tmp = tempfile.mkstemp(dir=incoming_dir(), suffix=".part")
        digest = hashlib.sha256()
        size = 0
        head = b""
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    # Checks the deadline before every read, the last (empty) one included.
                    wait = read_timeout()
                    if sock is not None:
                        sock.settimeout(wait)
                    # read1, not iter_content: that waits for a whole CHUNK, which
                    # a drip delivers long after the deadline.
                    chunk = response.raw.read1(CHUNK, decode_content=True)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise AssetRefused(f"The result file exceeds the {max_bytes:,}-byte cap")
                    if len(head) < HEAD:
                        head = (head + chunk)[:HEAD]
                    digest.update(chunk)
                    out.write(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            os.unlink(tmp)
            if ran_out(exc, wait):
                raise DownloadTimedOut(too_long) from None
            raise AssetUnavailable(
                f"The download of the result file broke off: {type(exc).__name__}"
            ) from None
        except BaseException:
            os.unlink(tmp)
            raise
    fmt = sniff(head)
    expected = EXTENSION_FORMATS.get(url_extension(url))
    if fmt == "unknown" or (expected and expected != fmt):
        os.unlink(tmp)
        looks = _looks_like(head) if fmt == "unknown" else fmt
        raise AssetRefused(
            f"The result file is not what it claims to be (named {url_extension(url) or 'no extension'}, "
            f"bytes look like {looks})"
        )
    try:
        if fmt == "glb":
            check_glb(Path(tmp))
        elif fmt in ("mp4", "webm"):
            check_video(Path(tmp), fmt)
    except AssetRefused:
        os.unlink(tmp)
        raise
    name = PurePosixPath(urlsplit(url).path).name[:150] or f"result.{fmt}"
    return Downloaded(Path(tmp), fmt, size, digest.hexdigest(), name)


def check_glb(path: Path) -> None:
    """A GLB must have a valid header, a length equal to the file's and parseable JSON."""
    import json
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = fh.read(20)
        if len(header) < 20:
            raise AssetRefused("The GLB is truncated (no header)")
        magic, version, length, chunk_len, chunk_type = struct.unpack("<4sIIII", header)
        if magic != b"glTF" or version != 2:
            raise AssetRefused("The file is not a glTF 2.0 binary")
        if length != size:
            raise AssetRefused(
                f"The GLB is truncated or padded ({size} bytes, header says {length})"
            )
        if chunk_type != 0x4E4F534A or chunk_len > size - 20:
            raise AssetRefused("The GLB has no JSON chunk")
        try:
            json.loads(fh.read(chunk_len))
        except ValueError:
            raise AssetRefused("The GLB's JSON chunk does not parse") from None


class _MovableFile(File):
    """A file FileSystemStorage can move into place with a rename, not a copy."""

    def temporary_file_path(self):
        return self.name


def store(downloaded_path: Path, generation_id: int, fmt: str) -> str:
    """Move a checked file into storage under a generated name; return that name."""
    name = f"assets/{generation_id}/{uuid.uuid4().hex}.{fmt}"
    with open(downloaded_path, "rb") as fh:
        wrapper = _MovableFile(fh, name=str(downloaded_path))
        stored = default_storage.save(name, wrapper)
    if downloaded_path.exists():
        downloaded_path.unlink()
    return stored


def zip_to_glb(zip_path: Path) -> Path:
    """Convert an upstream ZIP (OBJ + MTL + textures) to a GLB for the preview."""
    import trimesh

    workdir = Path(tempfile.mkdtemp(dir=incoming_dir()))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            if len(members) > ZIP_MAX_MEMBERS:
                raise AssetRefused("The ZIP holds too many files")
            if sum(m.file_size for m in members) > ZIP_MAX_TOTAL:
                raise AssetRefused("The ZIP expands beyond the size cap")
            for member in members:
                target = (workdir / member.filename).resolve()
                if not target.is_relative_to(workdir.resolve()):
                    raise AssetRefused("The ZIP holds a path outside itself")
            archive.extractall(workdir)
        objs = sorted(workdir.rglob("*.obj"))
        if not objs:
            raise AssetRefused("The ZIP holds no OBJ model")
        scene = trimesh.load(objs[0], force="scene")
        if not scene.geometry:
            raise AssetRefused("The OBJ in the ZIP has no geometry")
        _fix_obj_materials(scene)
        fd, out = tempfile.mkstemp(dir=incoming_dir(), suffix=".glb.part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(scene.export(file_type="glb"))
        check_glb(Path(out))
        return Path(out)
    except (zipfile.BadZipFile, ValueError, IndexError) as exc:
        raise AssetRefused(f"The ZIP could not be converted: {exc}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _fix_obj_materials(scene):
    """OBJ materials carry no metalness; glTF reads a missing metallicFactor as 1.0,
    which would show every converted model as dark metal. Say 0 explicitly."""
    for geometry in scene.geometry.values():
        material = getattr(getattr(geometry, "visual", None), "material", None)
        if material is None:
            continue
        pbr = material.to_pbr() if hasattr(material, "to_pbr") else material
        if getattr(pbr, "metallicFactor", 0.0) is None:
            pbr.metallicFactor = 0.0
        geometry.visual.material = pbr


def glb_facts(path: Path) -> dict:
    """Vertices, faces, materials, textures, bounding box and bytes of a GLB."""
    from generations import glbfacts

    return glbfacts.glb_facts(path)


def cleanup_incoming(older_than_seconds=3600) -> int:
    """Remove temporary files left by killed workers."""
    removed = 0
    cutoff = time.time() - older_than_seconds
    for entry in incoming_dir().iterdir():
        try:
            if entry.stat().st_mtime < cutoff:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
