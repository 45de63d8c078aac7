"""Specification of the sandbox's procedural models and the files made from them."""

import io
import struct
import zipfile
import zlib

import numpy as np
import pygltflib
import pytest
import trimesh
from PIL import Image, ImageDraw
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from sandbox import meshes

# ------------------------------------------------------------------ helpers


def faces_of(scene: trimesh.Scene) -> int:
    return sum(len(g.faces) for g in scene.geometry.values())


def vertices_of(scene: trimesh.Scene) -> int:
    return sum(len(g.vertices) for g in scene.geometry.values())


def primary_material(scene: trimesh.Scene):
    # the first geometry carries the material that the prompt's first colour paints
    return next(iter(scene.geometry.values())).visual.material


def image_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def white_disc_on_black(size: int = 400, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    img = Image.new(mode, (size, size), 0)
    ImageDraw.Draw(img).ellipse(
        [size * 0.2, size * 0.2, size * 0.8, size * 0.8], fill=(255,) * len(mode)
    )
    return image_bytes(img, fmt)


GLB_COMPONENTS = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
GLB_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def check_glb(data: bytes) -> pygltflib.GLTF2:
    """Structural glTF 2.0 check: header, accessors, buffer views, references."""
    assert data[:4] == b"glTF"
    version, length = struct.unpack_from("<II", data, 4)
    assert version == 2
    assert length == len(data)
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    assert gltf.asset.version == "2.0"
    assert not gltf.extensionsRequired
    blob = gltf.binary_blob()
    assert len(gltf.buffers) == 1
    assert gltf.buffers[0].byteLength <= len(blob)
    for view in gltf.bufferViews:
        assert view.buffer == 0
        assert (view.byteOffset or 0) + view.byteLength <= gltf.buffers[0].byteLength
    for acc in gltf.accessors:
        view = gltf.bufferViews[acc.bufferView]
        dtype = np.dtype(GLB_COMPONENTS[acc.componentType])
        width = GLB_WIDTH[acc.type]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        nbytes = acc.count * width * dtype.itemsize
        assert (acc.byteOffset or 0) + nbytes <= view.byteLength
        values = np.frombuffer(blob, dtype=dtype, count=acc.count * width, offset=start)
        values = values.reshape(acc.count, width)
        if acc.min is not None:
            assert np.allclose(values.min(axis=0), acc.min, atol=1e-5)
        if acc.max is not None:
            assert np.allclose(values.max(axis=0), acc.max, atol=1e-5)
    for mesh in gltf.meshes:
        for prim in mesh.primitives:
            position = gltf.accessors[prim.attributes.POSITION]
            assert position.min is not None and position.max is not None
            for attr in ("NORMAL", "TEXCOORD_0"):
                index = getattr(prim.attributes, attr)
                if index is not None:
                    assert gltf.accessors[index].count == position.count
            indices = gltf.accessors[prim.indices]
            assert indices.count % 3 == 0
            view = gltf.bufferViews[indices.bufferView]
            dtype = np.dtype(GLB_COMPONENTS[indices.componentType])
            idx = np.frombuffer(
                blob,
                dtype=dtype,
                count=indices.count,
                offset=(view.byteOffset or 0) + (indices.byteOffset or 0),
            )
            assert idx.max() < position.count
            assert prim.material is not None and prim.material < len(gltf.materials)
    for material in gltf.materials:
        pbr = material.pbrMetallicRoughness
        for tex in (pbr.baseColorTexture, pbr.metallicRoughnessTexture):
            if tex is not None:
                assert gltf.textures[tex.index].source < len(gltf.images)
    for image in gltf.images:
        assert image.mimeType in ("image/png", "image/jpeg")
        assert image.bufferView < len(gltf.bufferViews)
    return gltf


def read_fbx(data: bytes) -> dict:
    """A tiny binary FBX 7.4 reader: {name: [(properties, children), ...]} recursively."""
    assert data[:23] == b"Kaydara FBX Binary  \x00\x1a\x00"
    assert struct.unpack_from("<I", data, 23)[0] == 7400

    def prop(pos: int):
        code = chr(data[pos])
        pos += 1
        scalar = {"Y": "<h", "C": "<?", "I": "<i", "F": "<f", "D": "<d", "L": "<q"}
        if code in scalar:
            (value,) = struct.unpack_from(scalar[code], data, pos)
            return value, pos + struct.calcsize(scalar[code])
        if code in "SR":
            (n,) = struct.unpack_from("<I", data, pos)
            raw = data[pos + 4 : pos + 4 + n]
            return (raw.decode() if code == "S" else raw), pos + 4 + n
        count, encoding, n = struct.unpack_from("<III", data, pos)
        raw = data[pos + 12 : pos + 12 + n]
        if encoding == 1:
            raw = zlib.decompress(raw)
        dtype = {"i": "<i4", "l": "<i8", "f": "<f4", "d": "<f8", "b": "u1"}[code]
        arr = np.frombuffer(raw, dtype=dtype)
        assert len(arr) == count
        return arr, pos + 12 + n

    def nodes(pos: int, end: int) -> tuple[dict, int]:
        out: dict = {}
        while pos < end:
            end_offset, nprops, _, name_len = struct.unpack_from("<IIIB", data, pos)
            if end_offset == 0:  # null record closes the list
                return out, pos + 13
            name = data[pos + 13 : pos + 13 + name_len].decode()
            cur = pos + 13 + name_len
            props = []
            for _ in range(nprops):
                value, cur = prop(cur)
                props.append(value)
            children: dict = {}
            if cur < end_offset:
                children, cur = nodes(cur, end_offset)
            assert cur == end_offset
            out.setdefault(name, []).append((props, children))
            pos = end_offset
        return out, pos

    tree, pos = nodes(27, len(data))
    assert data[-16:] == bytes.fromhex("f85a8c6adef5d97eece90ce3758f290b")
    assert pos < len(data) - 16
    return tree


def rgba_of_texture_or_factor(material) -> np.ndarray:
    if isinstance(material, PBRMaterial):
        if material.baseColorTexture is not None:
            return np.asarray(material.baseColorTexture.convert("RGB"), float).mean(axis=(0, 1))
        return np.asarray(material.baseColorFactor[:3], float)
    if material.image is not None:
        return np.asarray(material.image.convert("RGB"), float).mean(axis=(0, 1))
    return np.asarray(material.diffuse[:3], float)


# ------------------------------------------------------------ determinism


def test_same_prompt_and_seed_give_identical_files():
    a = meshes.glb_bytes(meshes.model_from_prompt("a red wooden chair", 7))
    b = meshes.glb_bytes(meshes.model_from_prompt("a red wooden chair", 7))
    assert a == b


def test_another_seed_or_prompt_gives_another_model():
    base = meshes.glb_bytes(meshes.model_from_prompt("a red wooden chair", 7))
    assert meshes.glb_bytes(meshes.model_from_prompt("a red wooden chair", 8)) != base
    assert meshes.glb_bytes(meshes.model_from_prompt("a blue wooden chair", 7)) != base


def test_all_exports_are_deterministic():
    scene = meshes.model_from_prompt("robot", 3)
    again = meshes.model_from_prompt("robot", 3)
    assert meshes.obj_zip_bytes(scene) == meshes.obj_zip_bytes(again)
    assert meshes.fbx_bytes(scene) == meshes.fbx_bytes(again)
    assert meshes.thumbnail_png(scene) == meshes.thumbnail_png(again)


def test_image_models_are_deterministic():
    data = white_disc_on_black()
    a = meshes.glb_bytes(meshes.model_from_image(data, 1))
    assert a == meshes.glb_bytes(meshes.model_from_image(data, 1))
    assert a != meshes.glb_bytes(meshes.model_from_image(data, 2))


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
    "prompt, height_range",
    [
        ("a chair", (0.8, 1.1)),
        ("a table", (0.65, 0.85)),
        ("a car", (1.2, 1.8)),
        ("a tree", (3.5, 7.0)),
        ("a house", (4.0, 7.0)),
        ("a robot", (1.5, 2.3)),
        ("a sword", (0.8, 1.2)),
        ("a coffee mug", (0.08, 0.14)),
        ("a vase", (0.25, 0.55)),
        ("a desk lamp", (0.4, 0.75)),
        ("a rock", (0.2, 0.9)),
        ("a castle tower", (10.0, 22.0)),
        ("a rocket", (5.5, 9.0)),
        ("a mushroom", (0.12, 0.35)),
        ("a dragon", (1.5, 4.0)),
        ("a knight character", (1.55, 1.95)),
    ],
)
def test_keywords_give_real_sized_objects_standing_on_the_ground(prompt, height_range):
    scene = meshes.model_from_prompt(prompt, 1)
    lo, hi = scene.bounds
    assert height_range[0] <= hi[1] - lo[1] <= height_range[1]
    assert lo[1] == pytest.approx(0.0, abs=1e-4)
    assert (lo[0] + hi[0]) / 2 == pytest.approx(0.0, abs=1e-4)
    assert (lo[2] + hi[2]) / 2 == pytest.approx(0.0, abs=1e-4)


