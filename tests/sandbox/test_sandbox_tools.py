"""Images, texturing, remeshing, tools and the miniature flow: every endpoint over real HTTP,
with real files behind every result and the documented price charged."""

import io
import json
import urllib.parse
import zipfile

import pytest
import requests
import trimesh
from conftest import data_uri, image_bytes
from PIL import Image

JPEG = data_uri(image_bytes("JPEG", size=(200, 160), color=(30, 160, 90)), "image/jpeg")
PHOTO = image_bytes("PNG", size=(300, 200), color=(240, 240, 240))
PRO = "/v1/3d-models/tencent/generate/pro/"


def extension(url):
    return urllib.parse.urlsplit(url).path.rsplit(".", 1)[-1]


def picture(data):
    return Image.open(io.BytesIO(data))


def glb_scene(data):
    assert data[:4] == b"glTF"
    scene = trimesh.load(io.BytesIO(data), file_type="glb", force="scene")
    assert sum(len(g.faces) for g in scene.geometry.values()) > 10
    return scene


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from conftest import Client, start_server

    server = start_server(tmp_path_factory.mktemp("tools"), rate_limit=1_000_000)
    yield Client(server)
    server.stop()


@pytest.fixture(scope="module")
def glb(shared):
    """A real GLB: the 3D_MODEL of a finished Hunyuan Pro task (its ZIP comes first)."""
    answer = shared.wait(shared.submit(PRO, {"model": "3.0", "prompt": "a wooden chair"}))
    [model] = [r for r in answer["results"] if r["asset_type"] == "3D_MODEL"]
    return model["asset"], shared.download(model["asset"]).content


def charged(sandbox, task_id):
    return {t["task_id"]: t["charged"] for t in sandbox.tasks()}[task_id]


def upload(sandbox, path, files, data=None):
    return sandbox.http.post(
        sandbox.url + path, files=files, data=data or {}, headers=sandbox.headers(), timeout=30
    )


def finished(sandbox, response):
    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    answer = sandbox.wait(task_id, timeout=60)
    assert answer["status"] == "FINISHED", answer
    return task_id, answer["results"]


# --- image generation ----------------------------------------------------------------------

IMAGES = [
    # (path, body, price, extension, pillow format, (width, height))
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a castle"}, 50, "png", "PNG", (1024, 1024)),
    (
        "/v1/images/gemini/3/pro/generate/",
        {"prompt": "a castle", "resolution": "4K", "num_images": 2, "output_format": "jpeg"},
        160,
        "jpg",
        "JPEG",
        (2048, 2048),
    ),
    (
        "/v1/images/gemini/3/pro/edit/",
        {"prompt": "make it night", "images": [JPEG, JPEG], "aspect_ratio": "16:9"},
        50,
        "png",
        "PNG",
        (1024, 576),
    ),
    (
        "/v1/images/gemini/3.1/flash/generate/",
        {"prompt": "a ship", "resolution": "512px", "aspect_ratio": "1:4", "num_images": 3},
        30,
        "png",
        "PNG",
        (128, 512),
    ),
    (
        "/v1/images/gemini/3.1/flash/edit/",
        {"prompt": "a ship", "images": [JPEG], "resolution": "2K", "output_format": "webp"},
        20,
        "webp",
        "WEBP",
        (2048, 2048),
    ),
    (
        "/v1/images/gemini/2.5/flash/generate/",
        {"prompt": "a fox", "resolution": "4K", "num_images": 4, "count": 9},
        20,
        "png",
        "PNG",
        (1024, 1024),
    ),
    (
        "/v1/images/gemini/2.5/flash/edit/",
        {"prompt": "a fox", "images": [JPEG]},
        5,
        "png",
        "PNG",
        (1024, 1024),
    ),
    (
        "/v1/images/seedream/v5/lite/generate/",
        {"prompt": "a tree", "image_size": "landscape_16_9", "num_images": 6, "seed": 4},
        60,
        "png",
        "PNG",
        (1024, 576),
    ),
    (
        "/v1/images/seedream/v5/lite/edit/",
        {"prompt": "a tree", "image_urls": [JPEG, "https://example.com/ref.jpg"]},
        10,
        "png",
        "PNG",
        (2048, 2048),
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "price", "ext", "fmt", "size"), IMAGES, ids=lambda v: None
)
def test_image_endpoints_give_one_image_per_num_images(shared, path, body, price, ext, fmt, size):
    task_id, results = finished(shared, shared.post(path, body))
    assert charged(shared, task_id) == price
    assert len(results) == body.get("num_images", 1)
    for result in results:
        assert (result["asset_type"], extension(result["asset"])) == ("IMAGE", ext)
        img = picture(shared.download(result["asset"]).content)
        assert (img.format, img.size) == (fmt, size)


