"""The sandbox's own reading of the API reference: routes, validation, prices, results.

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
from functools import partial

from PIL import Image

from sandbox.fields import (
    ValidationFailed,
    at_most_one,
    exactly_one,
    is_form,
    present,
    read_bool,
    read_choice,
    read_file,
    read_int,
    read_list,
    read_number,
    read_text,
)

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

# Prices as data, transcribed from the API reference ("Price" lines).
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


@dataclass
class ResultFile:
    """One result of a task. The server names it `<stem>_<n>.<ext>` with n unique per asset
    in the state file (upstream names are unique too: `trellis2_1024_1014963766.glb`)."""

    stem: str  # e.g. "trellis2_1024"
    ext: str  # the client decides formats by this extension
    asset_type: str  # 3D_MODEL, ARCHIVE, IMAGE, EDITED_IMAGE, SCALED_3D_MODEL, VIDEO, METADATA
    role: str = ""  # which builder makes it (sandbox.assets); "" = by extension
    name: str = ""  # the unique file name without extension, set when the task is created
    params: dict = field(default_factory=dict)  # for the builder (a render's angle, ...)


@dataclass
class Job:
    """What a validated submit asks for. Stored as JSON with the task."""

    provider: str  # key for durations and prices: hunyuan_pro, trellis2, tripo, ...
    price: int
    # Where the scene comes from: "prompt", "image", "images" (the mesh builders), "model"
    # (a given model), "picture" or "photo" (no scene: image endpoints).
    kind: str = "model"
    prompt: str = ""
    images: list = field(default_factory=list)  # raw image bytes (not stored in JSON)
    mesh: dict = field(default_factory=dict)  # keyword arguments for sandbox.meshes
    results: list = field(default_factory=list)  # ResultFile list
    options: dict = field(default_factory=dict)  # extra facts (e.g. convert source/format)
    files: dict = field(default_factory=dict)  # uploaded files by stored name (not in JSON)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = IMAGE_MAX_BYTES
    max_side: int = IMAGE_MAX_SIDE
    formats: tuple = ("PNG", "JPEG", "WEBP")


DEFAULT_IMAGE_LIMITS = ImageLimits()
# Tencent texture edit: Tencent's own limits (JPEG or PNG, 128-4096 px, under 10 MB).
TEXTURE_EDIT_IMAGE_LIMITS = ImageLimits(10 * 1024 * 1024 - 1, 4096, ("PNG", "JPEG"))


def decode_image(name, value, *, tripo=False, limits=DEFAULT_IMAGE_LIMITS):
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
    check_image_bytes(
        name, raw, expected_format=DATA_URI_TYPES[declared], tripo=tripo, limits=limits
    )
    return raw


def check_image_bytes(name, raw, expected_format=None, *, tripo=False, limits=DEFAULT_IMAGE_LIMITS):
    if len(raw) > limits.max_bytes:
        raise ValidationFailed(name, f"The image is larger than {limits.max_bytes} bytes.")
    try:
        # Image.open reads only the header, so the side check below runs before any
        # decoding: a pixel flood is refused without being decompressed.
        img = Image.open(io.BytesIO(raw))
        actual = img.format
        width, height = img.size
    except Exception:
        raise ValidationFailed(name, "The data is not a readable image.") from None
    if actual not in limits.formats:
        listed = ", ".join(limits.formats)
        raise ValidationFailed(name, f"Unsupported image format {actual}; use one of {listed}.")
    if expected_format and actual != expected_format:
        raise ValidationFailed(
            name, f"The declared type does not match the image data (found {actual})."
        )
    for side in (width, height):
        if side < IMAGE_MIN_SIDE or side > limits.max_side:
            raise ValidationFailed(
                name,
                f"Each side must be between {IMAGE_MIN_SIDE} and {limits.max_side} px "
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


def _mesh_options(*, textured, pbr, low_poly=False, face_target=None):
    return {"textured": textured, "pbr": pbr, "low_poly": low_poly, "face_target": face_target}


# --- Hunyuan -------------------------------------------------------------------------------


def validate_hunyuan_pro(body, quirks):
    model = read_choice(body, "model", None, ("3.0", "3.1"))
    if model is None:
        raise ValidationFailed("model", "This field is required.")
    generate_type = read_choice(
        body, "generate_type", "Normal", ("Normal", "LowPoly", "Geometry", "Sketch")
    )
    if model == "3.1" and generate_type in ("LowPoly", "Sketch"):
        raise ValidationFailed("generate_type", f"{generate_type} is not available on model 3.1.")
    enable_pbr = read_bool(body, "enable_pbr", False)
    face_count = read_int(body, "face_count", 500_000, 40_000, 1_500_000)
    polygon_type = read_choice(body, "polygon_type", "triangle", ("triangle", "quadrilateral"))
    # Reading: "quadrilateral" needs LowPoly; "triangle" is the default and harmless anywhere.
    if polygon_type == "quadrilateral" and generate_type != "LowPoly":
        raise ValidationFailed("polygon_type", "quadrilateral is only allowed with LowPoly.")

    has_prompt = present(body, "prompt")
    has_image = present(body, "image")
    has_views = present(body, "multi_view_images")
    job = Job(provider="hunyuan_pro", price=0, kind="prompt")
    if generate_type == "Sketch":
        # Reading: a Sketch needs the sketch `image`; a `prompt` may come with it.
        if has_views:
            raise ValidationFailed("multi_view_images", "Not allowed with generate_type Sketch.")
        if not has_image:
            raise ValidationFailed("image", "generate_type Sketch needs an image.")
        if has_prompt:
            job.prompt = read_text(body, "prompt", PROMPT_MAX)
        job.kind = "image"
        job.images = [decode_image("image", body["image"])]
    else:
        given = exactly_one(body, ["prompt", "image", "multi_view_images"])
        if given == "prompt":
            job.prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
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
        face_target=face_count if present(body, "face_count") else None,
    )
    # Observed order: the ZIP first, then the GLB.
    job.results = [
        ResultFile("hunyuan3d_pro", "zip", "ARCHIVE"),
        ResultFile("hunyuan3d_pro", "glb", "3D_MODEL"),
    ]
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
    given = exactly_one(body, ["prompt", "image"])
    enable_pbr = read_bool(body, "enable_pbr", False)
    enable_geometry = read_bool(body, "enable_geometry", False)
    job = Job(provider="hunyuan_rapid", price=0, kind="prompt")
    if given == "prompt":
        job.prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
    else:
        job.kind = "image"
        job.images = [decode_image("image", body["image"])]
    price = PRICES["hunyuan_rapid"]
    job.price = price["base"] + (price["pbr"] if enable_pbr else 0)
    job.mesh = _mesh_options(textured=not enable_geometry, pbr=enable_pbr)
    job.results = [ResultFile("hunyuan3d_rapid", "zip", "ARCHIVE")]
    return job


# --- TRELLIS.2 -----------------------------------------------------------------------------


def validate_trellis2(body, quirks):
    given = exactly_one(body, ["image", "image_url"])
    resolution = read_choice(body, "resolution", "1024", ("512", "1024", "1536"))
    read_int(body, "steps", 12, 1, 50)
    textures = read_bool(body, "textures", False)
    texture_size = read_choice(body, "texture_size", 2048, (1024, 2048, 4096))
    if present(body, "texture_size") and not textures:
        raise ValidationFailed("texture_size", "Only allowed with textures: true.")
    decimation = read_int(body, "decimation_target", 1_000_000, 1_000, 16_000_000)
    read_int(body, "seed", 0, 0)
    thumbnail = read_bool(body, "generate_thumbnail", False)

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
        face_target=decimation if present(body, "decimation_target") else None,
    )
    job.results = [ResultFile(f"trellis2_{resolution}", "glb", "3D_MODEL")]
    if thumbnail:
        job.results.append(ResultFile("trellis2_thumbnail", "png", "IMAGE", role="thumbnail"))
    job.options = {"resolution": resolution, "textures": textures}
    return job


# --- Tripo ---------------------------------------------------------------------------------


def _tripo_inputs(body, mode, p1, quirks):
    """Read the input part of a Tripo body. Returns (kind, prompt, images)."""
    reject_transparent = quirks.get("tripo_transparent_png", 1.0) > 0
    if mode == "text":
        prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
        read_text(body, "negative_prompt", 255 if p1 else 1024)
        if p1:
            read_int(body, "image_seed", None, 0)
            read_int(body, "model_seed", None, 0)
        return "prompt", prompt, []
    if mode == "image":
        given = exactly_one(body, ["image", "image_url"])
        if given == "image":
            images = [decode_image("image", body["image"], tripo=reject_transparent)]
        else:
            images = [image_from_url("image_url", body["image_url"], tripo=reject_transparent)]
        if not p1:
            read_choice(body, "texture_alignment", "original_image", ("original_image", "geometry"))
            read_choice(body, "orientation", "default", ("default", "align_image"))
            read_bool(body, "enable_image_autofix", False)
        return "image", "", images
    # multiview: 2-4 items, positional in the order front, left, back, right (front first).
    items = read_list(body, "images")
    if items is None:
        raise ValidationFailed("images", "This field is required.")
    if not 2 <= len(items) <= 4:
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
    texture = read_bool(body, "texture", True)
    pbr = read_bool(body, "pbr", True)
    texture_quality = read_choice(body, "texture_quality", "standard", ("standard", "detailed"))
    read_int(body, "texture_seed", None)
    read_bool(body, "export_uv", True)
    read_bool(body, "auto_size", False)
    read_choice(body, "compress", None, ("geometry",))
    prices = PRICES["tripo_p1" if p1 else "tripo"]
    price = prices[mode if mode != "images" else "multiview"]
    if texture:
        price += prices[f"texture_{texture_quality}"]

    if p1:
        # geometry_quality, quad, smart_low_poly and generate_parts are v3 fields: P1's
        # serializer does not know them, so (like every unknown field) they are ignored.
        face_limit = read_int(body, "face_limit", None, 48, 20_000)
        quad = smart_low_poly = False
    else:
        geometry_quality = read_choice(
            body, "geometry_quality", "standard", ("standard", "detailed")
        )
        face_limit = read_int(body, "face_limit", None, 500, 500_000)
        quad = read_bool(body, "quad", False)
        smart_low_poly = read_bool(body, "smart_low_poly", False)
        parts = read_bool(body, "generate_parts", False)
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
    stem = f"tripo_{version.replace('.', '')}_{mode}"
    job.results = [ResultFile(stem, "glb", "3D_MODEL")]
    if quad:
        # The quad mesh comes as FBX beside the GLB (the contract allows "beside or instead").
        job.results.append(ResultFile(stem, "fbx", "3D_MODEL"))
    job.options = {"version": version, "mode": mode}
    return job


# --- model and image inputs ------------------------------------------------------------------

UPLOAD_MAX_BYTES = 200 * 1024 * 1024  # Tencent's 200 MB; the sandbox applies it to every file
# Model inputs "may be GLB, glTF, OBJ, STL, PLY, FBX or a ZIP (its first supported file)";
# convert also reads USDZ.
MODEL_EXTS = ("glb", "gltf", "obj", "stl", "ply", "fbx", "zip")
CONVERT_INPUT_EXTS = MODEL_EXTS + ("usdz",)
MAGIC = {"glb": b"glTF", "zip": b"PK", "usdz": b"PK"}
UNITS = ("mm", "cm", "m", "in")


def model_input(job, body, url_name, file_name, exts=MODEL_EXTS, *, role="source"):
    """Exactly one of a model URL or an uploaded model file; records where the model is
    in job.options[role] ({"url": ...} or {"file": stored name}) and the upload in job.files."""
    given = exactly_one(body, [url_name, file_name])
    if given == url_name:
        job.options[role] = {"url": _check_url(url_name, body[url_name])}
    else:
        model_upload(job, body, file_name, exts, role=role)


def model_upload(job, body, file_name, exts, *, role="source"):
    upload = read_file(body, file_name, UPLOAD_MAX_BYTES)
    if upload is None:
        raise ValidationFailed(file_name, "No file was submitted.")
    if upload.ext not in exts:
        listed = ", ".join(e.upper() for e in exts)
        raise ValidationFailed(file_name, f"Unsupported file type; use one of {listed}.")
    magic = MAGIC.get(upload.ext)
    if magic and not upload.data.startswith(magic):
        raise ValidationFailed(file_name, f"The file is not a valid {upload.ext.upper()} file.")
    stored = f"{role}.{upload.ext}"
    job.files[stored] = upload.data
    job.options[role] = {"file": stored, "ext": upload.ext}


def _url_with_extension(body, name, exts, required=True):
    if not present(body, name):
        if required:
            raise ValidationFailed(name, "This field is required.")
        return None
    url = _check_url(name, body[name])
    path = urllib.parse.urlsplit(url).path.lower()
    if not any(path.endswith(f".{e}") for e in exts):
        listed = ", ".join(e.upper() for e in exts)
        raise ValidationFailed(name, f"The URL must name a {listed} file.")
    return url


def image_input(body, url_name, file_name):
    """Exactly one of an image URL or an uploaded image file: the image's bytes."""
    given = exactly_one(body, [url_name, file_name])
    if given == url_name:
        return image_from_url(url_name, body[url_name])
    upload = read_file(body, file_name, UPLOAD_MAX_BYTES)
    return check_image_bytes(file_name, upload.data)


