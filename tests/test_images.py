"""Reference-image uploads: what is refused, and what is sent upstream.

Every fixture image is built here at run time; nothing binary is committed.
"""

import base64
import io
import random
import struct
import warnings
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import (
    InMemoryUploadedFile,
    SimpleUploadedFile,
    TemporaryUploadedFile,
)
from PIL import ExifTags, Image, ImageFile, PngImagePlugin, WebPImagePlugin

from generations import images
from generations.images import CleanImage, ImageRejected, clean_upload

NOT_ALLOWED = "This file is not a PNG, JPEG or WebP image."
DAMAGED = "The image file is damaged or incomplete."
TOO_MANY_PIXELS = "The image is too large to process (over 40 megapixels)."

RED = (255, 0, 0)
BLUE = (0, 0, 255)


# --- builders ---------------------------------------------------------------


def encode(img, fmt, **options):
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def halves(size, left, right, mode="RGB"):
    """An image whose left half is one colour and right half another."""
    img = Image.new(mode, size, right)
    img.paste(left, (0, 0, size[0] // 2, size[1]))
    return img


def upload(data, name="reference.png", content_type="image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def handmade_png(width, height, *, bit_depth=8, colour_type=0, rows=None):
    """A PNG built byte by byte, so its header may claim anything.

    Without ``rows`` the IDAT holds a few compressed bytes, far fewer than the
    header promises: any attempt to decode it would fail as truncated.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"".join(rows) if rows is not None else b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def decode(clean):
    img = Image.open(io.BytesIO(clean.data))
    img.load()
    return img


def rejection(data, name="reference.png", **kwargs):
    with pytest.raises(ImageRejected) as caught:
        clean_upload(upload(data, name), **kwargs)
    return caught.value


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decode fails the test: refusals must come from the header."""

    def forbidden(self):
        raise AssertionError("pixels were decoded")

    # WebP has its own load(); the other plugins use ImageFile's.
    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", forbidden)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_the_no_decoding_guard_really_stops_a_decode(no_decoding, fmt):
    # Guards the guard: a normal image under it is no longer accepted.
    with pytest.raises(ImageRejected) as caught:
        clean_upload(upload(encode(Image.new("RGB", (200, 200)), fmt)))
    assert caught.value.code == "damaged"


# --- size of the upload -----------------------------------------------------


def test_it_refuses_an_empty_file():
    error = rejection(b"")
    assert (error.code, error.message) == ("empty", "The file is empty.")


def test_it_refuses_a_file_over_the_upload_cap(settings):
    settings.REFERENCE_IMAGE_MAX_UPLOAD_BYTES = 1024 * 1024
    data = encode(Image.new("RGB", (200, 200)), "PNG") + b"\x00" * (1024 * 1024)
    error = rejection(data)
    assert error.code == "too_big"
    assert error.message == "The file is larger than 1 MB; please upload a smaller image."


def test_the_cap_defaults_to_twenty_megabytes(settings):
    del settings.REFERENCE_IMAGE_MAX_UPLOAD_BYTES
    error = rejection(b"\x89PNG\r\n\x1a\n" + b"\x00" * (20 * 1024 * 1024))
    assert error.message == "The file is larger than 20 MB; please upload a smaller image."


def test_an_oversize_upload_is_refused_from_its_size_without_being_read():
    class HugeUpload:
        size = 10 * 1024**3

        def read(self, *args):
            raise AssertionError("the file was read")

    with pytest.raises(ImageRejected) as caught:
        clean_upload(HugeUpload())
    assert caught.value.code == "too_big"


def test_an_upload_of_unknown_size_is_read_only_up_to_the_cap(settings):
    settings.REFERENCE_IMAGE_MAX_UPLOAD_BYTES = 1000
    requested = []

    class Stream:  # no size, no seek: a pipe
        def read(self, n=-1):
            requested.append(n)
            return b"\xff\xd8\xff" + b"\x00" * 5000

    with pytest.raises(ImageRejected) as caught:
        clean_upload(Stream())
    assert caught.value.code == "too_big"
    assert requested == [1001]


# --- format, by content only ------------------------------------------------

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: SVG,
            "This file is a SVG image; please upload a PNG, JPEG or WebP image.",
            id="svg",
        ),
        pytest.param(
            lambda: encode(Image.new("P", (200, 200)), "GIF"),
            "This file is a GIF image; please upload a PNG, JPEG or WebP image.",
            id="gif",
        ),
        pytest.param(
            lambda: encode(Image.new("RGB", (200, 200)), "BMP"),
            "This file is a BMP image; please upload a PNG, JPEG or WebP image.",
            id="bmp",
        ),
        pytest.param(
            lambda: encode(Image.new("RGB", (200, 200)), "TIFF"),
            "This file is a TIFF image; please upload a PNG, JPEG or WebP image.",
            id="tiff",
        ),
        pytest.param(
            lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100,
            "This file is a HEIC image; please upload a PNG, JPEG or WebP image.",
            id="heic",
        ),
        pytest.param(
            lambda: b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n",
            "This file is a PDF image; please upload a PNG, JPEG or WebP image.",
            id="pdf",
        ),
        pytest.param(lambda: HTML, NOT_ALLOWED, id="html"),
        pytest.param(zip_bytes, NOT_ALLOWED, id="zip"),
        pytest.param(
            lambda: b"BMW is a car, not a bitmap." * 10, NOT_ALLOWED, id="text-starting-BM"
        ),
        pytest.param(
            # A GIF/JPEG hybrid: a GIF header with a JPEG behind it is a GIF.
            lambda: (
                encode(Image.new("P", (200, 200)), "GIF")[:13]
                + encode(Image.new("RGB", (200, 200)), "JPEG")
            ),
            "This file is a GIF image; please upload a PNG, JPEG or WebP image.",
            id="gif-jpeg-hybrid",
        ),
        pytest.param(
            # PNG magic, but a GIF behind it: Pillow may only parse it as PNG.
            lambda: b"\x89PNG\r\n\x1a\n" + encode(Image.new("P", (200, 200)), "GIF"),
            NOT_ALLOWED,
            id="png-magic-gif-body",
        ),
    ],
)
def test_it_refuses_everything_but_png_jpeg_and_webp(make, message):
    error = rejection(make(), name="innocent.png")
    assert error.code == "format"
    assert error.message == message


