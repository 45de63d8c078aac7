"""Every validation rule of the API reference: 400, code validation_failed, the field named."""

import base64

import pytest
from conftest import data_uri, image_bytes

PRO = "/v1/3d-models/tencent/generate/pro/"
RAPID = "/v1/3d-models/tencent/generate/rapid/"
TRELLIS = "/v1/3d-models/trellis2/generate/"
T_TEXT = "/v1/3d-models/tripo/text-to-3d/3.1/"
T_IMAGE = "/v1/3d-models/tripo/image-to-3d/3.0/"
T_MULTI = "/v1/3d-models/tripo/multiview-to-3d/"
P1_TEXT = "/v1/3d-models/tripo/text-to-3d/p1/"
P1_IMAGE = "/v1/3d-models/tripo/image-to-3d/p1/"
CONVERT = "/v1/tools/convert/"

JPEG = data_uri(image_bytes("JPEG"), "image/jpeg")
PNG = data_uri(image_bytes("PNG"), "image/png")
WEBP = data_uri(image_bytes("WEBP"), "image/webp")
TRANSPARENT_PNG = data_uri(image_bytes("PNG", mode="RGBA", color=(10, 20, 30, 0)), "image/png")
GIF = data_uri(image_bytes("GIF", mode="P", color=1), "image/gif")
TOO_SMALL = data_uri(image_bytes("JPEG", size=(127, 400)), "image/jpeg")
TOO_LARGE_SIDE = data_uri(image_bytes("PNG", size=(5001, 130), mode="L", color=0), "image/png")


def view(name, image=JPEG):
    return {"view_type": name, "view_image": image}


LONG = "x" * 1025