def _read_upload_image(body, name):
    upload = read_file(body, name, UPLOAD_MAX_BYTES)
    return check_image_bytes(name, upload.data)


# --- Convert -------------------------------------------------------------------------------


def validate_convert(body, quirks):
    job = Job(provider="convert", price=PRICES["convert"]["base"], kind="model")
    model_input(job, body, "model_url", "model_file", CONVERT_INPUT_EXTS)
    # Reading: the default output_format is cut off in the docs; the sandbox's is glb.
    output_format = read_choice(body, "output_format", "glb", tuple(CONVERT_FORMATS))
    max_size = read_number(body, "max_size", None, positive=True)
    unit = read_choice(body, "unit", "cm", UNITS)
    ext, asset_type = CONVERT_FORMATS[output_format]
    job.results = [ResultFile("converted", ext, asset_type, role="convert")]
    job.options.update(output_format=output_format, max_size=max_size, unit=unit)
    return job


# --- Image generation ----------------------------------------------------------------------

ASPECTS = ("auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
IMAGE_MODELS = {
    # key: (path segment, aspect ratios, resolution -> (long side px, price per image))
    "gemini_3_pro": (
        "gemini/3/pro",
        ASPECTS,
        {"1K": (1024, 50), "2K": (2048, 50), "4K": (4096, 80)},
    ),
    # Reading: 3.1 Flash's tiers are cut off; 10/15/20/25 for 512px/1K/2K/4K.
    "gemini_31_flash": (
        "gemini/3.1/flash",
        ASPECTS + ("1:4", "4:1", "1:8", "8:1"),
        {"512px": (512, 10), "1K": (1024, 15), "2K": (2048, 20), "4K": (4096, 25)},
    ),
    # No tiers: `resolution`, if sent, is ignored.
    "gemini_25_flash": ("gemini/2.5/flash", ASPECTS, None),
}
GEMINI_25_PRICE = 5
SEEDREAM_PRICE = 10
SEEDREAM_SIZES = {
    "auto_2K": (2048, 2048),
    "auto_3K": (3072, 3072),
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
IMAGE_FORMATS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def validate_gemini(body, quirks, *, model, edit):
    _, aspects, tiers = IMAGE_MODELS[model]
    prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
    output_format = read_choice(body, "output_format", "png", tuple(IMAGE_FORMATS))
    aspect = read_choice(body, "aspect_ratio", "auto", aspects)
    if tiers is None:
        long_side, price = 1024, GEMINI_25_PRICE
    else:
        resolution = read_choice(body, "resolution", "1K", tuple(tiers))
        long_side, price = tiers[resolution]
    # `count` (sent by some clients) is not a field: ignored like any unknown one.
    count = read_int(body, "num_images", 1, 1, 4)
    job = Job(provider=model, price=price * count, kind="picture", prompt=prompt)
    if edit:
        items = read_list(body, "images")
        if items is None:
            raise ValidationFailed("images", "This field is required.")
        if not 1 <= len(items) <= 14:
            raise ValidationFailed("images", "Expected 1 to 14 images.")
        job.images = [decode_image(f"images[{i}]", item) for i, item in enumerate(items)]
    job.options = {"aspect_ratio": aspect, "long_side": long_side, "format": output_format}
    ext = IMAGE_FORMATS[output_format]
    role = "edit" if edit else "picture"
    job.results = [
        ResultFile(model, ext, "IMAGE", role=role, params={"index": i}) for i in range(count)
    ]
    return job


def validate_seedream(body, quirks, *, edit):
    prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
    image_size = read_choice(body, "image_size", "auto_2K", tuple(SEEDREAM_SIZES))
    count = read_int(body, "num_images", 1, 1, 6)
    seed = read_int(body, "seed", None, 0)
    read_bool(body, "enable_safety_checker", True)
    job = Job(provider="seedream", price=SEEDREAM_PRICE * count, kind="picture", prompt=prompt)
    if edit:
        # Reading: the doc's field name is cut off; `image_urls` is what a public client sends.
        items = read_list(body, "image_urls")
        if items is None:
            raise ValidationFailed("image_urls", "This field is required.")
        if not 1 <= len(items) <= 10:
            raise ValidationFailed("image_urls", "Expected 1 to 10 images.")
        for index, item in enumerate(items):
            where = f"image_urls[{index}]"
            if isinstance(item, str) and item.startswith("data:"):
                job.images.append(decode_image(where, item))
            else:
                job.images.append(image_from_url(where, item))
    width, height = SEEDREAM_SIZES[image_size]
    job.options = {"size": [width, height], "format": "png", "seed": seed}
    role = "edit" if edit else "picture"
    job.results = [
        ResultFile("seedream_v5_lite", "png", "IMAGE", role=role, params={"index": i})
        for i in range(count)
    ]
    return job


# --- Texturing -----------------------------------------------------------------------------

PRICES.update(
    {
        "tencent_texture_edit": {"base": 80},
        "tripo_texture": {"standard": 20, "detailed": 40, "style": 10},
        "tencent_topology": {"base": 100},
        # Reading: unknown upstream; twice Tripo's own, like every known Tripo price here.
        "tripo_convert_model": {"base": 10, "quad": 10},
        "tripo_segmentation": {"base": 80},
        "render": {"image": 5, "video": 20},
        "repair": {"base": 60, "hollow": 90},
        "optimize": {"base": 10},
        "bake_texture": {"base": 5},
        "calculate_volume": {"base": 20},
        "remove_bg": {"low": 3, "medium": 4, "high": 5},
        "image_enhance": {"base": 15, "remove_bg": 20},
        "miniature": {"default": 300, "fast": 200},
    }
)
TEXTURE_ALIGNMENTS = ("original_image", "geometry")


def validate_tencent_texture_edit(body, quirks):
    job = Job(provider="tencent_texture_edit", price=PRICES["tencent_texture_edit"]["base"])
    # Reading: the FBX must be named so by its URL (the sandbox cannot sniff a URL it does
    # not fetch); a non-.fbx file_url is refused.
    job.options["source"] = {"url": _url_with_extension(body, "file_url", ("fbx",))}
    given = exactly_one(body, ["prompt", "image"])
    enable_pbr = read_bool(body, "enable_pbr", False)
    if given == "prompt":
        job.prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
    else:
        if enable_pbr:
            raise ValidationFailed("enable_pbr", "Only allowed with a prompt.")
        job.images = [decode_image("image", body["image"], limits=TEXTURE_EDIT_IMAGE_LIMITS)]
    job.options["pbr"] = enable_pbr
    job.results = [ResultFile("hunyuan3d_texture", "glb", "3D_MODEL", role="retexture")]
    return job


def validate_tripo_texture(body, quirks):
    job = Job(provider="tripo_texture", price=0, kind="model")
    model_input(job, body, "model_url", "model")
    guide = at_most_one(body, ["prompt", "image_url", "image"])
    if guide == "prompt":
        job.prompt = read_text(body, "prompt", PROMPT_MAX, required=True)
    elif guide == "image_url":
        job.images = [image_from_url("image_url", body["image_url"])]
    elif guide == "image":
        job.images = [_read_upload_image(body, "image")]
    style = at_most_one(body, ["style_image_url", "style_image"])
    if style == "style_image_url":
        image_from_url("style_image_url", body["style_image_url"])
    elif style == "style_image":
        _read_upload_image(body, "style_image")
    quality = read_choice(body, "texture_quality", "standard", ("standard", "detailed"))
    texture = read_bool(body, "texture", True)
    if quality == "standard" and not texture:
        hint = " (an omitted form boolean reads as false: send texture=true)"
        raise ValidationFailed(
            "texture",
            "Must be true with texture_quality standard" + (hint if is_form(body) else "") + ".",
        )
    pbr = read_bool(body, "pbr", True)
    read_choice(body, "texture_alignment", "original_image", TEXTURE_ALIGNMENTS)
    read_int(body, "texture_seed", None)
    read_choice(body, "compress", None, ("geometry",))
    read_bool(body, "bake", True)
    prices = PRICES["tripo_texture"]
    job.price = prices[quality] + (prices["style"] if style else 0)
    job.options["pbr"] = pbr
    job.results = [ResultFile("tripo_texture", "glb", "3D_MODEL", role="retexture")]
    return job


# --- Remeshing -----------------------------------------------------------------------------

TOPOLOGY_FORMATS = {"OBJ": "obj", "FBX": "fbx", "STL": "stl", "USDZ": "usdz"}
TRIPO_CONVERT_FORMATS = {"GLTF": "glb", "USDZ": "usdz", "FBX": "fbx", "OBJ": "obj"}
TRIPO_CONVERT_FORMATS.update({"STL": "stl", "3MF": "3mf"})
TEXTURE_FORMATS = ("JPEG", "BMP", "DPX", "HDR", "OPEN_EXR", "PNG", "TARGA", "TIFF", "WEBP")


def validate_tencent_topology(body, quirks):
    job = Job(provider="tencent_topology", price=PRICES["tencent_topology"]["base"])
    if not present(body, "file_url"):
        raise ValidationFailed("file_url", "This field is required.")
    file_type = read_choice(body, "file_type", "GLB", ("GLB", "OBJ"))
    job.options["source"] = {"url": _check_url("file_url", body["file_url"]), "ext": "glb"}
    job.options["source"]["ext"] = file_type.lower()
    read_choice(body, "polygon_type", None, ("triangle", "quadrilateral"))
    face_level = read_choice(body, "face_level", None, ("high", "medium", "low"))
    output_format = read_choice(body, "output_format", "OBJ", tuple(TOPOLOGY_FORMATS))
    ext = TOPOLOGY_FORMATS[output_format]
    job.options.update(output_format=ext, face_level=face_level)
    job.results = [ResultFile("hunyuan3d_topology", ext, "3D_MODEL", role="remesh")]
    return job


def validate_tripo_convert_model(body, quirks):
    job = Job(provider="tripo_convert_model", price=0, kind="model")
    model_input(job, body, "model_url", "model")
    fmt = read_choice(body, "format", None, tuple(TRIPO_CONVERT_FORMATS))
    if fmt is None:
        raise ValidationFailed("format", "This field is required.")
    quad = read_bool(body, "quad", False)
    if quad and fmt == "3MF":
        raise ValidationFailed("quad", "Not available with format 3MF.")
    face_limit = read_int(body, "face_limit", None, 1)
    for name in ("force_symmetry", "flatten_bottom", "pivot_to_center_bottom", "pack_uv"):
        job.options[name] = read_bool(body, name, False)
    read_number(body, "flatten_bottom_threshold", 0.01, 0)
    scale = read_number(body, "scale_factor", 1.0, positive=True)
    read_int(body, "texture_size", None, 1, 4096)
    read_choice(body, "texture_format", "JPEG", TEXTURE_FORMATS)
    read_bool(body, "bake", True)
    read_bool(body, "with_animation", True)
    read_text(body, "fbx_preset", 255)
    prices = PRICES["tripo_convert_model"]
    job.price = prices["base"] + (prices["quad"] if quad else 0)
    ext = TRIPO_CONVERT_FORMATS[fmt]
    job.options.update(output_format=ext, scale=scale, face_level=None, face_limit=face_limit)
    job.results = [ResultFile("tripo_convert", ext, "3D_MODEL", role="remesh")]
    return job


def validate_tripo_segmentation(body, quirks):
    job = Job(provider="tripo_segmentation", price=PRICES["tripo_segmentation"]["base"])
    model_input(job, body, "model_url", "model")
    job.results = [ResultFile("tripo_segmentation", "glb", "3D_MODEL", role="segment")]
    return job


# --- Other tools ---------------------------------------------------------------------------

# angle -> the (yaw, pitch) of each still; turntables turn a full circle in equal steps.
RENDER_ANGLES = {
    "3/4": [(-35, 25)],
    "front": [(0, 5)],
    "back": [(180, 5)],
    "left": [(-90, 5)],
    "right": [(90, 5)],
    "top": [(0, 89)],
    "isometric": [(-45, 35)],
}
for _steps in (4, 8, 12):
    RENDER_ANGLES[f"turntable_{_steps}"] = [(i * 360 / _steps, 20) for i in range(_steps)]
RENDER_MAX_SIDE = 1024  # Reading: larger renders are drawn at this size (software renderer)


def validate_render(body, quirks):
    job = Job(provider="render", price=0, kind="model")
    job.options["source"] = {"url": _required_url(body, "model_url")}
    # Reading: the video value is cut off in the docs; "video".
    output_type = read_choice(body, "output_type", "image", ("image", "video"))
    angle = read_choice(body, "angle", "3/4", tuple(RENDER_ANGLES))
    resolution = read_int(body, "resolution", 1024, 64, 4096)
    read_choice(body, "lighting", "studio", ("studio",))
    background = read_text(body, "background", 64) or "transparent"
    shadow = read_bool(body, "ground_shadow", True)
    views = RENDER_ANGLES[angle]
    single = output_type == "image" and len(views) == 1
    job.price = PRICES["render"]["image" if single else "video"]
    size = min(resolution, RENDER_MAX_SIDE)
    job.options.update(size=size, background=background, shadow=shadow)
    if output_type == "image":
        job.results = [
            ResultFile("render", "png", "IMAGE", role="render", params={"yaw": y, "pitch": p})
            for y, p in views
        ]
    else:
        # One MP4 typed VIDEO per video (the contract's reading): a small real one made once
        # (sandbox/video.py), the same for every model.
        job.results = [ResultFile("render_turntable", "mp4", "VIDEO", role="video")]
    return job


def _required_url(body, name):
    if not present(body, name):
        raise ValidationFailed(name, "This field is required.")
    return _check_url(name, body[name])


def validate_repair(body, quirks):
    job = Job(provider="repair", price=0, kind="model")
    model_input(job, body, "model_url", "model_file")
    # Reading: the format list and default are cut off; convert's list, default glb.
    output_format = read_choice(body, "output_format", "glb", tuple(CONVERT_FORMATS))
    hollow = read_bool(body, "hollow", False)
    read_number(body, "wall_thickness", 2.0, positive=True)
    target_height = read_number(body, "target_height", None, positive=True)
    unit = read_choice(body, "unit", "cm", UNITS)
    read_choice(body, "quality", "default", ("low", "default", "max"))
    # Seen only in a public client; Reading: "quads" beside "tris".
    read_choice(body, "topology", None, ("tris", "quads"))
    read_int(body, "texture_resolution", None, 1, 8192)
    read_bool(body, "bake_textures", False)
    job.price = PRICES["repair"]["hollow" if hollow else "base"]
    ext, asset_type = CONVERT_FORMATS[output_format]
    job.options.update(output_format=output_format, target_height=target_height, unit=unit)
    job.results = [ResultFile("repaired", ext, asset_type, role="repair")]
    return job


def validate_optimize(body, quirks):
    job = Job(provider="optimize", price=PRICES["optimize"]["base"], kind="model")
    # Multipart only: a JSON body (with a model_url or model_base64) has no file, so the
    # required model_file is missing; unknown fields are ignored as everywhere.
    model_upload(job, body, "model_file", ("glb",))
    job.options["preset"] = read_choice(body, "preset", "default", ("low", "default"))
    read_int(body, "max_texture_size", None, 1, 8192)
    job.results = [ResultFile("optimized", "glb", "3D_MODEL", role="optimize")]
    return job


def validate_bake_texture(body, quirks):
    job = Job(provider="bake_texture", price=PRICES["bake_texture"]["base"], kind="model")
    original = _url_with_extension(body, "original_url", ("glb", "gltf"))
    retopo = _url_with_extension(body, "retopo_url", ("glb", "gltf", "obj", "fbx"))
    read_int(body, "texture_resolution", 2048, 1, 8192)
    read_choice(body, "output_format", "glb", ("glb",))
    job.options["source"] = {"url": retopo}
    job.options["material_source"] = {"url": original}
    job.results = [ResultFile("baked", "glb", "3D_MODEL", role="bake")]
    return job


def validate_calculate_volume(body, quirks):
    job = Job(provider="calculate_volume", price=PRICES["calculate_volume"]["base"])
    model_input(job, body, "model_url", "model_file")
    unit = read_choice(body, "unit", "cm", UNITS)
    given = exactly_one(body, ["target_height", "target_heights"])
    if given == "target_height":
        heights = [read_number(body, "target_height", None, positive=True)]
    else:
        text = read_text(body, "target_heights", 1024)
        pieces = [p.strip() for p in text.split(",")]
        if not 1 <= len(pieces) <= 10:
            raise ValidationFailed("target_heights", "Give 1 to 10 heights, comma separated.")
        heights = [
            read_number({"target_heights": p}, "target_heights", None, positive=True)
            for p in pieces
        ]
    job.options.update(unit=unit, heights=heights)
    job.results = [ResultFile("volume", "json", "METADATA", role="volume")]
    return job


QUALITIES = ("low", "medium", "high")


def validate_remove_bg(body, quirks):
    image = image_input(body, "image_url", "image_file")
    quality = read_choice(body, "quality", "medium", QUALITIES)
    mask = read_bool(body, "return_mask", False)
    job = Job(provider="remove_bg", price=PRICES["remove_bg"][quality], kind="photo")
    job.images = [image]
    params = {"quality": quality, "mask": mask}
    job.results = [ResultFile("removed_bg", "png", "IMAGE", role="cutout", params=params)]
    return job


def validate_image_enhance(body, quirks):
    image = image_input(body, "image_url", "image_file")
    mode = read_choice(body, "mode", "enhance", ("enhance", "restore"))
    read_bool(body, "enhance", True)
    remove_bg = read_bool(body, "remove_bg", False)
    quality = read_choice(body, "remove_bg_quality", "medium", QUALITIES)
    prices = PRICES["image_enhance"]
    job = Job(provider="image_enhance", price=prices["remove_bg" if remove_bg else "base"])
    job.kind = "photo"
    job.images = [image]
    job.results = [ResultFile("enhanced", "png", "IMAGE", role="enhance", params={"mode": mode})]
    if remove_bg:
        params = {"quality": quality, "mask": False, "enhanced": mode}
        job.results.append(ResultFile("enhanced_no_bg", "png", "IMAGE", "cutout", params=params))
    return job


# --- Miniature flow ------------------------------------------------------------------------

_SUBJECTS = ("human_full_body", "human_bust", "animal", "object")
MINIATURE_PRESETS = (
    [f"miniature_{s}" for s in _SUBJECTS]
    + [f"v2_miniature_{s}" for s in _SUBJECTS]
    + [f"v3_miniature_{s}" for s in _SUBJECTS]
    + [
        f"v3_miniature_human_full_body_{pose}"
        for pose in (
            "crossed_arms",
            "hands_on_hips",
            "thumbs_up",
            "hands_in_pockets",
            "arms_behind_back",
            "waving",
        )
    ]
    + ["v4_miniature_human_full_body", "v4_miniature_general"]
    + [f"realistic_{s}" for s in _SUBJECTS]
)
NAMED_SCALES = {"z": 220, "n": 160, "tt": 120, "h0": 87, "o": 48, "g": 22.5}
# Reading: the real-world height a subject is scaled from (metres), by preset words.
SUBJECT_HEIGHTS = {"bust": 0.7, "human": 1.75, "animal": 1.0, "object": 0.5}


def validate_miniature(body, quirks):
    if not present(body, "image"):
        raise ValidationFailed("image", "This field is required.")
    image = decode_image("image", body["image"])
    preset = read_choice(body, "preset", None, tuple(MINIATURE_PRESETS))
    if preset is None:
        raise ValidationFailed("preset", "This field is required.")
    edition = read_choice(body, "edition", "default", ("default", "fast"))
    read_choice(body, "2d_engine", "v3", ("v3", "v3.1", "v3.2"))
    read_choice(body, "3d_engine", "hunyuan", ("hunyuan", "prism"))
    scale = read_text(body, "scale", 32) or "none"
    face_count = read_int(body, "face_count", None, 3_000, 1_500_000)
    multiplier = read_number(body, "obj_scale_multiplier", 1000, positive=True)
    height_m = None
    if scale == "custom":
        cm = read_number(body, "scale_height_cm", None, hi=100, positive=True)
        if cm is None:
            raise ValidationFailed("scale_height_cm", "Required with scale custom.")
        height_m = cm / 100
    elif scale != "none":
        ratio = NAMED_SCALES.get(scale)
        match = re.fullmatch(r"1:(\d+(?:\.\d+)?)", scale)
        if ratio is None and match and float(match.group(1)) > 0:
            ratio = float(match.group(1))
        if ratio is None:
            raise ValidationFailed(
                "scale", f'"{scale}" is not a valid scale (none, a named scale, "1:<n>", custom).'
            )
        subject = next((w for w in SUBJECT_HEIGHTS if w in preset), "object")
        if "general" in preset:
            subject = "animal"  # 1 m: between a person and an object
        height_m = SUBJECT_HEIGHTS[subject] / ratio
    job = Job(provider="miniature", price=PRICES["miniature"][edition], kind="image")
    job.images = [image]
    job.mesh = _mesh_options(textured=True, pbr=True, face_target=face_count)
    job.options = {"height_m": height_m, "obj_multiplier": multiplier}
    job.results = [
        ResultFile("miniature_2d", "png", "EDITED_IMAGE", role="styled"),
        ResultFile("miniature", "glb", "3D_MODEL"),
    ]
    if height_m is not None:
        job.results += [
            ResultFile("miniature_scaled", "glb", "SCALED_3D_MODEL", role="scaled"),
            ResultFile("miniature_obj", "zip", "ARCHIVE", role="scaled_obj"),
        ]
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
    "/v1/images/seedream/v5/lite/generate/": partial(validate_seedream, edit=False),
    "/v1/images/seedream/v5/lite/edit/": partial(validate_seedream, edit=True),
    "/v1/3d-models/tencent/texture-edit/": validate_tencent_texture_edit,
    "/v1/3d-models/tripo/texture-model/": validate_tripo_texture,
    "/v1/3d-models/tencent/topology/": validate_tencent_topology,
    "/v1/3d-models/tripo/convert-model/": validate_tripo_convert_model,
    "/v1/3d-models/tripo/mesh-segmentation/": validate_tripo_segmentation,
    "/v1/tools/render/": validate_render,
    "/v1/tools/repair/": validate_repair,
    "/v1/tools/optimize/": validate_optimize,
    "/v1/tools/bake-texture/": validate_bake_texture,
    "/v1/tools/calculate-volume/": validate_calculate_volume,
    "/v1/tools/remove-bg/": validate_remove_bg,
    "/v1/tools/image-enhance/": validate_image_enhance,
    "/v1/flow/miniature/": validate_miniature,
}
for _model, (_segment, _, _) in IMAGE_MODELS.items():
    for _action in ("generate", "edit"):
        SUBMIT_ROUTES[f"/v1/images/{_segment}/{_action}/"] = partial(
            validate_gemini, model=_model, edit=_action == "edit"
        )
# The file field of each upload endpoint: named in the answer to an over-size body.
UPLOAD_FIELDS = {
    "/v1/tools/convert/": "model_file",
    "/v1/tools/repair/": "model_file",
    "/v1/tools/optimize/": "model_file",
    "/v1/tools/calculate-volume/": "model_file",
    "/v1/tools/remove-bg/": "image_file",
    "/v1/tools/image-enhance/": "image_file",
    "/v1/3d-models/tripo/texture-model/": "model",
    "/v1/3d-models/tripo/convert-model/": "model",
    "/v1/3d-models/tripo/mesh-segmentation/": "model",
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