def test_a_png_that_pillow_would_otherwise_decode_as_photo_cd_is_refused():
    # PNG magic up front, a Kodak Photo CD header at offset 2048: left to
    # guess, Pillow opens this as a 768 x 512 PCD image and decodes it.
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2040 + b"PCD_IPI" + b"\x00" * (96 * 2048 + 786_432)
    assert Image.open(io.BytesIO(data)).format == "PCD"
    error = rejection(data)
    assert (error.code, error.message) == ("format", NOT_ALLOWED)


def test_a_jpeg_magic_with_anything_else_behind_it_is_refused():
    # Pillow is told "JPEG only", so a GIF body cannot be decoded as a GIF.
    data = b"\xff\xd8\xff" + encode(Image.new("P", (200, 200)), "GIF")
    error = rejection(data, name="photo.jpg")
    assert (error.code, error.message) == ("format", NOT_ALLOWED)


def test_a_png_named_jpg_is_treated_as_png():
    img = Image.new("RGBA", (200, 200), (10, 20, 30, 0))
    data = encode(img, "PNG")
    clean = clean_upload(SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg"))
    assert (clean.format, clean.mime) == ("png", "image/png")
    assert decode(clean).format == "PNG"


def test_a_jpeg_named_png_is_treated_as_jpeg():
    data = encode(Image.new("RGB", (200, 200), RED), "JPEG")
    clean = clean_upload(upload(data, name="picture.png", content_type="image/png"))
    assert (clean.format, clean.mime) == ("jpeg", "image/jpeg")
    assert not hasattr(clean, "name")


def test_webp_is_accepted_and_sent_as_jpeg():
    data = encode(Image.new("RGB", (300, 200), BLUE), "WEBP", lossless=True)
    clean = clean_upload(upload(data, name="x.webp"))
    assert (clean.format, clean.width, clean.height) == ("jpeg", 300, 200)
    r, g, b = decode(clean).getpixel((150, 100))
    assert r < 10 and g < 10 and b > 245


# --- trailing data and polyglots are neutralised by re-encoding -------------


@pytest.mark.parametrize(
    "trailer", [zip_bytes(), HTML], ids=["png-with-zip-appended", "png-with-html-appended"]
)
def test_bytes_after_the_image_do_not_survive_re_encoding(trailer):
    data = encode(Image.new("RGB", (200, 200), RED), "PNG") + trailer
    clean = clean_upload(upload(data))
    assert clean.format == "jpeg"
    assert b"PK\x03\x04" not in clean.data
    assert b"<script" not in clean.data
    assert clean.data.endswith(b"\xff\xd9")
    assert decode(clean).getpixel((100, 100))[0] > 245


def test_text_chunks_carrying_markup_are_dropped():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    info.add_text("Secret", "x" * 500, zip=True)
    data = encode(Image.new("RGBA", (200, 200), (0, 0, 0, 0)), "PNG", pnginfo=info)
    clean = clean_upload(upload(data))
    assert clean.format == "png"
    assert b"<script" not in clean.data
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"):
        assert chunk not in clean.data
    assert decode(clean).info.get("Comment") is None


# --- dimensions, from the header --------------------------------------------


def test_a_pixel_flood_header_is_refused_without_decoding(no_decoding):
    # 100000 x 100000 claimed by a file of about a hundred bytes.
    data = handmade_png(100_000, 100_000)
    assert len(data) < 200
    error = rejection(data)
    assert (error.code, error.message) == ("too_large", TOO_MANY_PIXELS)


def test_a_side_over_twelve_thousand_is_refused_without_decoding(no_decoding):
    error = rejection(handmade_png(20_000, 200))
    assert error.code == "too_large"
    assert error.message == "The image is 20000×200 pixels; each side must be at most 12,000."


@pytest.mark.parametrize("side", [6500, 10_000], ids=["below-pillow-limit", "pillow-warning-range"])
def test_over_forty_megapixels_is_refused_without_decoding(no_decoding, side):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        error = rejection(handmade_png(side, side))
    assert (error.code, error.message) == ("too_large", TOO_MANY_PIXELS)


def test_pillows_bomb_warning_as_an_error_is_still_a_rejection(no_decoding):
    # 100 MP is in Pillow's warning band; where warnings are errors it raises.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        error = rejection(handmade_png(10_000, 10_000))
    assert (error.code, error.message) == ("too_large", TOO_MANY_PIXELS)


def test_a_real_decompression_bomb_is_refused_without_decoding(no_decoding):
    # A valid 7000 x 7000 PNG (49 MP) of zeros: tens of kilobytes on disk.
    compressor = zlib.compressobj(9)
    row = b"\x00" * 7001
    idat = b"".join(compressor.compress(row) for _ in range(7000)) + compressor.flush()
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 7000, 7000, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )
    assert len(data) < 200_000
    error = rejection(data)
    assert (error.code, error.message) == ("too_large", TOO_MANY_PIXELS)