# (endpoint, body, the field the message must name)
CASES = [
    # Hunyuan Pro
    (PRO, {"prompt": "a cat"}, "model"),
    (PRO, {"model": "2.0", "prompt": "a cat"}, "model"),
    (PRO, {"model": "3.0"}, "prompt"),
    (PRO, {"model": "3.0", "prompt": "a cat", "image": JPEG}, "image"),
    (
        PRO,
        {"model": "3.0", "prompt": "a", "multi_view_images": [view("front")]},
        "multi_view_images",
    ),
    (
        PRO,
        {"model": "3.0", "image": JPEG, "multi_view_images": [view("front")]},
        "multi_view_images",
    ),
    (PRO, {"model": "3.0", "prompt": LONG}, "prompt"),
    (PRO, {"model": "3.0", "prompt": "   "}, "prompt"),
    (PRO, {"model": "3.0", "prompt": None}, "prompt"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": 39_999}, "face_count"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": 1_500_001}, "face_count"),
    (PRO, {"model": "3.0", "prompt": "a", "generate_type": "lowpoly"}, "generate_type"),
    (PRO, {"model": "3.1", "prompt": "a", "generate_type": "LowPoly"}, "generate_type"),
    (PRO, {"model": "3.1", "image": JPEG, "generate_type": "Sketch"}, "generate_type"),
    (PRO, {"model": "3.0", "prompt": "a", "polygon_type": "quadrilateral"}, "polygon_type"),
    (
        PRO,
        {"model": "3.0", "prompt": "a", "generate_type": "LowPoly", "polygon_type": "quad"},
        "polygon_type",
    ),
    (PRO, {"model": "3.0", "prompt": "a sketch", "generate_type": "Sketch"}, "image"),
    (
        PRO,
        {"model": "3.0", "generate_type": "Sketch", "multi_view_images": [view("front")]},
        "multi_view_images",
    ),
    (PRO, {"model": "3.0", "multi_view_images": []}, "multi_view_images"),
    (PRO, {"model": "3.0", "multi_view_images": view("front")}, "multi_view_images"),
    (PRO, {"model": "3.0", "multi_view_images": [view("left"), view("back")]}, "multi_view_images"),
    (
        PRO,
        {"model": "3.0", "multi_view_images": [view("front"), view("front")]},
        "multi_view_images[1].view_type",
    ),
    (
        PRO,
        {"model": "3.0", "multi_view_images": [view("front"), view("top")]},
        "multi_view_images[1].view_type",
    ),
    (
        PRO,
        {"model": "3.0", "multi_view_images": [view("front"), view("left_front")]},
        "multi_view_images[1].view_type",
    ),
    (
        PRO,
        {"model": "3.1", "multi_view_images": [view("front"), view("diagonal")]},
        "multi_view_images[1].view_type",
    ),
    (
        PRO,
        {"model": "3.0", "multi_view_images": [{"view_type": "front"}]},
        "multi_view_images[0].view_image",
    ),
    (PRO, {"model": "3.0", "multi_view_images": ["front"]}, "multi_view_images[0]"),
    (
        PRO,
        {"model": "3.0", "multi_view_images": [view("front", "not a uri")]},
        "multi_view_images[0].view_image",
    ),
    # images (checked through Pro's `image`)
    (PRO, {"model": "3.0", "image": JPEG.replace("image/jpeg", "image/png")}, "image"),
    (PRO, {"model": "3.0", "image": PNG.replace("image/png", "image/jpeg")}, "image"),
    (PRO, {"model": "3.0", "image": GIF}, "image"),
    (PRO, {"model": "3.0", "image": GIF.replace("image/gif", "image/png")}, "image"),
    (PRO, {"model": "3.0", "image": TOO_SMALL}, "image"),
    (PRO, {"model": "3.0", "image": TOO_LARGE_SIDE}, "image"),
    (PRO, {"model": "3.0", "image": "data:image/png;base64,%%%notbase64"}, "image"),
    (
        PRO,
        {"model": "3.0", "image": "data:image/png;base64," + base64.b64encode(b"hello").decode()},
        "image",
    ),
    (PRO, {"model": "3.0", "image": "https://example.com/cat.png"}, "image"),
    (PRO, {"model": "3.0", "image": JPEG[:200]}, "image"),
    # Hunyuan Rapid
    (RAPID, {}, "prompt"),
    (RAPID, {"prompt": "a", "image": JPEG}, "image"),
    (RAPID, {"prompt": LONG}, "prompt"),
    (RAPID, {"image": TOO_SMALL}, "image"),
    # TRELLIS.2
    (TRELLIS, {}, "image"),
    (TRELLIS, {"prompt": "a cat"}, "image"),
    (TRELLIS, {"image": JPEG, "image_url": "http://127.0.0.1:1/x.png"}, "image_url"),
    (TRELLIS, {"image": JPEG, "resolution": "2048"}, "resolution"),
    (TRELLIS, {"image": JPEG, "steps": 0}, "steps"),
    (TRELLIS, {"image": JPEG, "steps": 51}, "steps"),
    (TRELLIS, {"image": JPEG, "texture_size": 2048}, "texture_size"),
    (TRELLIS, {"image": JPEG, "textures": True, "texture_size": 512}, "texture_size"),
    (TRELLIS, {"image": JPEG, "decimation_target": 999}, "decimation_target"),
    (TRELLIS, {"image": JPEG, "decimation_target": 16_000_001}, "decimation_target"),
    (TRELLIS, {"image": JPEG, "seed": -1}, "seed"),
    (TRELLIS, {"image": JPEG, "seed": 1.5}, "seed"),
    (TRELLIS, {"image_url": "ftp://example.com/x.png"}, "image_url"),
    (TRELLIS, {"image_url": "not a url"}, "image_url"),
    (TRELLIS, {"image_url": "http://127.0.0.1:9/nothing-listens-here.png"}, "image_url"),
    # Tripo v3 text
    (T_TEXT, {}, "prompt"),
    (T_TEXT, {"prompt": LONG}, "prompt"),
    (T_TEXT, {"prompt": "a", "negative_prompt": LONG}, "negative_prompt"),
    (T_TEXT, {"prompt": "a", "pbr": None}, "pbr"),
    (T_TEXT, {"prompt": "a", "texture_quality": "high"}, "texture_quality"),
    (T_TEXT, {"prompt": "a", "geometry_quality": "ultra"}, "geometry_quality"),
    (T_TEXT, {"prompt": "a", "face_limit": 499}, "face_limit"),
    (T_TEXT, {"prompt": "a", "face_limit": 500_001}, "face_limit"),
    (T_TEXT, {"prompt": "a", "generate_parts": True}, "generate_parts"),
    (T_TEXT, {"prompt": "a", "generate_parts": True, "texture": False}, "generate_parts"),
    (
        T_TEXT,
        {"prompt": "a", "generate_parts": True, "texture": False, "pbr": False, "quad": True},
        "quad",
    ),
    (T_TEXT, {"prompt": "a", "compress": "draco"}, "compress"),
    # Tripo v3 image
    (T_IMAGE, {}, "image"),
    (T_IMAGE, {"image": JPEG, "image_url": "https://example.com/a.jpg"}, "image_url"),
    (T_IMAGE, {"image": JPEG, "texture_alignment": "mesh"}, "texture_alignment"),
    (T_IMAGE, {"image": JPEG, "orientation": "up"}, "orientation"),
    (T_IMAGE, {"image": TRANSPARENT_PNG}, "image"),
    (T_IMAGE, {"image": WEBP.replace("image/webp", "image/jpeg")}, "image"),
    # Tripo v3 multiview
    (T_MULTI, {}, "images"),
    (T_MULTI, {"images": [{"image": JPEG}]}, "images"),
    (T_MULTI, {"images": [{"image": JPEG}] * 5}, "images"),
    (T_MULTI, {"images": {"image": JPEG}}, "images"),
    (T_MULTI, {"images": [{"image": JPEG}, {}]}, "images[1]"),
    (
        T_MULTI,
        {"images": [{"image": JPEG}, {"image": JPEG, "image_url": "https://e.com/a.jpg"}]},
        "images[1]",
    ),
    (T_MULTI, {"images": [{"image": JPEG}, JPEG]}, "images[1]"),
    (T_MULTI, {"images": [{"image": JPEG}, {"image": TOO_SMALL}]}, "images[1].image"),
    (
        T_MULTI,
        {"images": [{"image": JPEG}, {"image_url": "file:///etc/passwd"}]},
        "images[1].image_url",
    ),
    # Tripo P1
    (P1_TEXT, {"prompt": "a", "negative_prompt": "n" * 256}, "negative_prompt"),
    (P1_TEXT, {"prompt": "a", "face_limit": 47}, "face_limit"),
    (P1_TEXT, {"prompt": "a", "face_limit": 20_001}, "face_limit"),
    (P1_TEXT, {"prompt": "a", "model_seed": -2}, "model_seed"),
    (P1_TEXT, {"prompt": "a", "texture_quality": "best"}, "texture_quality"),
    (P1_IMAGE, {"image": TRANSPARENT_PNG}, "image"),
    # Convert
    (CONVERT, {"output_format": "glb"}, "model_url"),
    (CONVERT, {"model_url": "https://e.com/a.glb", "output_format": "gltf"}, "output_format"),
    (CONVERT, {"model_url": "s3://bucket/a.glb", "output_format": "glb"}, "model_url"),
    (
        CONVERT,
        {"model_url": "https://e.com/a.glb", "output_format": "stl", "max_size": -1},
        "max_size",
    ),
    (CONVERT, {"model_url": "https://e.com/a.glb", "output_format": "stl", "unit": 5}, "unit"),
    # Coercion has limits (DRF's default fields)
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": "maybe"}, "enable_pbr"),
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": 2}, "enable_pbr"),
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": []}, "enable_pbr"),
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": "TrUe"}, "enable_pbr"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": 50000.5}, "face_count"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": "50000.5"}, "face_count"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": True}, "face_count"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": "lots"}, "face_count"),
    (PRO, {"model": True, "prompt": "a"}, "model"),
    (PRO, {"model": ["3.0"], "prompt": "a"}, "model"),
    (PRO, {"model": 3, "prompt": "a"}, "model"),
    (PRO, {"model": "3.0", "prompt": True}, "prompt"),
    (PRO, {"model": "3.0", "prompt": {"text": "a"}}, "prompt"),
    (PRO, {"model": "3.0", "prompt": "a", "generate_type": "normal"}, "generate_type"),
    (TRELLIS, {"image": JPEG, "resolution": 1024.0}, "resolution"),
    (T_TEXT, {"prompt": "a", "texture_seed": 7.5}, "texture_seed"),
    (CONVERT, {"model_url": "https://e.com/a.glb", "output_format": "GLB"}, "output_format"),
    (CONVERT, {"model_url": "https://e.com/a.glb", "unit": "km"}, "unit"),
    (CONVERT, {"model_url": "https://e.com/a.glb", "model_file": "x.glb"}, "model_file"),
    (CONVERT, {"model_file": "a.glb"}, "model_file"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from conftest import Client, start_server

    server = start_server(tmp_path_factory.mktemp("validation"))
    yield Client(server)
    server.stop()


@pytest.mark.parametrize(("path", "body", "field"), CASES, ids=lambda v: None)
def test_it_refuses_an_invalid_field(shared, path, body, field):
    before = shared.balance()
    response = shared.post(path, body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["code"] == "validation_failed"
    assert answer["detail"].startswith(f"{field}: "), answer["detail"]
    assert shared.balance() == before


def multi(*names, model="3.0"):
    return {"model": model, "multi_view_images": [view(n) for n in names]}


# Coerced the way DRF's fields do: accepted (each was refused before issue 18)
COERCED = [
    # (endpoint, body, the field read by coercion or ignored as unknown)
    (PRO, {"model": 3.0, "prompt": "a cat"}, "model"),
    (PRO, {"model": "3.0", "prompt": 5}, "prompt"),
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": "true"}, "enable_pbr"),
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": 1}, "enable_pbr"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": 50000.0}, "face_count"),
    (PRO, {"model": "3.0", "prompt": "a", "face_count": "50000"}, "face_count"),
    (RAPID, {"prompt": "a", "enable_pbr": "yes"}, "enable_pbr"),
    (RAPID, {"prompt": "a", "enable_geometry": 0}, "enable_geometry"),
    (TRELLIS, {"image": JPEG, "resolution": 1024}, "resolution"),
    (TRELLIS, {"image": JPEG, "textures": "true"}, "textures"),
    (TRELLIS, {"image": JPEG, "textures": True, "texture_size": "2048"}, "texture_size"),
    (TRELLIS, {"image": JPEG, "generate_thumbnail": "false"}, "generate_thumbnail"),
    (T_TEXT, {"prompt": "a", "texture": "false"}, "texture"),
    (T_TEXT, {"prompt": "a", "quad": "yes"}, "quad"),
    (T_TEXT, {"prompt": "a", "smart_low_poly": 1}, "smart_low_poly"),
    (T_TEXT, {"prompt": "a", "export_uv": "true"}, "export_uv"),
    (T_TEXT, {"prompt": "a", "auto_size": 1}, "auto_size"),
    (T_TEXT, {"prompt": "a", "texture_seed": "7"}, "texture_seed"),
    (T_IMAGE, {"image": JPEG, "enable_image_autofix": "on"}, "enable_image_autofix"),
    (P1_TEXT, {"prompt": "a", "geometry_quality": "standard"}, "geometry_quality"),
    (P1_TEXT, {"prompt": "a", "quad": False}, "quad"),
    (P1_TEXT, {"prompt": "a", "smart_low_poly": True}, "smart_low_poly"),
    (
        P1_TEXT,
        {"prompt": "a", "generate_parts": True, "texture": False, "pbr": False},
        "generate_parts",
    ),
    (P1_TEXT, {"prompt": "a", "image_seed": "1"}, "image_seed"),
    (CONVERT, {"model_url": "https://e.com/a.glb"}, "output_format"),
]