def test_shape_words_change_the_geometry():
    chair = meshes.model_from_prompt("a chair", 1).extents
    car = meshes.model_from_prompt("a car", 1).extents
    # a car is long and low, a chair about as tall as it is wide twice over
    assert car[0] > 3.5 and car[0] > 2.5 * car[1]
    assert chair[1] > 1.5 * chair[0]


def test_the_head_noun_of_a_compound_wins():
    lamp = meshes.model_from_prompt("desk lamp", 1)
    table = meshes.model_from_prompt("desk", 1)
    assert not np.allclose(lamp.extents, table.extents)
    assert lamp.extents[1] < 0.8 and lamp.extents[0] < 0.4


def test_unknown_prompts_fall_back_to_a_stable_hashed_shape():
    a = meshes.model_from_prompt("a xylophone made of thoughts", 1)
    b = meshes.model_from_prompt("a xylophone made of thoughts", 1)
    assert faces_of(a) == faces_of(b) > 500
    assert np.allclose(a.extents, b.extents)


# ---------------------------------------------------------------- materials


def test_colour_words_paint_the_primary_material():
    plain = meshes.model_from_prompt("a red car", 1, textured=False)
    factor = np.asarray(primary_material(plain).baseColorFactor[:3], float)
    assert factor[0] > 2 * factor[1] and factor[0] > 2 * factor[2]
    textured = meshes.model_from_prompt("a blue vase", 1)
    mean = rgba_of_texture_or_factor(primary_material(textured))
    assert mean[2] > 1.5 * mean[0] and mean[2] > mean[1]


