"""The sandbox's own reading of UPSTREAM_API.md: routes, validation, prices, results.

Every submit body goes through one validator per endpoint. A validator returns a
`Job` (what to build, what it costs, which files it yields) or raises
`ValidationFailed` naming the first bad field, like a DRF serializer would.
Where the contract is silent or ambiguous the choice is marked "Reading:".
"""

import base64
import binascii
import hashlib
import io
import ipaddress
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from PIL import Image

PROMPT_MAX = 1024
IMAGE_MAX_BYTES = 6 * 1024 * 1024
IMAGE_MIN_SIDE = 128
IMAGE_MAX_SIDE = 5000
# MIME type declared in the data URI -> the format Pillow must find in the bytes.
# Reading: "image/jpg" is accepted as an alias of "image/jpeg" (browsers emit it).
DATA_URI_TYPES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/webp": "WEBP",
}

PRO_VIEWS_30 = ("front", "left", "right", "back")
PRO_VIEWS_31 = PRO_VIEWS_30 + ("top", "bottom", "left_front", "right_front")

CONVERT_FORMATS = {
    # output_format -> (file extension, asset_type)
    "glb": ("glb", "3D_MODEL"),
    "obj": ("obj", "3D_MODEL"),
    "obj_zip": ("zip", "ARCHIVE"),
    "stl": ("stl", "3D_MODEL"),
    "ply": ("ply", "3D_MODEL"),
    "fbx": ("fbx", "3D_MODEL"),
    "fbx_zip": ("zip", "ARCHIVE"),
    "usdz": ("usdz", "3D_MODEL"),
    "3mf": ("3mf", "3D_MODEL"),
}

# Prices as data, transcribed from UPSTREAM_API.md ("Price" lines).
PRICES = {
    "hunyuan_pro": {"base": 60, "pbr": 20, "multi_view": 20},
    # Reading: Rapid PBR is +20 (one source says +15; the contract's first figure wins).
    "hunyuan_rapid": {"base": 35, "pbr": 20},
    # TRELLIS.2: resolution -> (geometry only, textures 1024/2048, textures 4096); thumbnail +2.
    "trellis2": {"512": (15, 25, 30), "1024": (20, 30, 40), "1536": (25, 40, 55), "thumbnail": 2},
    "tripo": {
        "text": 20,
        "image": 40,
        "multiview": 40,
        "texture_standard": 20,
        "texture_detailed": 40,
        "geometry_detailed": 40,
        "quad": 10,
        "smart_low_poly": 20,
        "parts": 40,
    },
    "tripo_p1": {
        "text": 60,
        "image": 80,
        "multiview": 80,
        "texture_standard": 20,
        "texture_detailed": 40,
    },
    "convert": {"base": 10},
}


class ValidationFailed(Exception):
    def __init__(self, field_name, message):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    @property
    def detail(self):
        return f"{self.field}: {self.message}"


@dataclass
class ResultFile:
    name: str  # file name without extension, e.g. "model"
    ext: str  # the client decides formats by this extension
    asset_type: str  # 3D_MODEL, ARCHIVE, IMAGE


@dataclass
class Job:
    """What a validated submit asks for. Stored as JSON with the task."""

    provider: str  # key for durations and prices: hunyuan_pro, trellis2, tripo, ...
    price: int
    kind: str  # "prompt", "image", "images" or "convert": which mesh builder to use
    prompt: str = ""
    images: list = field(default_factory=list)  # raw image bytes (not stored in JSON)
    mesh: dict = field(default_factory=dict)  # keyword arguments for sandbox.meshes
    results: list = field(default_factory=list)  # ResultFile list
    options: dict = field(default_factory=dict)  # extra facts (e.g. convert source/format)


# --- field readers -------------------------------------------------------------------------
# DRF refuses explicit nulls unless a field allows them; none of the documented fields do.
# Reading: booleans must be JSON booleans and integers JSON integers (the brief asks for
# this strictness; DRF itself would coerce "true" and "12").