@pytest.mark.parametrize(("path", "body", "field"), COERCED, ids=lambda v: None)
def test_it_reads_scalars_as_drf_does_and_ignores_unknown_fields(shared, path, body, field):
    response = shared.post(path, body)
    assert response.status_code == 200, response.text


VALID = [
    (PRO, {"model": "3.0", "prompt": "a cat", "enable_pbr": True, "face_count": 40_000}),
    (
        PRO,
        {
            "model": "3.0",
            "prompt": "a",
            "generate_type": "LowPoly",
            "polygon_type": "quadrilateral",
        },
    ),
    (PRO, {"model": "3.0", "prompt": "a", "polygon_type": "triangle"}),
    (PRO, {"model": "3.1", "prompt": "a", "generate_type": "Geometry", "face_count": 1_500_000}),
    (PRO, {"model": "3.0", "image": JPEG, "generate_type": "Sketch", "prompt": "a sketch"}),
    (PRO, {"model": "3.0", "image": JPEG, "generate_type": "Sketch"}),
    (PRO, {"model": "3.0", "image": PNG}),
    (PRO, {"model": "3.0", "image": WEBP}),
    (PRO, {"model": "3.0", "image": JPEG.replace("image/jpeg", "image/jpg")}),
    (PRO, multi("front", "left", "right", "back")),
    (PRO, multi("back", "front")),
    (PRO, multi("front", "top", "bottom", "left_front", "right_front", model="3.1")),
    (RAPID, {"prompt": "a", "enable_pbr": False, "enable_geometry": True}),
    (RAPID, {"image": JPEG}),
    (
        TRELLIS,
        {"image": PNG, "resolution": "512", "steps": 50, "seed": 0, "decimation_target": 1000},
    ),
    (TRELLIS, {"image": JPEG, "textures": True, "texture_size": 4096, "generate_thumbnail": True}),
    (TRELLIS, {"image_url": "https://example.com/cat.png"}),
    (T_TEXT, {"prompt": "x" * 1024, "negative_prompt": "n" * 1024, "face_limit": 500}),
    (T_TEXT, {"prompt": "a", "generate_parts": True, "texture": False, "pbr": False}),
    (T_TEXT, {"prompt": "a", "compress": "geometry", "texture_seed": 3, "export_uv": False}),
    (T_IMAGE, {"image": PNG, "texture_alignment": "geometry", "orientation": "align_image"}),
    (T_IMAGE, {"image_url": "https://example.com/a.jpg", "enable_image_autofix": True}),
    (T_MULTI, {"images": [{"image": JPEG}, {"image_url": "https://example.com/l.jpg"}]}),
    (T_MULTI, {"images": [{"image": JPEG}] * 4}),
    (
        P1_TEXT,
        {
            "prompt": "a",
            "negative_prompt": "n" * 255,
            "image_seed": 1,
            "model_seed": 2,
            "face_limit": 48,
        },
    ),
    (P1_IMAGE, {"image": JPEG, "face_limit": 20_000, "texture_quality": "detailed"}),
    (
        CONVERT,
        {"model_url": "https://e.com/a.glb", "output_format": "usdz", "max_size": 2, "unit": "cm"},
    ),
]


