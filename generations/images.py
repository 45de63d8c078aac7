"""Turning a member's reference-image upload into bytes safe to send upstream.

Uploads are hostile until proven otherwise. The rules, in the order they run:

1. Size before anything else: an empty file, or one over
   ``REFERENCE_IMAGE_MAX_UPLOAD_BYTES``, is refused before it is read whole.
2. The real format comes from the first bytes, never from the name or the
   declared content type. Only PNG, JPEG and WebP pass, and Pillow is then
   allowed to parse the file only as that one format, so a file cannot start as
   one thing and be decoded as another.
3. Dimensions come from the header (``Image.open`` is lazy): a pixel flood or a
   decompression bomb is refused before one pixel is decoded, and so is an image
   too small, or too long and narrow, for the upstream's 128-5000 px window.
4. Only then are pixels decoded: EXIF orientation applied, any mode turned into
   RGB or RGBA, the image downscaled, and re-encoded from the pixels alone as
   JPEG (opaque, or flattened on white) or PNG (real transparency). Nothing of
   the original file survives: no metadata, no trailing bytes, no chunks.

Bytes after the end of the image (a ZIP or HTML appended to a PNG, the video
that "motion photos" append to a JPEG) are not refused: Pillow stops reading at
the image's end, and since only re-encoded pixels leave this module, whatever
followed is simply gone. Refusing would turn away ordinary phone photos.

Every refusal is an ``ImageRejected`` carrying one sentence for the member.
"""

import base64
import io
import logging
import math
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024

# What we are willing to decode. 40 megapixels covers every phone camera we know
# of; decoded as RGBA it is 160 MB, the most one upload may cost us. Pillow's own
# bomb guard (``Image.MAX_IMAGE_PIXELS``, ~89 MP) is process-wide and we leave it
# alone; ours is stricter and runs first for anything Pillow would let through.
MAX_PIXELS = 40_000_000
MAX_SIDE = 12_000

# The upstream's window (the API reference, Transport). The byte limit is "6 MB";
# we read it as decimal megabytes, the smaller reading.
UPSTREAM_MIN_SIDE = 128
UPSTREAM_MAX_SIDE = 5000
UPSTREAM_MAX_BYTES = 6_000_000

JPEG_QUALITIES = (90, 80, 70)
SHRINK_STEP = 0.75  # when even the lowest quality is too many bytes

ALLOWED = "PNG, JPEG or WebP"