def test_material_words_set_metal_and_roughness():
    metal = primary_material(meshes.model_from_prompt("a metal chair", 1))
    wood = primary_material(meshes.model_from_prompt("a wooden chair", 1))
    assert metal.metallicFactor == pytest.approx(1.0)
    assert wood.metallicFactor == pytest.approx(0.0)
    assert wood.roughnessFactor > metal.roughnessFactor


def test_a_second_colour_paints_the_secondary_material():
    scene = meshes.model_from_prompt("a red and white car", 1, textured=False)
    trim = scene.geometry["model_trim"].visual.material
    assert min(trim.baseColorFactor[:3]) > 200


def test_pbr_gives_metallic_roughness_and_no_pbr_a_plain_material():
    pbr = primary_material(meshes.model_from_prompt("golden sword", 1, pbr=True))
    plain = primary_material(meshes.model_from_prompt("golden sword", 1, pbr=False))
    assert isinstance(pbr, PBRMaterial)
    assert pbr.metallicRoughnessTexture is not None
    assert pbr.metallicFactor == pytest.approx(1.0)
    assert isinstance(plain, SimpleMaterial)
    gltf = check_glb(meshes.glb_bytes(meshes.model_from_prompt("golden sword", 1, pbr=False)))
    for material in gltf.materials:
        # an unset metallicFactor would read as 1.0 in <model-viewer>
        assert material.pbrMetallicRoughness.metallicFactor == 0.0
        assert material.pbrMetallicRoughness.metallicRoughnessTexture is None