IMAGE_REFUSALS = [
    ("/v1/images/gemini/3/pro/generate/", {}, "prompt"),
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a", "num_images": 5}, "num_images"),
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a", "resolution": "512px"}, "resolution"),
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a", "aspect_ratio": "1:4"}, "aspect_ratio"),
    ("/v1/images/gemini/3/pro/generate/", {"prompt": "a", "output_format": "gif"}, "output_format"),
    ("/v1/images/gemini/3/pro/edit/", {"prompt": "a"}, "images"),
    ("/v1/images/gemini/3/pro/edit/", {"prompt": "a", "images": [JPEG] * 15}, "images"),
    ("/v1/images/gemini/3/pro/edit/", {"prompt": "a", "images": ["nope"]}, "images[0]"),
    ("/v1/images/seedream/v5/lite/generate/", {"prompt": "a", "num_images": 7}, "num_images"),
    ("/v1/images/seedream/v5/lite/generate/", {"prompt": "a", "seed": -1}, "seed"),
    ("/v1/images/seedream/v5/lite/generate/", {"prompt": "a", "image_size": "4K"}, "image_size"),
    ("/v1/images/seedream/v5/lite/edit/", {"prompt": "a", "image_urls": []}, "image_urls"),
    ("/v1/3d-models/tencent/texture-edit/", {"prompt": "a"}, "file_url"),
    (
        "/v1/3d-models/tencent/texture-edit/",
        {"file_url": "https://e.com/a.glb", "prompt": "red"},
        "file_url",
    ),
    ("/v1/3d-models/tencent/texture-edit/", {"file_url": "https://e.com/a.fbx"}, "prompt"),
    (
        "/v1/3d-models/tencent/texture-edit/",
        {"file_url": "https://e.com/a.fbx", "image": JPEG, "enable_pbr": True},
        "enable_pbr",
    ),
    (
        "/v1/3d-models/tencent/texture-edit/",
        {"file_url": "https://e.com/a.fbx", "image": data_uri(image_bytes("WEBP"), "image/webp")},
        "image",
    ),
    ("/v1/3d-models/tencent/topology/", {}, "file_url"),
    (
        "/v1/3d-models/tencent/topology/",
        {"file_url": "https://e.com/a.glb", "output_format": "glb"},
        "output_format",
    ),
    ("/v1/3d-models/tripo/convert-model/", {"model_url": "https://e.com/a.glb"}, "format"),
    (
        "/v1/3d-models/tripo/convert-model/",
        {"model_url": "https://e.com/a.glb", "format": "3MF", "quad": True},
        "quad",
    ),
    (
        "/v1/3d-models/tripo/convert-model/",
        {"model_url": "https://e.com/a.glb", "format": "FBX", "texture_size": 4097},
        "texture_size",
    ),
    ("/v1/3d-models/tripo/mesh-segmentation/", {}, "model_url"),
    (
        "/v1/3d-models/tripo/texture-model/",
        {"model_url": "https://e.com/a.glb", "prompt": "x", "image_url": "https://e.com/a.jpg"},
        "image_url",
    ),
    (
        "/v1/3d-models/tripo/texture-model/",
        {"model_url": "https://e.com/a.glb", "texture": False},
        "texture",
    ),
    ("/v1/tools/render/", {}, "model_url"),
    ("/v1/tools/render/", {"model_url": "https://e.com/a.glb", "angle": "side"}, "angle"),
    ("/v1/tools/render/", {"model_url": "https://e.com/a.glb", "lighting": "sunset"}, "lighting"),
    ("/v1/tools/render/", {"model_url": "https://e.com/a.glb", "resolution": 5000}, "resolution"),
    ("/v1/tools/repair/", {"model_url": "https://e.com/a.glb", "quality": "high"}, "quality"),
    (
        "/v1/tools/repair/",
        {"model_url": "https://e.com/a.glb", "wall_thickness": 0},
        "wall_thickness",
    ),
    ("/v1/tools/optimize/", {"model_url": "https://e.com/a.glb"}, "model_file"),
    ("/v1/tools/optimize/", {"model_base64": "Z2xURg=="}, "model_file"),
    ("/v1/tools/bake-texture/", {"retopo_url": "https://e.com/b.obj"}, "original_url"),
    (
        "/v1/tools/bake-texture/",
        {"original_url": "https://e.com/a.obj", "retopo_url": "https://e.com/b.obj"},
        "original_url",
    ),
    (
        "/v1/tools/bake-texture/",
        {"original_url": "https://e.com/a.glb", "retopo_url": "https://e.com/b.stl"},
        "retopo_url",
    ),
    ("/v1/tools/calculate-volume/", {"model_url": "https://e.com/a.glb"}, "target_height"),
    (
        "/v1/tools/calculate-volume/",
        {"model_url": "https://e.com/a.glb", "target_height": 5, "target_heights": "5,10"},
        "target_heights",
    ),
    (
        "/v1/tools/calculate-volume/",
        {"model_url": "https://e.com/a.glb", "target_heights": ",".join(["1"] * 11)},
        "target_heights",
    ),
    (
        "/v1/tools/calculate-volume/",
        {"model_url": "https://e.com/a.glb", "target_heights": "5,x"},
        "target_heights",
    ),
    ("/v1/tools/remove-bg/", {}, "image_url"),
    ("/v1/tools/remove-bg/", {"image_url": "https://e.com/a.jpg", "quality": "max"}, "quality"),
    ("/v1/tools/image-enhance/", {"image_url": "https://e.com/a.jpg", "mode": "x"}, "mode"),
    ("/v1/flow/miniature/", {"preset": "miniature_animal"}, "image"),
    ("/v1/flow/miniature/", {"image": JPEG}, "preset"),
    ("/v1/flow/miniature/", {"image": JPEG, "preset": "miniature_robot"}, "preset"),
    ("/v1/flow/miniature/", {"image": JPEG, "preset": "miniature_animal", "scale": "1:0"}, "scale"),
    (
        "/v1/flow/miniature/",
        {"image": JPEG, "preset": "miniature_animal", "scale": "custom"},
        "scale_height_cm",
    ),
    (
        "/v1/flow/miniature/",
        {"image": JPEG, "preset": "miniature_animal", "scale": "custom", "scale_height_cm": 101},
        "scale_height_cm",
    ),
    (
        "/v1/flow/miniature/",
        {"image": JPEG, "preset": "miniature_animal", "face_count": 2999},
        "face_count",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), IMAGE_REFUSALS, ids=lambda v: None)