# Pillow format names we accept for each sniffed format. A JPEG with several
# pictures in it (common from phone cameras) opens as MPO; it is still a JPEG.
_PILLOW_FORMATS = {"png": {"PNG"}, "jpeg": {"JPEG", "MPO"}, "webp": {"WEBP"}}
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ImageRejected(Exception):
    """An upload we will not send upstream. ``message`` is for the member."""

    def __init__(self, message, code="invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class CleanImage:
    data: bytes
    format: str
    width: int
    height: int
    mime: str

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def clean_upload(uploaded_file, *, flatten_transparency=False, max_side=2048) -> CleanImage:
    """Validate and re-encode one upload, or raise ``ImageRejected``.

    ``uploaded_file`` is a Django ``UploadedFile`` or any binary file object.
    The result is JPEG unless the image has real transparency and
    ``flatten_transparency`` is false, in which case it is PNG. Its longest side
    is at most ``max_side`` (unless that would take the shorter side below 128),
    each side is 128-5000 px, and it is at most 6 MB.
    """
    if not UPSTREAM_MIN_SIDE <= max_side <= UPSTREAM_MAX_SIDE:
        raise ValueError(
            f"max_side must be {UPSTREAM_MIN_SIDE}-{UPSTREAM_MAX_SIDE}, not {max_side}"
        )

    data = _read_capped(uploaded_file)
    kind = sniff(data)
    if kind not in _PILLOW_FORMATS:
        raise ImageRejected(_not_allowed_message(kind), "format")

    try:
        img = Image.open(io.BytesIO(data), formats=[kind.upper()])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard fires only far above our limit (a warning becomes
        # an exception only where warnings are errors, as in our tests).
        raise ImageRejected(_too_many_pixels_message(), "too_large") from None
    except UnidentifiedImageError:
        # The magic said PNG/JPEG/WebP but the header behind it is not one.
        raise ImageRejected(f"This file is not a {ALLOWED} image.", "format") from None
    except Exception as exc:  # see _damaged
        raise _damaged(exc) from None

    with img:
        if img.format not in _PILLOW_FORMATS[kind]:
            raise ImageRejected(f"This file is not a {ALLOWED} image.", "format")
        _check_header_size(*img.size)
        return _decode_and_encode(img, flatten_transparency, max_side)


def sniff(data: bytes) -> str | None:
    """The format named by the file's first bytes: ours, a known other, or None."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # Named only to give the member a better sentence; all of these are refused.
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    # "BM" alone is too common a start for text; check the DIB header size too.
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in (
        12,
        40,
        52,
        56,
        64,
        108,
        124,
    ):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"):
            return "HEIC"
        if brand in (b"mif1", b"msf1"):
            return "HEIF"
        return None
    if head.startswith(b"%PDF"):
        return "PDF"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text:
        return "SVG"
    return None


def _not_allowed_message(kind):
    if kind is None:
        return f"This file is not a {ALLOWED} image."
    return f"This file is a {kind} image; please upload a {ALLOWED} image."


def _read_capped(uploaded_file) -> bytes:
    cap = getattr(settings, "REFERENCE_IMAGE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)
    too_big = ImageRejected(
        f"The file is larger than {_megabytes(cap)}; please upload a smaller image.", "too_big"
    )
    # Django measured .size from the bytes it received; a plain file object is
    # measured by seeking. Either way nothing is read yet.
    size = getattr(uploaded_file, "size", None)
    if size is None:
        try:
            here = uploaded_file.tell()
            size = uploaded_file.seek(0, io.SEEK_END) - here
            uploaded_file.seek(here)
        except (AttributeError, OSError, ValueError):
            size = None
    if size == 0:
        raise ImageRejected("The file is empty.", "empty")
    if size is not None and size > cap:
        raise too_big

    # A form may already have read the file; start from the beginning. Read one
    # byte past the cap so a size we could not (or wrongly) measure still fails.
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(cap + 1)
    if not data:
        raise ImageRejected("The file is empty.", "empty")
    if len(data) > cap:
        raise too_big
    return data


def _megabytes(n):
    return f"{n / (1024 * 1024):g} MB"


def _too_many_pixels_message():
    return f"The image is too large to process (over {MAX_PIXELS // 1_000_000} megapixels)."


def _check_header_size(width, height):
    """Refuse, from the header alone, what we will not or cannot send upstream."""
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageRejected(
            f"The image is {width}×{height} pixels; each side must be at most {MAX_SIDE:,}.",
            "too_large",
        )
    if width * height > MAX_PIXELS:
        raise ImageRejected(_too_many_pixels_message(), "too_large")
    if min(width, height) < UPSTREAM_MIN_SIDE:
        raise ImageRejected(
            f"The image is {width}×{height} pixels; each side must be at least {UPSTREAM_MIN_SIDE}.",
            "too_small",
        )
    # Keeping the short side at 128 must not push the long side past 5000.
    if max(width, height) * UPSTREAM_MIN_SIDE > UPSTREAM_MAX_SIDE * min(width, height):
        ratio = UPSTREAM_MAX_SIDE // UPSTREAM_MIN_SIDE
        raise ImageRejected(
            f"The image is {width}×{height} pixels; the longer side may be at most "
            f"{ratio} times the shorter.",
            "aspect",
        )


def _target_size(width, height, max_side):
    """Longest side at most ``max_side``, but never a side below the minimum."""
    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, UPSTREAM_MIN_SIDE / min(width, height))
    if scale >= 1.0:
        return width, height
    return (
        max(UPSTREAM_MIN_SIDE, round(width * scale)),
        max(UPSTREAM_MIN_SIDE, round(height * scale)),
    )


def _damaged(exc):
    # Pillow's parsers answer hostile bytes with a zoo of exception types
    # (OSError, SyntaxError, ValueError, struct.error, zlib.error, EOFError,
    # IndexError, MemoryError...). Every one of them means the same thing to the
    # member, and none may become a 500.
    log.info("reference image refused as damaged: %r", exc)
    return ImageRejected("The image file is damaged or incomplete.", "damaged")


def _decode_and_encode(img, flatten_transparency, max_side):
    # Animated WebP/PNG (and MPO): we send the first frame, the one every viewer
    # shows as the still image. Refusing would turn away ordinary stickers and
    # phone photos for no gain, and we never seek past frame 0, so a file with
    # thousands of frames costs no more than one with a single frame.
    if img.format in ("JPEG", "MPO"):
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when we will shrink
        # anyway; it keeps both sides at least the requested size.
        img.draft(None, _target_size(*img.size, max_side))
    try:
        img.load()
        # EXIF orientation is applied to the pixels, because the tag that told
        # viewers to rotate is about to be dropped with the rest of the EXIF.
        img = ImageOps.exif_transpose(img)
        img = _to_rgb_or_rgba(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(_too_many_pixels_message(), "too_large") from None
    except ImageRejected:
        raise
    except Exception as exc:  # see _damaged
        raise _damaged(exc) from None

    size = _target_size(*img.size, max_side)
    if size != img.size:
        # Pillow resizes RGBA premultiplied, so transparent pixels do not bleed
        # their hidden colour into the edges.
        img = img.resize(size, Image.Resampling.LANCZOS)

    if img.mode == "RGBA":
        if img.getchannel("A").getextrema()[0] == 255:
            img = img.convert("RGB")  # an alpha channel with nothing transparent
        elif flatten_transparency:
            background = Image.new("RGB", img.size, (255, 255, 255))
            background.paste(img, mask=img.getchannel("A"))
            img = background

    # Strip everything but pixels: EXIF (GPS included), XMP, comments, PNG text
    # chunks, and the ICC profile. The profile is dropped rather than converted
    # to sRGB: converting means parsing an untrusted profile in one more C
    # library, and a small colour shift does not change the model generated.
    img.info = {}
    return _encode_within_limit(img)


def _to_rgb_or_rgba(img):
    """Any decoded mode to RGB, or RGBA when it may carry transparency.

    The upstream models expect colour, so grey images become RGB too.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: Pillow's plain convert clips at 255 instead of scaling,
        # which would turn most of the image white.
        transparent = "transparency" in img.info
        img = img.convert("I").point(lambda v: v / 256).convert("L")
        if transparent:
            # tRNS on 16-bit grey names one exact 16-bit value; lost in scaling,
            # and the rarest of cases. Treated as opaque.
            log.info("dropping 16-bit grey tRNS transparency")
        return img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return img.convert("RGBA")
    if img.mode in ("P", "L", "1", "RGB") and "transparency" in img.info:
        return img.convert("RGBA")  # palette or tRNS transparency
    if img.mode == "RGB":
        return img
    # CMYK (Pillow already undoes Adobe's inverted CMYK), YCbCr, L, P, 1, F...
    return img.convert("RGB")


def _encode_within_limit(img):
    fmt = "png" if img.mode == "RGBA" else "jpeg"
    while True:
        if fmt == "jpeg":
            for quality in JPEG_QUALITIES:
                data = _save(img, "JPEG", quality=quality, optimize=True)
                if len(data) <= UPSTREAM_MAX_BYTES:
                    break
        else:
            data = _save(img, "PNG")
        if len(data) <= UPSTREAM_MAX_BYTES:
            return CleanImage(data, fmt, img.width, img.height, _MIME[fmt])
        # Still too many bytes (noise-like content): fewer pixels, same rules.
        smaller = (math.floor(img.width * SHRINK_STEP), math.floor(img.height * SHRINK_STEP))
        if min(smaller) < UPSTREAM_MIN_SIDE:
            # Unreachable in practice: 6 MB holds 1.5 MP of raw RGBA, more than
            # any image that reaches this size. Refuse rather than loop.
            raise ImageRejected("The image could not be made small enough to send.", "too_big")
        img = img.resize(smaller, Image.Resampling.LANCZOS)


def _save(img, pillow_format, **options):
    buffer = io.BytesIO()
    img.save(buffer, pillow_format, **options)
    return buffer.getvalue()