def test_textured_adds_an_image_and_uvs():
    textured = meshes.model_from_prompt("a chair", 1, textured=True)
    bare = meshes.model_from_prompt("a chair", 1, textured=False)
    tex = primary_material(textured).baseColorTexture
    assert tex.size == (512, 512)
    assert len(np.unique(np.asarray(tex).reshape(-1, 3), axis=0)) > 1000
    assert primary_material(bare).baseColorTexture is None
    assert len(check_glb(meshes.glb_bytes(textured)).images) >= 2
    assert len(check_glb(meshes.glb_bytes(bare)).images) == 0


# -------------------------------------------------------------- face counts


def test_low_poly_reduces_faces_and_shades_flat():
    normal = meshes.model_from_prompt("a tree", 1)
    low = meshes.model_from_prompt("a tree", 1, low_poly=True)
    assert faces_of(low) * 5 < faces_of(normal)
    # flat shading: every triangle has its own three corners
    assert vertices_of(low) == 3 * faces_of(low)


def test_default_budget_is_tens_of_thousands_of_faces():
    for prompt in ("a chair", "a car", "a dragon", "a vase", "something unheard of"):
        assert 10_000 <= faces_of(meshes.model_from_prompt(prompt, 2)) <= 40_000


@pytest.mark.parametrize("target", [500, 2_000, 10_000, 60_000])
@pytest.mark.parametrize("prompt", ["a chair", "a rocket", "a horse"])
def test_face_target_is_respected_within_a_factor_of_two(prompt, target):
    faces = faces_of(meshes.model_from_prompt(prompt, 1, face_target=target))
    assert target / 2 <= faces <= target * 2


def test_face_target_for_images_is_respected_within_a_factor_of_two():
    data = white_disc_on_black()
    for target in (2_000, 20_000, 80_000):
        faces = faces_of(meshes.model_from_image(data, 1, face_target=target))
        assert target / 2 <= faces <= target * 2


# ------------------------------------------------------------------- images


def test_a_white_disc_on_black_gives_a_disc_shaped_footprint():
    scene = meshes.model_from_image(white_disc_on_black(), 1)
    v = np.concatenate([g.vertices for g in scene.geometry.values()])
    lo, hi = v.min(axis=0), v.max(axis=0)
    width, height = hi[0] - lo[0], hi[1] - lo[1]
    assert width == pytest.approx(height, rel=0.05)
    centre = (lo + hi) / 2
    radius = np.hypot(v[:, 0] - centre[0], v[:, 1] - centre[1])
    # every vertex lies inside the disc, none in the black corners of the square
    assert radius.max() <= width / 2 * 1.04
    # the relief is thickest in the middle and thin at the rim
    front = v[:, 2]
    assert front[radius < width * 0.1].max() > 2 * front[radius > width * 0.48].max()


def test_the_silhouette_follows_transparency():
    img = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle([30, 50, 120, 150], fill=(20, 200, 30, 255))
    scene = meshes.model_from_image(image_bytes(img), 1)
    ext = scene.extents
    # a 91 x 101 px rectangle of a 300 px wide image, 1 m across for the longest side
    assert ext[0] == pytest.approx(91 / 300, rel=0.1)
    assert ext[1] == pytest.approx(101 / 300, rel=0.1)
    mean = rgba_of_texture_or_factor(primary_material(scene))
    assert mean[1] > mean[0]


@pytest.mark.parametrize("fmt, mode", [("PNG", "L"), ("JPEG", "RGB"), ("WEBP", "RGB")])
def test_image_formats_and_modes_are_understood(fmt, mode):
    scene = meshes.model_from_image(white_disc_on_black(256, mode=mode, fmt=fmt), 1)
    assert scene.extents[0] == pytest.approx(0.6, rel=0.08)
    tex = primary_material(scene).baseColorTexture
    assert tex.mode == "RGB" and max(tex.size) == 256