def test_a_jpeg_claiming_huge_dimensions_is_refused_without_decoding(no_decoding):
    data = bytearray(encode(Image.new("RGB", (200, 200)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 9000, 9000)
    error = rejection(bytes(data), name="x.jpg")
    assert (error.code, error.message) == ("too_large", TOO_MANY_PIXELS)


def test_a_webp_claiming_huge_dimensions_is_refused_without_decoding(no_decoding):
    data = bytearray(encode(Image.new("RGB", (200, 200)), "WEBP"))
    frame = data.find(b"\x9d\x01\x2a")
    data[frame + 3 : frame + 7] = struct.pack("<HH", 16000, 16000)
    error = rejection(bytes(data), name="x.webp")
    assert (error.code, error.message) == ("too_large", TOO_MANY_PIXELS)


def test_it_refuses_a_tiny_image():
    error = rejection(encode(Image.new("RGB", (90, 90)), "PNG"))
    assert error.code == "too_small"
    assert error.message == "The image is 90×90 pixels; each side must be at least 128."


def test_it_refuses_one_side_under_the_minimum():
    error = rejection(encode(Image.new("RGB", (3000, 127)), "JPEG"))
    assert error.message == "The image is 3000×127 pixels; each side must be at least 128."


def test_it_refuses_an_image_too_narrow_to_fit_the_upstream_window():
    # At 128 px high, 6000 px wide would still be over the upstream's 5000.
    error = rejection(encode(Image.new("L", (6000, 130)), "PNG"))
    assert error.code == "aspect"
    assert error.message == (
        "The image is 6000×130 pixels; the longer side may be at most 39 times the shorter."
    )


# --- damaged files ----------------------------------------------------------


def noise(size, mode="RGB"):
    channels = len(mode)
    return Image.frombytes(
        mode, size, bytes(range(256)) * (size[0] * size[1] * channels // 256 + 1)
    )


def test_it_refuses_a_truncated_jpeg():
    data = encode(noise((400, 400)), "JPEG", quality=95)
    error = rejection(data[: len(data) // 2], name="x.jpg")
    assert (error.code, error.message) == ("damaged", DAMAGED)


def test_it_refuses_a_truncated_png():
    data = encode(noise((400, 400)), "PNG")
    error = rejection(data[: len(data) // 2])
    assert (error.code, error.message) == ("damaged", DAMAGED)


def test_it_refuses_a_png_whose_data_is_shorter_than_its_header_says():
    error = rejection(handmade_png(300, 300))
    assert (error.code, error.message) == ("damaged", DAMAGED)


def test_truncated_images_stay_refused_globally():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_it_refuses_a_png_signature_followed_by_garbage():
    error = rejection(b"\x89PNG\r\n\x1a\n" + b"\xde\xad\xbe\xef" * 100)
    assert error.message in {NOT_ALLOWED, DAMAGED}


# --- orientation, metadata --------------------------------------------------


def test_exif_orientation_is_applied_to_the_pixels():
    # Stored 300 x 200, red left, blue right; orientation 6 means "rotate 90°
    # clockwise to display", so the member sees 200 x 300 with red on top.
    img = halves((300, 200), RED, BLUE)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    clean = clean_upload(upload(encode(img, "JPEG", exif=exif, quality=95), name="x.jpg"))
    assert (clean.width, clean.height) == (200, 300)
    out = decode(clean)
    assert out.size == (200, 300)
    assert out.getpixel((100, 40))[0] > 200 and out.getpixel((100, 40))[2] < 50
    assert out.getpixel((100, 260))[2] > 200 and out.getpixel((100, 260))[0] < 50
    assert out.getexif().get(ExifTags.Base.Orientation) is None


def test_a_large_rotated_photo_is_downscaled_after_rotation():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = encode(Image.new("RGB", (4000, 3000), RED), "JPEG", exif=exif)
    clean = clean_upload(upload(data, name="x.jpg"))
    assert (clean.width, clean.height) == (1536, 2048)


def test_a_multi_picture_jpeg_from_a_phone_sends_its_first_picture():
    pictures = [Image.new("RGB", (300, 200), RED), Image.new("RGB", (300, 200), BLUE)]
    data = encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    clean = clean_upload(upload(data, name="x.jpg"))
    assert (clean.format, clean.width, clean.height) == ("jpeg", 300, 200)
    r, g, b = decode(clean).getpixel((150, 100))
    assert r > 245 and b < 10


def test_exif_gps_xmp_icc_and_comments_are_stripped():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">HomeAddress</x:xmpmeta>'
    original = encode(
        Image.new("RGB", (400, 300), (90, 120, 150)),
        "JPEG",
        exif=exif,
        xmp=xmp,
        icc_profile=b"fake-icc-profile-bytes",
        comment=b"taken at home",
    )
    # The fixture really carries what we expect to see removed.
    for marker in (b"Exif", b"SpyCam", b"HomeAddress", b"fake-icc", b"taken at home"):
        assert marker in original
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    clean = clean_upload(upload(original, name="x.jpg"))

    for marker in (
        b"Exif",
        b"SpyCam",
        b"HomeAddress",
        b"fake-icc",
        b"ICC_PROFILE",
        b"taken at home",
    ):
        assert marker not in clean.data
    out = decode(clean)
    assert len(out.getexif()) == 0
    assert not out.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert {"exif", "xmp", "icc_profile", "comment"}.isdisjoint(out.info)


def test_png_exif_is_stripped():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    original = encode(Image.new("RGBA", (200, 200), (0, 0, 0, 128)), "PNG", exif=exif)
    assert b"eXIf" in original
    clean = clean_upload(upload(original))
    assert clean.format == "png"
    assert b"eXIf" not in clean.data and b"SpyCam" not in clean.data


# --- transparency -----------------------------------------------------------


def transparent_left_half():
    # The hidden colour of the transparent half is red: it must not show.
    return halves((400, 200), (255, 0, 0, 0), (0, 0, 255, 255), mode="RGBA")


def test_transparency_is_kept_as_png_by_default():
    clean = clean_upload(upload(encode(transparent_left_half(), "PNG")))
    assert (clean.format, clean.mime) == ("png", "image/png")
    out = decode(clean)
    assert out.mode == "RGBA"
    assert out.getpixel((50, 100))[3] == 0
    assert out.getpixel((350, 100)) == (0, 0, 255, 255)


def test_transparency_is_flattened_on_white_when_asked():
    clean = clean_upload(upload(encode(transparent_left_half(), "PNG")), flatten_transparency=True)
    assert (clean.format, clean.mime) == ("jpeg", "image/jpeg")
    out = decode(clean)
    assert out.mode == "RGB"
    assert all(channel > 245 for channel in out.getpixel((50, 100)))
    r, g, b = out.getpixel((350, 100))
    assert r < 10 and g < 10 and b > 245


def test_an_alpha_channel_with_nothing_transparent_is_sent_as_jpeg():
    data = encode(Image.new("RGBA", (200, 200), (10, 200, 10, 255)), "PNG")
    clean = clean_upload(upload(data))
    assert clean.format == "jpeg"
    assert decode(clean).mode == "RGB"


def test_a_palette_png_with_a_transparent_index_keeps_its_transparency():
    img = Image.new("P", (200, 200), 0)
    img.putpalette([255, 0, 0, 0, 255, 0])
    img.paste(1, (100, 0, 200, 200))
    data = encode(img, "PNG", transparency=0)
    assert b"tRNS" in data
    clean = clean_upload(upload(data))
    assert clean.format == "png"
    out = decode(clean)
    assert out.getpixel((50, 100))[3] == 0
    assert out.getpixel((150, 100)) == (0, 255, 0, 255)


def test_a_palette_png_with_a_transparent_index_flattens_on_white():
    img = Image.new("P", (200, 200), 0)
    img.putpalette([255, 0, 0, 0, 255, 0])
    img.paste(1, (100, 0, 200, 200))
    clean = clean_upload(upload(encode(img, "PNG", transparency=0)), flatten_transparency=True)
    assert clean.format == "jpeg"
    out = decode(clean)
    assert all(channel > 245 for channel in out.getpixel((50, 100)))
    r, g, b = out.getpixel((150, 100))
    assert r < 10 and g > 245 and b < 10


# --- unusual modes ----------------------------------------------------------


def test_a_cmyk_jpeg_becomes_rgb():
    data = encode(Image.new("CMYK", (200, 200), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    clean = clean_upload(upload(data, name="print.jpg"))
    out = decode(clean)
    assert (clean.format, out.mode) == ("jpeg", "RGB")
    r, g, b = out.getpixel((100, 100))
    assert r > 240 and g < 15 and b < 15


def test_a_sixteen_bit_grey_png_is_scaled_not_clipped():
    img = Image.new("I;16", (200, 200), 0x8000)
    data = encode(img, "PNG")
    assert data[24] == 16  # IHDR bit depth: the fixture really is 16-bit
    clean = clean_upload(upload(data))
    out = decode(clean)
    assert (clean.format, out.mode) == ("jpeg", "RGB")
    assert all(126 <= channel <= 130 for channel in out.getpixel((100, 100)))


def test_a_sixteen_bit_rgb_png_is_scaled_to_eight_bits():
    pixel = struct.pack(">HHH", 0x8000, 0x4000, 0xFFFF)
    rows = [b"\x00" + pixel * 200] * 200
    data = handmade_png(200, 200, bit_depth=16, colour_type=2, rows=rows)
    out = decode(clean_upload(upload(data)))
    r, g, b = out.getpixel((100, 100))
    assert 125 <= r <= 131 and 61 <= g <= 67 and b >= 250


def test_a_greyscale_image_is_sent_as_colour():
    clean = clean_upload(upload(encode(Image.new("L", (200, 200), 77), "PNG")))
    out = decode(clean)
    assert out.mode == "RGB"
    assert all(75 <= channel <= 79 for channel in out.getpixel((100, 100)))


def test_an_animated_webp_sends_its_first_frame():
    frames = [Image.new("RGB", (200, 200), RED), Image.new("RGB", (200, 200), BLUE)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = decode(clean_upload(upload(data, name="sticker.webp")))
    assert getattr(out, "n_frames", 1) == 1
    r, g, b = out.getpixel((100, 100))
    assert r > 245 and b < 10


def test_an_animated_png_sends_its_first_frame():
    frames = [Image.new("RGB", (200, 200), BLUE), Image.new("RGB", (200, 200), RED)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert b"acTL" in data
    clean = clean_upload(upload(data))
    assert b"acTL" not in clean.data
    r, g, b = decode(clean).getpixel((100, 100))
    assert b > 245 and r < 10


# --- size of the result -----------------------------------------------------


def test_a_large_photo_is_downscaled_to_2048_on_its_longest_side():
    data = encode(halves((4000, 3000), RED, BLUE), "JPEG")
    clean = clean_upload(upload(data, name="x.jpg"))
    assert (clean.width, clean.height) == (2048, 1536)
    assert decode(clean).size == (2048, 1536)


def test_a_large_transparent_png_is_downscaled_and_stays_png():
    img = Image.new("RGBA", (3000, 1500), (0, 0, 0, 0))
    clean = clean_upload(upload(encode(img, "PNG")))
    assert (clean.format, clean.width, clean.height) == ("png", 2048, 1024)


def test_max_side_can_be_chosen():
    clean = clean_upload(upload(encode(Image.new("RGB", (1000, 500)), "PNG")), max_side=400)
    assert (clean.width, clean.height) == (400, 200)


def test_downscaling_never_takes_a_side_below_128():
    clean = clean_upload(upload(encode(Image.new("RGB", (4000, 200)), "PNG")))
    assert (clean.width, clean.height) == (2560, 128)


def test_a_small_image_is_not_enlarged():
    clean = clean_upload(upload(encode(Image.new("RGB", (130, 129)), "PNG")))
    assert (clean.width, clean.height) == (130, 129)


def test_max_side_outside_the_upstream_window_is_a_programming_error():
    with pytest.raises(ValueError):
        clean_upload(upload(encode(Image.new("RGB", (200, 200)), "PNG")), max_side=6000)


def random_image(size, mode):
    rng = random.Random(22)
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))


def test_a_png_too_heavy_for_the_upstream_is_shrunk_under_the_byte_limit(monkeypatch):
    monkeypatch.setattr(images, "UPSTREAM_MAX_BYTES", 200_000)
    img = random_image((400, 400), "RGBA")  # incompressible: ~640 kB as PNG
    clean = clean_upload(upload(encode(img, "PNG")))
    assert clean.format == "png"
    assert len(clean.data) <= 200_000
    assert 128 <= clean.width < 400 and clean.width == clean.height
    assert decode(clean).size == (clean.width, clean.height)


def test_a_jpeg_too_heavy_for_the_upstream_is_brought_under_the_byte_limit(monkeypatch):
    monkeypatch.setattr(images, "UPSTREAM_MAX_BYTES", 150_000)
    img = random_image((400, 400), "RGB")
    clean = clean_upload(upload(encode(img, "PNG")))
    assert clean.format == "jpeg"
    assert len(clean.data) <= 150_000
    assert min(clean.width, clean.height) >= 128


# --- kinds of upload object -------------------------------------------------


def test_it_accepts_a_temporary_uploaded_file():
    data = encode(Image.new("RGB", (300, 300), RED), "PNG")
    with TemporaryUploadedFile("big.png", "image/png", len(data), None) as uploaded:
        uploaded.write(data)
        # The form layer may have read it already: we start from the beginning.
        clean = clean_upload(uploaded)
    assert (clean.format, clean.width) == ("jpeg", 300)


def test_it_accepts_an_in_memory_uploaded_file():
    data = encode(Image.new("RGB", (300, 300), RED), "PNG")
    uploaded = InMemoryUploadedFile(
        io.BytesIO(data), "image", "small.png", "image/png", len(data), None
    )
    uploaded.read()  # already consumed once
    assert clean_upload(uploaded).width == 300


def test_it_accepts_a_plain_binary_file_object():
    data = encode(Image.new("RGB", (300, 200), RED), "PNG")
    clean = clean_upload(io.BytesIO(data))
    assert (clean.width, clean.height) == (300, 200)


# --- the result -------------------------------------------------------------


@pytest.mark.parametrize(
    ("img", "fmt", "mime"),
    [
        (Image.new("RGB", (200, 150), RED), "jpeg", "image/jpeg"),
        (Image.new("RGBA", (200, 150), (0, 0, 0, 0)), "png", "image/png"),
    ],
    ids=["jpeg", "png"],
)
def test_the_data_uri_declares_the_type_of_its_bytes(img, fmt, mime):
    clean = clean_upload(upload(encode(img, "PNG")))
    assert isinstance(clean, CleanImage)
    prefix = f"data:{mime};base64,"
    uri = clean.data_uri()
    assert uri.startswith(prefix)
    decoded = base64.b64decode(uri[len(prefix) :], validate=True)
    assert decoded == clean.data
    out = Image.open(io.BytesIO(decoded))
    assert Image.MIME[out.format] == mime
    assert (out.format.lower(), out.size) == (fmt, (200, 150))


def test_every_message_is_one_sentence():
    cases = [b"", SVG, HTML, handmade_png(100_000, 100_000), handmade_png(300, 300)]
    cases.append(encode(Image.new("RGB", (90, 90)), "PNG"))
    for data in cases:
        message = rejection(data).message
        assert message.endswith(".")
        assert "\n" not in message and message.count(". ") == 0
        assert message[0].isupper()