@pytest.mark.parametrize(("path", "body"), VALID, ids=lambda v: None)
def test_it_accepts_a_valid_body(shared, path, body):
    response = shared.post(path, body)
    assert response.status_code == 200, response.text


def test_tripo_accepts_a_transparent_png_when_the_quirk_is_off(make_sandbox):
    sandbox = make_sandbox(faults={"quirks": {"tripo_transparent_png": 0}})
    assert sandbox.post(T_IMAGE, {"image": TRANSPARENT_PNG}).status_code == 200


def test_an_image_over_six_megabytes_is_refused(shared):
    import io
    import os

    from PIL import Image

    # Random pixels do not compress: a 1500x1500 RGB PNG is about 6.75 MB.
    img = Image.frombytes("RGB", (1500, 1500), os.urandom(1500 * 1500 * 3))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    assert len(out.getvalue()) > 6 * 1024 * 1024
    response = shared.post(PRO, {"model": "3.0", "image": data_uri(out.getvalue(), "image/png")})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("image: ")
    assert "6291456" in response.json()["detail"]


def test_a_loopback_image_url_is_fetched_and_checked(shared):
    import http.server
    import threading

    payload = image_bytes("PNG", size=(64, 64))  # too small: the fetched bytes are checked

    class Serve(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/small.png"
        response = shared.post(TRELLIS, {"image_url": url})
        assert response.status_code == 400
        assert response.json()["detail"].startswith("image_url: Each side")
        payload = image_bytes("PNG", size=(200, 200))
        assert shared.post(TRELLIS, {"image_url": url}).status_code == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