def test_new_endpoints_refuse_invalid_fields(shared, path, body, field):
    before = shared.balance()
    response = shared.post(path, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_failed"
    assert response.json()["detail"].startswith(f"{field}: "), response.json()["detail"]
    assert shared.balance() == before


# --- texturing and remeshing ---------------------------------------------------------------


def test_tencent_texture_edit_gives_a_textured_glb(shared):
    body = {"file_url": "https://files.example.invalid/chair.fbx", "prompt": "rusty metal"}
    task_id, [result] = finished(shared, shared.post("/v1/3d-models/tencent/texture-edit/", body))
    assert charged(shared, task_id) == 80
    assert (result["asset_type"], extension(result["asset"])) == ("3D_MODEL", "glb")
    scene = glb_scene(shared.download(result["asset"]).content)
    assert all(g.visual.material.baseColorTexture is not None for g in scene.geometry.values())


def test_tripo_texture_model_takes_a_multipart_upload(shared, glb):
    _, data = glb
    files = {"model": ("chair.glb", data, "model/gltf-binary"), "style_image": ("s.png", PHOTO)}
    fields = {"prompt": "gold leaf", "texture": "true", "pbr": "true", "bake": "true"}
    task_id, [result] = finished(
        shared, upload(shared, "/v1/3d-models/tripo/texture-model/", files, fields)
    )
    assert charged(shared, task_id) == 30  # 20 standard, +10 with a style image
    before = glb_scene(data)
    after = glb_scene(shared.download(result["asset"]).content)
    faces = sum(len(g.faces) for g in after.geometry.values())
    assert faces == sum(len(g.faces) for g in before.geometry.values())


def test_an_omitted_form_boolean_reads_as_false(shared, glb):
    # DRF reads an omitted form boolean as false: texture defaults to true in JSON only.
    files = {"model": ("chair.glb", glb[1])}
    response = upload(shared, "/v1/3d-models/tripo/texture-model/", files, {"prompt": "x"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("texture: Must be true")
    detailed = {"prompt": "x", "texture_quality": "detailed"}
    task_id, _ = finished(
        shared, upload(shared, "/v1/3d-models/tripo/texture-model/", files, detailed)
    )
    assert charged(shared, task_id) == 40


TOPOLOGY = [("OBJ", "obj"), ("FBX", "fbx"), ("STL", "stl"), ("USDZ", "usdz")]


@pytest.mark.parametrize(("fmt", "ext"), TOPOLOGY)
def test_tencent_topology_answers_in_the_output_format(shared, glb, fmt, ext):
    body = {"file_url": glb[0], "output_format": fmt, "face_level": "low"}
    task_id, [result] = finished(shared, shared.post("/v1/3d-models/tencent/topology/", body))
    assert charged(shared, task_id) == 100
    assert (result["asset_type"], extension(result["asset"])) == ("3D_MODEL", ext)
    data = shared.download(result["asset"]).content
    if ext in ("obj", "stl"):
        mesh = trimesh.load(io.BytesIO(data), file_type=ext, force="mesh")
        assert len(mesh.faces) > 10
    else:
        assert data[:2] in (b"PK", b"Ka")


def test_tripo_convert_model_scales_and_charges_for_quad(shared, glb):
    url, data = glb
    fields = {"format": "GLTF", "quad": "true", "scale_factor": "2.0", "bake": "true"}
    task_id, [result] = finished(
        shared,
        upload(shared, "/v1/3d-models/tripo/convert-model/", {"model": ("a.glb", data)}, fields),
    )
    assert charged(shared, task_id) == 20
    assert (result["asset_type"], extension(result["asset"])) == ("3D_MODEL", "glb")
    scaled = glb_scene(shared.download(result["asset"]).content)
    assert scaled.extents.max() == pytest.approx(2 * glb_scene(data).extents.max(), rel=1e-3)
    body = {"model_url": url, "format": "3MF"}
    task_id, [result] = finished(shared, shared.post("/v1/3d-models/tripo/convert-model/", body))
    assert charged(shared, task_id) == 10
    assert extension(result["asset"]) == "3mf"


def test_mesh_segmentation_gives_a_glb_in_parts(shared, glb):
    task_id, [result] = finished(
        shared,
        upload(shared, "/v1/3d-models/tripo/mesh-segmentation/", {"model": ("a.glb", glb[1])}),
    )
    assert charged(shared, task_id) == 80
    scene = glb_scene(shared.download(result["asset"]).content)
    assert len(scene.geometry) >= 4


# --- other tools ---------------------------------------------------------------------------


def test_render_one_still_is_a_transparent_png(shared, glb):
    body = {"model_url": glb[0], "angle": "front", "resolution": 300}
    task_id, [result] = finished(shared, shared.post("/v1/tools/render/", body))
    assert charged(shared, task_id) == 5
    img = picture(shared.download(result["asset"]).content)
    assert (result["asset_type"], img.format, img.size, img.mode) == (
        "IMAGE",
        "PNG",
        (300, 300),
        "RGBA",
    )
    assert img.getchannel("A").getextrema() == (0, 255)


def test_a_turntable_is_one_png_per_step_at_the_video_price(shared, glb):
    body = {"model_url": glb[0], "angle": "turntable_4", "resolution": 128, "background": "white"}
    task_id, results = finished(shared, shared.post("/v1/tools/render/", body))
    assert charged(shared, task_id) == 20
    frames = [shared.download(r["asset"]).content for r in results]
    assert [r["asset_type"] for r in results] == ["IMAGE"] * 4
    assert len(set(frames)) == 4
    assert all(picture(f).mode == "RGB" for f in frames)


def test_a_video_is_one_small_real_mp4_typed_video(shared, glb):
    body = {"model_url": glb[0], "output_type": "video", "resolution": 128}
    task_id, [result] = finished(shared, shared.post("/v1/tools/render/", body))
    assert charged(shared, task_id) == 20
    assert (result["asset_type"], extension(result["asset"])) == ("VIDEO", "mp4")
    answer = shared.download(result["asset"])
    assert answer.headers["Content-Type"] == "video/mp4"
    data = answer.content
    assert data[4:12] == b"ftypisom" and len(data) < 64 * 1024
    # Its top-level boxes cover the file exactly, the movie header before the frames.
    boxes, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append(data[at + 4 : at + 8])
        at += size
    assert at == len(data)
    assert boxes.index(b"moov") < boxes.index(b"mdat")


def test_repair_json_and_multipart(shared, glb):
    body = {"model_url": glb[0], "output_format": "stl", "target_height": 15.0, "unit": "cm"}
    task_id, [result] = finished(shared, shared.post("/v1/tools/repair/", body))
    assert charged(shared, task_id) == 60
    mesh = trimesh.load(io.BytesIO(shared.download(result["asset"]).content), file_type="stl")
    assert mesh.extents[1] == pytest.approx(0.15, rel=1e-3)  # metres
    fields = {"hollow": "true", "wall_thickness": "2.0", "quality": "max"}
    task_id, [result] = finished(
        shared, upload(shared, "/v1/tools/repair/", {"model_file": ("a.glb", glb[1])}, fields)
    )
    assert charged(shared, task_id) == 90
    assert extension(result["asset"]) == "glb"


def test_optimize_takes_only_multipart_and_gives_a_smaller_glb(shared, glb):
    files = {"model_file": ("big.glb", glb[1])}
    task_id, [result] = finished(
        shared, upload(shared, "/v1/tools/optimize/", files, {"preset": "low"})
    )
    assert charged(shared, task_id) == 10
    data = shared.download(result["asset"]).content
    assert len(data) < len(glb[1])
    smaller = glb_scene(data)
    assert sum(len(g.faces) for g in smaller.geometry.values()) < sum(
        len(g.faces) for g in glb_scene(glb[1]).geometry.values()
    )
    refused = upload(shared, "/v1/tools/optimize/", files, {"preset": "max_compression"})
    assert refused.json()["detail"].startswith("preset: ")
    not_glb = upload(shared, "/v1/tools/optimize/", {"model_file": ("a.obj", b"v 0 0 0\n")})
    assert not_glb.json()["detail"].startswith("model_file: ")


def test_optimize_answers_draco_compressed_geometry_when_the_plan_asks(shared, glb):
    import json
    import struct

    import DracoPy

    shared.faults({"draco_optimize": True})
    try:
        files = {"model_file": ("big.glb", glb[1])}
        _, [result] = finished(shared, upload(shared, "/v1/tools/optimize/", files))
    finally:
        shared.faults({})
    data = shared.download(result["asset"]).content
    length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + length])
    assert document["extensionsRequired"] == ["KHR_draco_mesh_compression"]
    binary = data[20 + length + 8 :]
    faces = 0
    for mesh in document["meshes"]:
        for prim in mesh["primitives"]:
            compressed = prim["extensions"]["KHR_draco_mesh_compression"]
            view = document["bufferViews"][compressed["bufferView"]]
            start = view.get("byteOffset", 0)
            decoded = DracoPy.decode(binary[start : start + view["byteLength"]])
            position = decoded.get_attribute_by_unique_id(compressed["attributes"]["POSITION"])
            assert (
                len(position["data"])
                == document["accessors"][prim["attributes"]["POSITION"]]["count"]
            )
            faces += len(decoded.faces)
    assert faces > 10


def test_bake_texture_gives_a_glb(shared, glb):
    body = {"original_url": glb[0], "retopo_url": "https://e.com/low.obj?sig=1"}
    task_id, [result] = finished(shared, shared.post("/v1/tools/bake-texture/", body))
    assert charged(shared, task_id) == 5
    glb_scene(shared.download(result["asset"]).content)


def test_calculate_volume_answers_metadata_without_a_file(shared, glb):
    fields = {"target_heights": "5,10", "unit": "cm"}
    task_id, [result] = finished(
        shared,
        upload(shared, "/v1/tools/calculate-volume/", {"model_file": ("a.glb", glb[1])}, fields),
    )
    assert charged(shared, task_id) == 20
    assert result["asset"] is None
    assert result["asset_type"] == "METADATA"
    meta = result["metadata"]
    assert meta["unit"] == "cm"
    small, large = meta["heights"]
    assert (small["height"], large["height"]) == (5.0, 10.0)
    assert small["bounding_box"][1] == pytest.approx(5.0)
    assert large["volume"] == pytest.approx(8 * small["volume"], rel=1e-3)
    assert large["surface_area"] == pytest.approx(4 * small["surface_area"], rel=1e-3)


def test_remove_bg_cuts_out_or_masks(shared):
    files = {"image_file": ("p.png", image_bytes("PNG", size=(300, 200), color=(250, 250, 250)))}
    task_id, [result] = finished(shared, upload(shared, "/v1/tools/remove-bg/", files))
    assert charged(shared, task_id) == 4
    assert picture(shared.download(result["asset"]).content).mode == "RGBA"
    body = {"image_url": "https://example.com/a.jpg", "quality": "high", "return_mask": True}
    task_id, [result] = finished(shared, shared.post("/v1/tools/remove-bg/", body))
    assert charged(shared, task_id) == 5
    assert picture(shared.download(result["asset"]).content).mode == "L"


def test_image_enhance_upscales_and_can_remove_the_background(shared):
    files = {"image_file": ("p.jpg", image_bytes("JPEG", size=(256, 128)))}
    task_id, results = finished(
        shared, upload(shared, "/v1/tools/image-enhance/", files, {"remove_bg": "true"})
    )
    assert charged(shared, task_id) == 20
    enhanced, cut = (picture(shared.download(r["asset"]).content) for r in results)
    assert [r["asset_type"] for r in results] == ["IMAGE", "IMAGE"]
    assert enhanced.size == (1024, 512)
    assert cut.mode == "RGBA"


def test_miniature_without_scale_gives_the_2d_preview_and_the_model(shared):
    body = {"image": JPEG, "preset": "v3_miniature_human_full_body_waving", "edition": "fast"}
    task_id, results = finished(shared, shared.post("/v1/flow/miniature/", body))
    assert charged(shared, task_id) == 200
    assert [r["asset_type"] for r in results] == ["EDITED_IMAGE", "3D_MODEL"]
    assert picture(shared.download(results[0]["asset"]).content).format == "PNG"
    glb_scene(shared.download(results[1]["asset"]).content)


def test_miniature_with_a_scale_adds_the_scaled_model_and_the_obj_in_mm(shared, tmp_path):
    body = {"image": JPEG, "preset": "miniature_human_full_body", "scale": "h0"}
    task_id, results = finished(shared, shared.post("/v1/flow/miniature/", body))
    assert charged(shared, task_id) == 300
    kinds = [r["asset_type"] for r in results]
    assert kinds == ["EDITED_IMAGE", "3D_MODEL", "SCALED_3D_MODEL", "ARCHIVE"]
    scaled = glb_scene(shared.download(results[2]["asset"]).content)
    assert scaled.extents[1] == pytest.approx(1.75 / 87, rel=1e-3)  # metres
    with zipfile.ZipFile(io.BytesIO(shared.download(results[3]["asset"]).content)) as archive:
        archive.extractall(tmp_path)
        obj = next(n for n in archive.namelist() if n.endswith(".obj"))
    in_mm = trimesh.load(tmp_path / obj, force="scene")
    assert in_mm.extents[1] == pytest.approx(1750 / 87, rel=1e-3)


# --- request encoding ----------------------------------------------------------------------


def test_convert_takes_an_upload_as_model_file(shared, glb):
    files = {"model_file": ("chair.glb", glb[1])}
    task_id, [result] = finished(
        shared, upload(shared, "/v1/tools/convert/", files, {"output_format": "stl"})
    )
    assert charged(shared, task_id) == 10
    mesh = trimesh.load(io.BytesIO(shared.download(result["asset"]).content), file_type="stl")
    assert len(mesh.faces) == sum(len(g.faces) for g in glb_scene(glb[1]).geometry.values())


def test_convert_reads_the_hunyuan_pro_archive_too(shared):
    answer = shared.wait(shared.submit(PRO, {"model": "3.0", "prompt": "a vase"}))
    archive = answer["results"][0]
    assert archive["asset_type"] == "ARCHIVE"
    body = {"model_url": archive["asset"], "output_format": "glb"}
    _, [result] = finished(shared, shared.post("/v1/tools/convert/", body))
    glb_scene(shared.download(result["asset"]).content)


def test_every_endpoint_parses_form_bodies(shared):
    # A form body to a JSON endpoint: text values coerced by the same rules.
    response = shared.http.post(
        shared.url + "/v1/3d-models/tencent/generate/rapid/",
        data={"prompt": "a lamp", "enable_pbr": "yes", "colour": "blue"},
        headers=shared.headers(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert charged(shared, response.json()["task_id"]) == 55


def test_an_upload_needs_a_file_not_text(shared):
    response = upload(shared, "/v1/tools/convert/", {}, {"model_file": "chair.glb"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("model_file: The submitted data was not a file")
    empty = upload(shared, "/v1/tools/convert/", {"model_file": ("a.glb", b"")})
    assert empty.json()["detail"] == "model_file: The submitted file is empty."
    wrong = upload(shared, "/v1/tools/convert/", {"model_file": ("a.glb", b"PK\x03\x04")})
    assert wrong.json()["detail"].startswith("model_file: The file is not a valid GLB")
    both = upload(
        shared,
        "/v1/tools/convert/",
        {"model_file": ("a.glb", b"glTF")},
        {"model_url": "https://e.com/a.glb"},
    )
    assert both.json()["detail"].startswith("model_file: Provide exactly one")


def test_an_upload_over_200_mb_is_refused_before_it_is_read(shared):
    import socket

    with socket.create_connection((shared.server.host, shared.server.port), timeout=5) as conn:
        conn.sendall(
            b"POST /v1/tools/repair/ HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + shared.key.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 300000000\r\n\r\n--b\r\n"
        )
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body) == {
        "detail": "model_file: The file is larger than 209715200 bytes.",
        "code": "validation_failed",
    }


def test_result_file_names_are_unique_per_asset(shared):
    names = set()
    for _ in range(3):
        answer = shared.wait(shared.submit(PRO, {"model": "3.0", "prompt": "a cup"}))
        for result in answer["results"]:
            names.add(urllib.parse.urlsplit(result["asset"]).path.rsplit("/", 1)[-1])
    assert len(names) == 6
    assert all(n.startswith("hunyuan3d_pro_") for n in names)


def test_prices_of_the_tools_are_charged_at_submit(shared):
    before = float(shared.balance())
    shared.submit("/v1/tools/remove-bg/", {"image_url": "https://e.com/a.jpg", "quality": "low"})
    assert float(shared.balance()) == before - 3
    assert requests.get(shared.url + "/v1/tools/remove-bg/", timeout=5).status_code == 405


@pytest.mark.parametrize(
    ("word", "pbr"),
    [("true", True), ("True", True), ("TRUE", True), ("on", True), ("Y", True), (1, True)]
    + [("false", False), ("Off", False), ("NO", False), ("f", False), ("0", False), (0, False)],
)
def test_booleans_read_drf_words_in_every_case_it_knows(shared, word, pbr):
    task_id = shared.submit(
        "/v1/3d-models/tencent/generate/rapid/", {"prompt": "a", "enable_pbr": word}
    )
    assert charged(shared, task_id) == (55 if pbr else 35)


def test_a_numeric_string_is_an_integer_everywhere(shared):
    body = {"prompt": "a", "num_images": "2", "resolution": "4K"}
    task_id = shared.submit("/v1/images/gemini/3/pro/generate/", body)
    assert charged(shared, task_id) == 160
    float_text = {"prompt": "a", "num_images": "2.0"}
    assert shared.post("/v1/images/gemini/2.5/flash/generate/", float_text).status_code == 200