def _present(body, name):
    if name not in body:
        return False
    if body[name] is None:
        raise ValidationFailed(name, "This field may not be null.")
    return True


def _bool(body, name, default):
    if not _present(body, name):
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise ValidationFailed(name, "Must be a valid boolean (true or false).")
    return value


def _int(body, name, default, lo=None, hi=None):
    if not _present(body, name):
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(name, "A valid integer is required.")
    if lo is not None and value < lo:
        raise ValidationFailed(name, f"Ensure this value is greater than or equal to {lo}.")
    if hi is not None and value > hi:
        raise ValidationFailed(name, f"Ensure this value is less than or equal to {hi}.")
    return value


def _choice(body, name, default, choices):
    if not _present(body, name):
        return default
    value = body[name]
    # Compare types too: TRELLIS resolution 1024 (a number) is not the string "1024".
    if not any(type(value) is type(c) and value == c for c in choices):
        allowed = ", ".join(f'"{c}"' if isinstance(c, str) else str(c) for c in choices)
        raise ValidationFailed(name, f"{value!r} is not a valid choice (one of {allowed}).")
    return value


def _text(body, name, max_len, required=False):
    if not _present(body, name):
        if required:
            raise ValidationFailed(name, "This field is required.")
        return None
    value = body[name]
    if not isinstance(value, str):
        raise ValidationFailed(name, "Not a valid string.")
    # DRF CharField trims surrounding whitespace before the blank check.
    if not value.strip():
        raise ValidationFailed(name, "This field may not be blank.")
    if len(value) > max_len:
        raise ValidationFailed(name, f"Ensure this field has no more than {max_len} characters.")
    return value


def decode_image(name, value, *, tripo=False):
    """Decode a data-URI image and apply the contract's image rules. Returns raw bytes."""
    if not isinstance(value, str):
        raise ValidationFailed(name, "Expected a data URI string (data:image/...;base64,...).")
    match = re.fullmatch(r"data:([\w/+.-]+);base64,(.*)", value, flags=re.DOTALL)
    if not match:
        raise ValidationFailed(name, "Expected a data URI string (data:image/...;base64,...).")
    declared = match.group(1).lower()
    if declared not in DATA_URI_TYPES:
        raise ValidationFailed(name, f"Unsupported image type {declared}; use PNG, JPEG or WebP.")
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(name, "The data URI is not valid base64.") from None
    check_image_bytes(name, raw, expected_format=DATA_URI_TYPES[declared], tripo=tripo)
    return raw


def check_image_bytes(name, raw, expected_format=None, *, tripo=False):
    if len(raw) > IMAGE_MAX_BYTES:
        raise ValidationFailed(name, f"The image is larger than {IMAGE_MAX_BYTES} bytes.")
    try:
        # Image.open reads only the header, so the side check below runs before any
        # decoding: a pixel flood is refused without being decompressed.
        img = Image.open(io.BytesIO(raw))
        actual = img.format
        width, height = img.size
    except Exception:
        raise ValidationFailed(name, "The data is not a readable image.") from None
    if actual not in ("PNG", "JPEG", "WEBP"):
        raise ValidationFailed(name, f"Unsupported image format {actual}; use PNG, JPEG or WebP.")
    if expected_format and actual != expected_format:
        raise ValidationFailed(
            name, f"The declared type does not match the image data (found {actual})."
        )
    for side in (width, height):
        if side < IMAGE_MIN_SIDE or side > IMAGE_MAX_SIDE:
            raise ValidationFailed(
                name,
                f"Each side must be between {IMAGE_MIN_SIDE} and {IMAGE_MAX_SIDE} px "
                f"(got {width}x{height}).",
            )
    try:
        img.load()
    except Exception:
        raise ValidationFailed(name, "The image data is truncated or corrupt.") from None
    # Observed upstream: Tripo has refused a transparent PNG. We refuse any PNG whose alpha
    # channel is not fully opaque on Tripo endpoints (a quirk: see `tripo_transparent_png`).
    if tripo and actual == "PNG" and _has_transparency(img):
        raise ValidationFailed(name, "Transparent PNG images are not supported; send a JPEG.")
    return raw