def test_huge_images_are_downscaled_first():
    scene = meshes.model_from_image(white_disc_on_black(5000, fmt="JPEG"), 1)
    assert max(primary_material(scene).baseColorTexture.size) == 512
    assert scene.extents[0] == pytest.approx(0.6, rel=0.05)


def test_a_photo_without_plain_background_becomes_a_slab():
    rng = np.random.default_rng(0)
    photo = Image.fromarray((rng.random((200, 300, 3)) * 255).astype(np.uint8))
    scene = meshes.model_from_image(image_bytes(photo, "JPEG"), 1)
    assert scene.extents[0] == pytest.approx(1.0, rel=0.03)
    assert scene.extents[1] == pytest.approx(200 / 300, rel=0.05)


def test_multi_view_uses_the_side_view_for_depth_and_the_back_for_texture():
    front = white_disc_on_black()
    thin = Image.new("RGB", (400, 400), 0)
    ImageDraw.Draw(thin).rectangle([190, 80, 210, 320], fill="white")
    wide = Image.new("RGB", (400, 400), 0)
    ImageDraw.Draw(wide).rectangle([80, 80, 320, 320], fill="white")
    slim = meshes.model_from_images([front, image_bytes(thin)], 1)
    deep = meshes.model_from_images([front, image_bytes(wide)], 1)
    assert deep.extents[2] > 3 * slim.extents[2]
    with_back = meshes.model_from_images([front, image_bytes(wide), front], 1)
    tex = primary_material(with_back).baseColorTexture
    assert tex.width == 2 * tex.height


def test_untextured_image_models_take_the_mean_colour():
    img = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(img).rectangle([60, 60, 200, 200], fill=(200, 30, 30))
    scene = meshes.model_from_image(image_bytes(img), 1, textured=False)
    material = primary_material(scene)
    assert material.baseColorTexture is None
    factor = np.asarray(material.baseColorFactor[:3], float)
    assert factor[0] > 3 * factor[1]


# ------------------------------------------------------------------ exports


@pytest.mark.parametrize(
    "scene_factory",
    [
        lambda: meshes.model_from_prompt("a green dragon", 4),
        lambda: meshes.model_from_prompt("glass bottle", 4, textured=False),
        lambda: meshes.model_from_prompt("low poly house", 4, low_poly=True, pbr=False),
        lambda: meshes.model_from_image(white_disc_on_black(), 4),
        lambda: meshes.model_from_images([white_disc_on_black()] * 3, 4, pbr=False),
    ],
)
def test_glb_is_structurally_valid_and_loads_back(scene_factory):
    scene = scene_factory()
    data = meshes.glb_bytes(scene)
    gltf = check_glb(data)
    assert len(gltf.meshes) == len(scene.geometry)
    loaded = trimesh.load(io.BytesIO(data), file_type="glb")
    assert faces_of(loaded) == faces_of(scene)
    assert vertices_of(loaded) == vertices_of(scene)
    assert np.allclose(loaded.bounds, scene.bounds, atol=1e-4)


def test_glb_is_a_few_megabytes_at_most_by_default():
    size = len(meshes.glb_bytes(meshes.model_from_prompt("a chair", 1)))
    assert 300_000 < size < 4_000_000


def test_obj_zip_round_trips_through_trimesh():
    scene = meshes.model_from_prompt("a red car", 2)
    data = meshes.obj_zip_bytes(scene)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names[:2] == ["model.obj", "model.mtl"]
    mtl = zipfile.ZipFile(io.BytesIO(data)).read("model.mtl").decode()
    for line in mtl.splitlines():
        if line.startswith("map_Kd"):
            assert line.split()[1] in names
    loaded = trimesh.load(io.BytesIO(data), file_type="zip", process=False)
    assert faces_of(loaded) == faces_of(scene)
    assert vertices_of(loaded) == vertices_of(scene)
    textures = [g.visual.material.image for g in loaded.geometry.values()]
    assert any(t is not None and t.size == (512, 512) for t in textures)


