"""The price of every option combination, worked out by hand from the API reference.

The expected numbers are written out here on purpose, not computed with the sandbox's
own price table, so a slip in either shows up.
"""

import pytest
from conftest import data_uri, image_bytes

JPEG = data_uri(image_bytes("JPEG"), "image/jpeg")
VIEWS = [{"view_type": v, "view_image": JPEG} for v in ("front", "left")]
TWO = [{"image": JPEG}, {"image": JPEG}]

PRO = "/v1/3d-models/tencent/generate/pro/"
RAPID = "/v1/3d-models/tencent/generate/rapid/"
TRELLIS = "/v1/3d-models/trellis2/generate/"


def tripo(mode, version=None):
    segment = {"text": "text-to-3d", "image": "image-to-3d", "multi": "multiview-to-3d"}[mode]
    return f"/v1/3d-models/tripo/{segment}/" + (f"{version}/" if version else "")


PRICES = [
    # Hunyuan Pro: 60, +20 PBR, +20 multi-view
    (PRO, {"model": "3.0", "prompt": "a"}, 60),
    (PRO, {"model": "3.1", "prompt": "a", "enable_pbr": False}, 60),
    (PRO, {"model": "3.0", "prompt": "a", "enable_pbr": True}, 80),
    (PRO, {"model": "3.0", "image": JPEG}, 60),
    (PRO, {"model": "3.1", "image": JPEG, "enable_pbr": True}, 80),
    (PRO, {"model": "3.0", "multi_view_images": VIEWS}, 80),
    (PRO, {"model": "3.1", "multi_view_images": VIEWS, "enable_pbr": True}, 100),
    (PRO, {"model": "3.0", "image": JPEG, "prompt": "a", "generate_type": "Sketch"}, 60),
    (PRO, {"model": "3.0", "prompt": "a", "generate_type": "LowPoly", "enable_pbr": True}, 80),
    (PRO, {"model": "3.0", "prompt": "a", "generate_type": "Geometry", "face_count": 40000}, 60),
    # Hunyuan Rapid: 35, +20 PBR
    (RAPID, {"prompt": "a"}, 35),
    (RAPID, {"prompt": "a", "enable_pbr": True}, 55),
    (RAPID, {"image": JPEG}, 35),
    (RAPID, {"image": JPEG, "enable_pbr": True}, 55),
    (RAPID, {"prompt": "a", "enable_geometry": True}, 35),
    # TRELLIS.2: geometry 15/20/25; textures 1024|2048: 25/30/40; 4096: 30/40/55; thumb +2
    (TRELLIS, {"image": JPEG}, 20),
    (TRELLIS, {"image": JPEG, "resolution": "512"}, 15),
    (TRELLIS, {"image": JPEG, "resolution": "1024"}, 20),
    (TRELLIS, {"image": JPEG, "resolution": "1536"}, 25),
    (TRELLIS, {"image": JPEG, "resolution": "512", "textures": True}, 25),
    (TRELLIS, {"image": JPEG, "textures": True}, 30),
    (TRELLIS, {"image": JPEG, "resolution": "1536", "textures": True}, 40),
    (TRELLIS, {"image": JPEG, "resolution": "512", "textures": True, "texture_size": 1024}, 25),
    (TRELLIS, {"image": JPEG, "textures": True, "texture_size": 1024}, 30),
    (TRELLIS, {"image": JPEG, "resolution": "1536", "textures": True, "texture_size": 2048}, 40),
    (TRELLIS, {"image": JPEG, "resolution": "512", "textures": True, "texture_size": 4096}, 30),
    (TRELLIS, {"image": JPEG, "textures": True, "texture_size": 4096}, 40),
    (TRELLIS, {"image": JPEG, "resolution": "1536", "textures": True, "texture_size": 4096}, 55),
    (TRELLIS, {"image": JPEG, "generate_thumbnail": True}, 22),
    (TRELLIS, {"image": JPEG, "resolution": "512", "generate_thumbnail": True}, 17),
    (
        TRELLIS,
        {
            "image": JPEG,
            "resolution": "1536",
            "textures": True,
            "texture_size": 4096,
            "generate_thumbnail": True,
        },
        57,
    ),
    (TRELLIS, {"image_url": "https://example.com/x.png", "textures": True}, 30),
    # Tripo v3: base 20 text, 40 image/multiview; texture (default on) +20 standard / +40
    # detailed; detailed geometry +40; quad +10; smart low-poly +20; parts +40
    (tripo("text"), {"prompt": "a"}, 40),
    (tripo("text", "3.0"), {"prompt": "a"}, 40),
    (tripo("text", "3.1"), {"prompt": "a"}, 40),
    (tripo("text"), {"prompt": "a", "texture": False}, 20),
    (tripo("text"), {"prompt": "a", "texture_quality": "detailed"}, 60),
    (tripo("text"), {"prompt": "a", "texture": False, "texture_quality": "detailed"}, 20),
    (tripo("text"), {"prompt": "a", "pbr": False}, 40),
    (tripo("text", "3.1"), {"prompt": "a", "geometry_quality": "detailed"}, 80),
    (tripo("text"), {"prompt": "a", "geometry_quality": "standard"}, 40),
    (tripo("text"), {"prompt": "a", "quad": True}, 50),
    (tripo("text"), {"prompt": "a", "smart_low_poly": True}, 60),
    (tripo("text"), {"prompt": "a", "texture": False, "pbr": False, "generate_parts": True}, 60),
    (
        tripo("text", "3.1"),
        {
            "prompt": "a",
            "texture_quality": "detailed",
            "geometry_quality": "detailed",
            "quad": True,
            "smart_low_poly": True,
        },
        130,
    ),
    (tripo("image"), {"image": JPEG}, 60),
    (tripo("image", "3.1"), {"image": JPEG, "texture": False}, 40),
    (tripo("image", "3.0"), {"image": JPEG, "texture_quality": "detailed", "quad": True}, 90),
    (tripo("image"), {"image": JPEG, "texture": False, "pbr": False, "generate_parts": True}, 80),
    (tripo("multi"), {"images": TWO}, 60),
    (tripo("multi", "3.1"), {"images": TWO, "geometry_quality": "detailed"}, 100),
    (tripo("multi", "3.0"), {"images": TWO, "texture": False, "smart_low_poly": True}, 60),
    # Tripo P1: 60 text, 80 image/multiview; texture +20 standard / +40 detailed
    (tripo("text", "p1"), {"prompt": "a"}, 80),
    (tripo("text", "p1"), {"prompt": "a", "texture": False}, 60),
    (tripo("text", "p1"), {"prompt": "a", "texture_quality": "detailed"}, 100),
    (tripo("image", "p1"), {"image": JPEG}, 100),
    (tripo("image", "p1"), {"image": JPEG, "texture": False}, 80),
    (tripo("multi", "p1"), {"images": TWO}, 100),
    (tripo("multi", "p1"), {"images": TWO, "texture_quality": "detailed"}, 120),
    # Convert: 10
    ("/v1/tools/convert/", {"model_url": "https://e.com/a.glb", "output_format": "fbx"}, 10),
    # Images: per image, times num_images; edit as generate
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a", "resolution": "2K"}, 50),
    ("/v1/images/gemini/3/pro/edit/", {"prompt": "a", "images": [JPEG], "resolution": "4K"}, 80),
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a", "num_images": 4}, 200),
    ("/v1/images/gemini/3.1/flash/generate/", {"prompt": "a", "resolution": "512px"}, 10),
    ("/v1/images/gemini/3.1/flash/generate/", {"prompt": "a"}, 15),
    (
        "/v1/images/gemini/3.1/flash/edit/",
        {"prompt": "a", "images": [JPEG], "resolution": "2K"},
        20,
    ),
    (
        "/v1/images/gemini/3.1/flash/generate/",
        {"prompt": "a", "resolution": "4K", "num_images": 2},
        50,
    ),
    ("/v1/images/gemini/2.5/flash/generate/", {"prompt": "a", "num_images": 3}, 15),
    ("/v1/images/seedream/v5/lite/generate/", {"prompt": "a", "num_images": 6}, 60),
    ("/v1/images/seedream/v5/lite/edit/", {"prompt": "a", "image_urls": [JPEG]}, 10),
    # Texturing and remeshing
    ("/v1/3d-models/tencent/texture-edit/", {"file_url": "https://e.com/a.fbx", "prompt": "a"}, 80),
    ("/v1/3d-models/tripo/texture-model/", {"model_url": "https://e.com/a.glb"}, 20),
    (
        "/v1/3d-models/tripo/texture-model/",
        {
            "model_url": "https://e.com/a.glb",
            "texture_quality": "detailed",
            "style_image_url": "https://e.com/s.jpg",
        },
        50,
    ),
    ("/v1/3d-models/tencent/topology/", {"file_url": "https://e.com/a.glb"}, 100),
    (
        "/v1/3d-models/tripo/convert-model/",
        {"model_url": "https://e.com/a.glb", "format": "FBX"},
        10,
    ),
    (
        "/v1/3d-models/tripo/convert-model/",
        {"model_url": "https://e.com/a.glb", "format": "OBJ", "quad": True, "pack_uv": True},
        20,
    ),
    ("/v1/3d-models/tripo/mesh-segmentation/", {"model_url": "https://e.com/a.glb"}, 80),
    # Tools
    ("/v1/tools/render/", {"model_url": "https://e.com/a.glb"}, 5),
    ("/v1/tools/render/", {"model_url": "https://e.com/a.glb", "angle": "turntable_8"}, 20),
    ("/v1/tools/render/", {"model_url": "https://e.com/a.glb", "output_type": "video"}, 20),
    ("/v1/tools/repair/", {"model_url": "https://e.com/a.glb"}, 60),
    ("/v1/tools/repair/", {"model_url": "https://e.com/a.glb", "hollow": True}, 90),
    (
        "/v1/tools/bake-texture/",
        {"original_url": "https://e.com/a.glb", "retopo_url": "https://e.com/b.fbx"},
        5,
    ),
    (
        "/v1/tools/calculate-volume/",
        {"model_url": "https://e.com/a.glb", "target_heights": "1,2,3,4,5,6,7,8,9,10"},
        20,
    ),
    ("/v1/tools/remove-bg/", {"image_url": "https://e.com/a.jpg", "quality": "low"}, 3),
    ("/v1/tools/remove-bg/", {"image_url": "https://e.com/a.jpg"}, 4),
    ("/v1/tools/remove-bg/", {"image_url": "https://e.com/a.jpg", "quality": "high"}, 5),
    ("/v1/tools/image-enhance/", {"image_url": "https://e.com/a.jpg"}, 15),
    ("/v1/tools/image-enhance/", {"image_url": "https://e.com/a.jpg", "remove_bg": True}, 20),
    # Miniature flow: 300 default, 200 fast, no surcharges
    ("/v1/flow/miniature/", {"image": JPEG, "preset": "realistic_animal"}, 300),
    (
        "/v1/flow/miniature/",
        {"image": JPEG, "preset": "v4_miniature_general", "scale": "1:150", "edition": "fast"},
        200,
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from conftest import Client, start_server

    server = start_server(tmp_path_factory.mktemp("prices"))
    yield Client(server)
    server.stop()


@pytest.mark.parametrize(("path", "body", "price"), PRICES, ids=lambda v: None)
def test_it_charges_the_documented_price(shared, path, body, price):
    before = float(shared.balance())
    task_id = shared.submit(path, body)
    assert float(shared.balance()) == before - price
    charged = {t["task_id"]: t["charged"] for t in shared.tasks()}
    assert charged[task_id] == price