def _has_transparency(img):
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def is_loopback_url(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name, value):
    if not isinstance(value, str):
        raise ValidationFailed(name, "Enter a valid URL.")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(name, "Enter a valid URL.")
    return value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch_loopback(url, limit):
    """Fetch a loopback URL (never anything else) without following redirects."""
    assert is_loopback_url(url)
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(url, timeout=5) as response:
        data = response.read(limit + 1)
    if len(data) > limit:
        raise ValueError("too large")
    return data


def placeholder_image(url):
    """A deterministic stand-in for an internet image the sandbox must not fetch."""
    digest = hashlib.sha256(url.encode()).digest()
    img = Image.new("RGB", (256, 256), tuple(digest[:3]))
    # A lighter disc in the middle gives the image-to-mesh builder a silhouette to follow.
    from PIL import ImageDraw

    ImageDraw.Draw(img).ellipse((48, 48, 208, 208), fill=tuple(64 + b // 2 for b in digest[3:6]))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def image_from_url(name, url, *, tripo=False):
    """Reading: the sandbox never leaves loopback. A loopback image_url is fetched at submit
    (a failed fetch is a 400 naming the field); any other http(s) URL is replaced by a
    deterministic placeholder image derived from the URL."""
    _check_url(name, url)
    if not is_loopback_url(url):
        return placeholder_image(url)
    try:
        raw = fetch_loopback(url, IMAGE_MAX_BYTES)
    except (OSError, ValueError, urllib.error.URLError):
        raise ValidationFailed(name, "The image could not be downloaded from this URL.") from None
    return check_image_bytes(name, raw, tripo=tripo)


def _exactly_one(body, names):
    given = [n for n in names if _present(body, n)]
    if len(given) != 1:
        listed = " or ".join(f"`{n}`" for n in names)
        where = names[0] if not given else given[1]
        raise ValidationFailed(where, f"Provide exactly one of {listed}.")
    return given[0]


def _mesh_options(*, textured, pbr, low_poly=False, face_target=None):
    return {"textured": textured, "pbr": pbr, "low_poly": low_poly, "face_target": face_target}


# --- Hunyuan -------------------------------------------------------------------------------


def validate_hunyuan_pro(body, quirks):
    model = _choice(body, "model", None, ("3.0", "3.1"))
    if model is None:
        raise ValidationFailed("model", "This field is required.")
    generate_type = _choice(
        body, "generate_type", "Normal", ("Normal", "LowPoly", "Geometry", "Sketch")
    )
    if model == "3.1" and generate_type in ("LowPoly", "Sketch"):
        raise ValidationFailed("generate_type", f"{generate_type} is not available on model 3.1.")
    enable_pbr = _bool(body, "enable_pbr", False)
    face_count = _int(body, "face_count", 500_000, 40_000, 1_500_000)
    polygon_type = _choice(body, "polygon_type", "triangle", ("triangle", "quadrilateral"))
    # Reading: "quadrilateral" needs LowPoly; "triangle" is the default and harmless anywhere.
    if polygon_type == "quadrilateral" and generate_type != "LowPoly":
        raise ValidationFailed("polygon_type", "quadrilateral is only allowed with LowPoly.")

    has_prompt = _present(body, "prompt")
    has_image = _present(body, "image")
    has_views = _present(body, "multi_view_images")
    job = Job(provider="hunyuan_pro", price=0, kind="prompt")
    if generate_type == "Sketch":
        # Reading: a Sketch needs the sketch `image`; a `prompt` may come with it.
        if has_views:
            raise ValidationFailed("multi_view_images", "Not allowed with generate_type Sketch.")
        if not has_image:
            raise ValidationFailed("image", "generate_type Sketch needs an image.")
        if has_prompt:
            job.prompt = _text(body, "prompt", PROMPT_MAX)
        job.kind = "image"
        job.images = [decode_image("image", body["image"])]
    else:
        given = _exactly_one(body, ["prompt", "image", "multi_view_images"])
        if given == "prompt":
            job.prompt = _text(body, "prompt", PROMPT_MAX, required=True)
        elif given == "image":
            job.kind = "image"
            job.images = [decode_image("image", body["image"])]
        else:
            job.kind = "images"
            job.images = _pro_views(body["multi_view_images"], model)

    price = PRICES["hunyuan_pro"]
    job.price = price["base"] + (price["pbr"] if enable_pbr else 0)
    job.price += price["multi_view"] if has_views else 0
    job.mesh = _mesh_options(
        textured=generate_type != "Geometry",
        pbr=enable_pbr,
        low_poly=generate_type == "LowPoly",
        face_target=face_count if "face_count" in body else None,
    )
    job.results = [ResultFile("model", "glb", "3D_MODEL"), ResultFile("model", "zip", "ARCHIVE")]
    job.options = {"model": model, "generate_type": generate_type}
    return job


def _pro_views(value, model):
    name = "multi_view_images"
    allowed = PRO_VIEWS_31 if model == "3.1" else PRO_VIEWS_30
    if not isinstance(value, list) or not value:
        raise ValidationFailed(name, "Expected a non-empty list of {view_type, view_image}.")
    by_view = {}
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise ValidationFailed(where, "Expected an object with view_type and view_image.")
        view = item.get("view_type")
        if view not in allowed:
            raise ValidationFailed(
                f"{where}.view_type",
                f"{view!r} is not a valid view for model {model} (one of {', '.join(allowed)}).",
            )
        if view in by_view:
            raise ValidationFailed(f"{where}.view_type", f"Duplicate view {view!r}: one per view.")
        if "view_image" not in item:
            raise ValidationFailed(f"{where}.view_image", "This field is required.")
        by_view[view] = decode_image(f"{where}.view_image", item["view_image"])
    if "front" not in by_view:
        raise ValidationFailed(name, "A front view is required.")
    # The mesh builder gets the front first, then the others in the documented order.
    return [by_view[v] for v in allowed if v in by_view]


def validate_hunyuan_rapid(body, quirks):
    given = _exactly_one(body, ["prompt", "image"])
    enable_pbr = _bool(body, "enable_pbr", False)
    enable_geometry = _bool(body, "enable_geometry", False)
    job = Job(provider="hunyuan_rapid", price=0, kind="prompt")
    if given == "prompt":
        job.prompt = _text(body, "prompt", PROMPT_MAX, required=True)
    else:
        job.kind = "image"
        job.images = [decode_image("image", body["image"])]
    price = PRICES["hunyuan_rapid"]
    job.price = price["base"] + (price["pbr"] if enable_pbr else 0)
    job.mesh = _mesh_options(textured=not enable_geometry, pbr=enable_pbr)
    job.results = [ResultFile("model", "zip", "ARCHIVE")]
    return job


# --- TRELLIS.2 -----------------------------------------------------------------------------


def validate_trellis2(body, quirks):
    given = _exactly_one(body, ["image", "image_url"])
    resolution = _choice(body, "resolution", "1024", ("512", "1024", "1536"))
    _int(body, "steps", 12, 1, 50)
    textures = _bool(body, "textures", False)
    texture_size = _choice(body, "texture_size", 2048, (1024, 2048, 4096))
    if "texture_size" in body and not textures:
        raise ValidationFailed("texture_size", "Only allowed with textures: true.")
    decimation = _int(body, "decimation_target", 1_000_000, 1_000, 16_000_000)
    _int(body, "seed", 0, 0)
    thumbnail = _bool(body, "generate_thumbnail", False)

    if given == "image":
        images = [decode_image("image", body["image"])]
    else:
        images = [image_from_url("image_url", body["image_url"])]
    geometry, tex_small, tex_4096 = PRICES["trellis2"][resolution]
    price = (tex_4096 if texture_size == 4096 else tex_small) if textures else geometry
    price += PRICES["trellis2"]["thumbnail"] if thumbnail else 0
    job = Job(provider="trellis2", price=price, kind="image", images=images)
    job.mesh = _mesh_options(
        textured=textures,
        pbr=textures,
        face_target=decimation if "decimation_target" in body else None,
    )
    job.results = [ResultFile("model", "glb", "3D_MODEL")]
    if thumbnail:
        job.results.append(ResultFile("thumbnail", "png", "IMAGE"))
    job.options = {"resolution": resolution, "textures": textures}
    return job


# --- Tripo ---------------------------------------------------------------------------------

TRIPO_FORBIDDEN_ON_P1 = ("geometry_quality", "quad", "smart_low_poly", "generate_parts")


def _tripo_inputs(body, mode, p1, quirks):
    """Read the input part of a Tripo body. Returns (kind, prompt, images)."""
    reject_transparent = quirks.get("tripo_transparent_png", 1.0) > 0
    if mode == "text":
        prompt = _text(body, "prompt", PROMPT_MAX, required=True)
        _text(body, "negative_prompt", 255 if p1 else 1024)
        if p1:
            _int(body, "image_seed", None, 0)
            _int(body, "model_seed", None, 0)
        return "prompt", prompt, []
    if mode == "image":
        given = _exactly_one(body, ["image", "image_url"])
        if given == "image":
            images = [decode_image("image", body["image"], tripo=reject_transparent)]
        else:
            images = [image_from_url("image_url", body["image_url"], tripo=reject_transparent)]
        if not p1:
            _choice(body, "texture_alignment", "original_image", ("original_image", "geometry"))
            _choice(body, "orientation", "default", ("default", "align_image"))
            _bool(body, "enable_image_autofix", False)
        return "image", "", images
    # multiview: 2-4 items, positional in the order front, left, back, right (front first).
    if not _present(body, "images"):
        raise ValidationFailed("images", "This field is required.")
    items = body["images"]
    if not isinstance(items, list) or not 2 <= len(items) <= 4:
        raise ValidationFailed("images", "Expected a list of 2 to 4 images (front first).")
    images = []
    for index, item in enumerate(items):
        where = f"images[{index}]"
        if not isinstance(item, dict):
            raise ValidationFailed(where, 'Expected {"image": ...} or {"image_url": ...}.')
        given = [k for k in ("image", "image_url") if item.get(k) is not None]
        if len(given) != 1:
            raise ValidationFailed(where, "Provide exactly one of `image` or `image_url`.")
        if given[0] == "image":
            images.append(decode_image(f"{where}.image", item["image"], tripo=reject_transparent))
        else:
            images.append(
                image_from_url(f"{where}.image_url", item["image_url"], tripo=reject_transparent)
            )
    return "images", "", images


def validate_tripo(body, quirks, *, mode, version):
    p1 = version == "p1"
    kind, prompt, images = _tripo_inputs(body, mode, p1, quirks)
    texture = _bool(body, "texture", True)
    pbr = _bool(body, "pbr", True)
    texture_quality = _choice(body, "texture_quality", "standard", ("standard", "detailed"))
    _int(body, "texture_seed", None)
    _bool(body, "export_uv", True)
    _bool(body, "auto_size", False)
    _choice(body, "compress", None, ("geometry",))
    prices = PRICES["tripo_p1" if p1 else "tripo"]
    price = prices[mode if mode != "images" else "multiview"]
    if texture:
        price += prices[f"texture_{texture_quality}"]

    if p1:
        # Reading: the brief makes P1 refuse these fields outright (any value), although a
        # plain DRF serializer would ignore them: a client that sends them has a bug.
        for name in TRIPO_FORBIDDEN_ON_P1:
            if name in body:
                raise ValidationFailed(name, "Not supported by Tripo P1.")
        face_limit = _int(body, "face_limit", None, 48, 20_000)
        quad = smart_low_poly = False
    else:
        geometry_quality = _choice(body, "geometry_quality", "standard", ("standard", "detailed"))
        face_limit = _int(body, "face_limit", None, 500, 500_000)
        quad = _bool(body, "quad", False)
        smart_low_poly = _bool(body, "smart_low_poly", False)
        parts = _bool(body, "generate_parts", False)
        if parts and quad:
            raise ValidationFailed("quad", "Not allowed together with generate_parts.")
        if parts and (texture or pbr):
            raise ValidationFailed(
                "generate_parts", "Needs texture: false and pbr: false (both default to true)."
            )
        price += prices["geometry_detailed"] if geometry_quality == "detailed" else 0
        price += prices["quad"] if quad else 0
        price += prices["smart_low_poly"] if smart_low_poly else 0
        price += prices["parts"] if parts else 0

    job = Job(
        provider="tripo_p1" if p1 else "tripo", price=price, kind=kind, prompt=prompt, images=images
    )
    job.mesh = _mesh_options(
        textured=texture, pbr=pbr and texture, low_poly=smart_low_poly, face_target=face_limit
    )
    job.results = [ResultFile("model", "glb", "3D_MODEL")]
    if quad:
        # The quad mesh comes as FBX beside the GLB (the contract allows "beside or instead").
        job.results.append(ResultFile("model", "fbx", "3D_MODEL"))
    job.options = {"version": version, "mode": mode}
    return job


# --- Convert -------------------------------------------------------------------------------


def validate_convert(body, quirks):
    if not _present(body, "model_url"):
        raise ValidationFailed("model_url", "This field is required.")
    model_url = _check_url("model_url", body["model_url"])
    output_format = _choice(body, "output_format", None, tuple(CONVERT_FORMATS))
    if output_format is None:
        raise ValidationFailed("output_format", "This field is required.")
    # Reading: the contract names max_size and unit without ranges; we check only the types.
    if _present(body, "max_size"):
        value = body["max_size"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValidationFailed("max_size", "A positive number is required.")
    if _present(body, "unit") and not isinstance(body["unit"], str):
        raise ValidationFailed("unit", "Not a valid string.")
    ext, asset_type = CONVERT_FORMATS[output_format]
    job = Job(provider="convert", price=PRICES["convert"]["base"], kind="convert")
    job.results = [ResultFile("converted", ext, asset_type)]
    job.options = {"model_url": model_url, "output_format": output_format}
    job.mesh = _mesh_options(textured=True, pbr=True)
    return job


# --- routes --------------------------------------------------------------------------------


def _tripo_route(mode, version):
    def validate(body, quirks):
        return validate_tripo(body, quirks, mode=mode, version=version)

    return validate


SUBMIT_ROUTES = {
    "/v1/3d-models/tencent/generate/pro/": validate_hunyuan_pro,
    "/v1/3d-models/tencent/generate/rapid/": validate_hunyuan_rapid,
    "/v1/3d-models/trellis2/generate/": validate_trellis2,
    "/v1/tools/convert/": validate_convert,
}
for _mode, _segment in (
    ("text", "text-to-3d"),
    ("image", "image-to-3d"),
    ("images", "multiview-to-3d"),
):
    # The version lives in the path; without one it is 3.0.
    SUBMIT_ROUTES[f"/v1/3d-models/tripo/{_segment}/"] = _tripo_route(_mode, "3.0")
    for _version in ("3.0", "3.1", "p1"):
        SUBMIT_ROUTES[f"/v1/3d-models/tripo/{_segment}/{_version}/"] = _tripo_route(_mode, _version)

WALLET_PATHS = ("/account/user/wallet/", "/user/wallet/")
STATUS_PATH = re.compile(r"/v1/generation-request/([^/]+)/status/")