def test_obj_zip_of_an_untextured_model_has_colours_and_no_images():
    scene = meshes.model_from_prompt("a red car", 2, textured=False)
    data = meshes.obj_zip_bytes(scene)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == ["model.obj", "model.mtl"]
    mtl = zipfile.ZipFile(io.BytesIO(data)).read("model.mtl").decode()
    body = mtl.split("newmtl model_body")[1].split("newmtl")[0]
    kd = [float(x) for x in body.split("Kd ")[1].split()[:3]]
    assert kd[0] > 0.6 and kd[1] < 0.3


def test_fbx_parses_back_with_matching_geometry():
    scene = meshes.model_from_prompt("a robot", 5)
    tree = read_fbx(meshes.fbx_bytes(scene))
    for name in ("FBXHeaderExtension", "GlobalSettings", "Objects", "Connections"):
        assert name in tree
    objects = tree["Objects"][0][1]
    geometries = objects["Geometry"]
    assert len(geometries) == len(objects["Model"]) == len(objects["Material"])
    assert len(geometries) == len(scene.geometry)
    vertices = sum(len(g[1]["Vertices"][0][0][0]) // 3 for g in geometries)
    assert vertices == vertices_of(scene)
    polygons = sum(int((g[1]["PolygonVertexIndex"][0][0][0] < 0).sum()) for g in geometries)
    assert polygons == faces_of(scene)
    connections = tree["Connections"][0][1]["C"]
    ids = {props[0] for kind in objects.values() for props, _ in kind}
    for props, _ in connections:
        assert props[1] in ids and (props[2] == 0 or props[2] in ids)
    videos = objects.get("Video", [])
    assert videos and videos[0][1]["Content"][0][0][0][:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- thumbnail


def test_thumbnail_is_a_picture_of_the_object_in_its_colour():
    scene = meshes.model_from_prompt("a red vase", 1)
    png = meshes.thumbnail_png(scene, size=200)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (200, 200)
    pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 500
    centre = np.asarray(img.convert("RGB"))[80:120, 80:120].reshape(-1, 3).astype(float)
    red = (centre[:, 0] > 1.6 * centre[:, 1]) & (centre[:, 0] > 1.6 * centre[:, 2])
    assert red.mean() > 0.8


def test_thumbnail_of_an_image_model_shows_the_image():
    img = Image.new("RGB", (300, 300), "black")
    ImageDraw.Draw(img).ellipse([40, 40, 260, 260], fill=(30, 60, 220))
    png = meshes.thumbnail_png(meshes.model_from_image(image_bytes(img), 1), size=128)
    centre = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[48:80, 48:80]
    mean = centre.reshape(-1, 3).mean(axis=0)
    assert mean[2] > 1.5 * mean[0]


if __name__ == "__main__":  # benchmark: .venv/bin/python tests/sandbox/test_meshes.py
    import time

    def timed(label, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        return out, f"{label} {time.perf_counter() - start:.3f}s"

    for prompt in ("a wooden chair", "red sports car", "green dragon", "castle tower", "xyzzy"):
        for kw in ({}, {"low_poly": True}, {"textured": False}, {"face_target": 100_000}):
            scene, t1 = timed("build", meshes.model_from_prompt, prompt, 1, **kw)
            glb, t2 = timed("glb", meshes.glb_bytes, scene)
            _, t3 = timed("zip", meshes.obj_zip_bytes, scene)
            _, t4 = timed("fbx", meshes.fbx_bytes, scene)
            _, t5 = timed("thumb", meshes.thumbnail_png, scene)
            print(
                f"{prompt:16} {kw!s:24} faces={faces_of(scene):6} glb={len(glb) / 1e6:.2f}MB",
                t1,
                t2,
                t3,
                t4,
                t5,
            )
    for size in (256, 2048, 5000):
        data = white_disc_on_black(size, fmt="JPEG")
        scene, t1 = timed("build", meshes.model_from_image, data, 1)
        glb, t2 = timed("glb", meshes.glb_bytes, scene)
        print(f"image {size}px faces={faces_of(scene)} glb={len(glb) / 1e6:.2f}MB", t1, t2)
