"""GLB facts read from the JSON chunk and image headers: the same figures trimesh and
PIL give by loading the whole model, refusals for files that do not add up, and
memory bounded however large the geometry."""

import io
import json
import struct
import tracemalloc

import numpy as np
import pytest
import trimesh
from PIL import Image

from generations import glbfacts
from generations.glbfacts import GlbError, glb_facts
from sandbox import meshes

# --- building and rewriting GLBs --------------------------------------------------------------


def pack_glb(document, blob=b""):
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text
    if blob:
        chunks += struct.pack("<I4s", len(blob), b"BIN\0") + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def unpack_glb(data):
    (json_len,) = struct.unpack_from("<I", data, 12)
    document = json.loads(data[20 : 20 + json_len])
    (bin_len,) = struct.unpack_from("<I", data, 20 + json_len)
    return document, data[28 + json_len : 28 + json_len + bin_len]


def rewritten(data, change):
    document, blob = unpack_glb(data)
    change(document)
    return pack_glb(document, blob)


def without_min_max(document):
    for accessor in document["accessors"]:
        accessor.pop("min", None)
        accessor.pop("max", None)


def write(tmp_path, data, name="model.glb"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def reference_facts(path):
    """The facts as trimesh, pygltflib and PIL give them by loading the whole file."""
    from pygltflib import GLTF2

    gltf = GLTF2().load_binary(str(path))
    blob = gltf.binary_blob() or b""
    vertices = faces = 0
    for mesh in gltf.meshes:
        for prim in mesh.primitives:
            count = gltf.accessors[prim.attributes.POSITION].count
            vertices += count
            if prim.mode in (None, 4):
                indices = prim.indices
                faces += (gltf.accessors[indices].count if indices is not None else count) // 3
    textures = []
    for image in gltf.images:
        if image.bufferView is None:
            continue
        view = gltf.bufferViews[image.bufferView]
        start = view.byteOffset or 0
        with Image.open(io.BytesIO(blob[start : start + view.byteLength])) as im:
            textures.append({"width": im.width, "height": im.height, "format": im.format})
    scene = trimesh.load(str(path), file_type="glb", force="scene")
    return {
        "vertices": vertices,
        "faces": faces,
        "materials": len(gltf.materials),
        "textures": textures,
        "dimensions": [round(float(x), 4) for x in scene.extents],
        "bytes": path.stat().st_size,
    }


def rotated_hierarchy():
    """A sandbox chair under a rotated, scaled parent, with one part placed twice."""
    source = meshes.model_from_prompt("a wooden chair", 5)
    scene = trimesh.Scene()
    parent = trimesh.transformations.rotation_matrix(0.7, [1, 0.5, 0.2])
    parent[:3, :3] *= 1.5
    parent[:3, 3] = [3, -2, 1]
    scene.graph.update(frame_from=scene.graph.base_frame, frame_to="parent", matrix=parent)
    for i, node in enumerate(source.graph.nodes_geometry):
        _, geometry = source.graph[node]
        turn = trimesh.transformations.rotation_matrix(0.4 * (i + 1), [0, 1, 0.3])
        scene.add_geometry(
            source.geometry[geometry], node_name=node, parent_node_name="parent", transform=turn
        )
    _, first = source.graph[source.graph.nodes_geometry[0]]
    scene.add_geometry(source.geometry[first], node_name="again", transform=np.diag([2, 1, 1, 1]))
    return scene.export(file_type="glb")


SANDBOX_MODELS = {
    "textured chair": lambda: meshes.glb_bytes(meshes.model_from_prompt("a red wooden chair", 7)),
    "low poly tree": lambda: meshes.glb_bytes(meshes.model_from_prompt("a tree", 3, low_poly=True)),
    "untextured dragon": lambda: meshes.glb_bytes(
        meshes.model_from_prompt("a golden dragon statue", 11, textured=False)
    ),
    "relief from an image": lambda: meshes.glb_bytes(
        meshes.model_from_image(meshes.thumbnail_png(meshes.model_from_prompt("a cat", 1)), 2)
    ),
    "rotated hierarchy": rotated_hierarchy,
}


# --- the same facts as loading the model ------------------------------------------------------


@pytest.mark.parametrize("name", SANDBOX_MODELS)
def test_it_reports_what_loading_the_whole_model_reports(tmp_path, name):
    path = write(tmp_path, SANDBOX_MODELS[name]())
    facts = glb_facts(path)
    assert facts == reference_facts(path)
    assert facts["vertices"] > 0 and facts["faces"] > 0 and min(facts["dimensions"]) > 0


def test_textured_sandbox_models_report_their_texture_sizes(tmp_path):
    path = write(tmp_path, SANDBOX_MODELS["textured chair"]())
    textures = glb_facts(path)["textures"]
    assert textures and all(t["format"] == "PNG" and t["width"] > 0 for t in textures)


@pytest.mark.parametrize("name", ["textured chair", "rotated hierarchy"])
def test_without_min_max_it_streams_the_positions_to_the_same_box(tmp_path, name):
    original = write(tmp_path, SANDBOX_MODELS[name](), "original.glb")
    stripped = write(tmp_path, rewritten(original.read_bytes(), without_min_max))
    assert glb_facts(stripped)["dimensions"] == reference_facts(original)["dimensions"]


def test_a_model_under_a_rotation_has_the_box_of_its_points_not_of_its_rotated_box(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=3)  # radius 1
    scene = trimesh.Scene()
    scene.add_geometry(
        sphere, transform=trimesh.transformations.rotation_matrix(np.pi / 4, [0, 0, 1])
    )
    path = write(tmp_path, scene.export(file_type="glb"))
    width, height, depth = glb_facts(path)["dimensions"]
    assert [width, height, depth] == reference_facts(path)["dimensions"]
    assert 1.9 < width <= 2.0 and 1.9 < height <= 2.0  # the turned box would be 2.83 wide


def test_a_matrix_or_a_translation_rotation_scale_place_the_mesh_alike(tmp_path):
    data = trimesh.creation.box(extents=(1, 2, 3)).export(file_type="glb")

    def trs(document):
        document["nodes"][0] = {
            "mesh": 0,
            "scale": [2, 1, 1],
            "rotation": [0, 0, 0.7071068, 0.7071068],
        }

    def matrix(document):  # the same transform, column-major
        document["nodes"][0] = {
            "mesh": 0,
            "matrix": [0, 2, 0, 0, -1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
        }

    for change in (trs, matrix):
        assert glb_facts(write(tmp_path, rewritten(data, change)))["dimensions"] == [2.0, 2.0, 3.0]


def test_non_indexed_triangles_count_a_face_per_three_vertices(tmp_path):
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]] * 4, dtype="<f4")
    document = {
        "asset": {"version": "2.0"},
        "buffers": [{"byteLength": positions.nbytes}],
        "bufferViews": [{"buffer": 0, "byteLength": positions.nbytes}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": 12,
                "type": "VEC3",
                "min": [0, 0, 0],
                "max": [1, 1, 0],
            },
        ],  # fmt: skip
        "meshes": [
            {
                "primitives": [
                    {"attributes": {"POSITION": 0}},
                    {"attributes": {"POSITION": 0}, "mode": 1},
                ]
            }
        ],
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    facts = glb_facts(write(tmp_path, pack_glb(document, positions.tobytes())))
    assert (facts["vertices"], facts["faces"], facts["dimensions"]) == (24, 4, [1.0, 1.0, 0.0])


# --- textures from their headers ---------------------------------------------------------------


def encoded(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def with_jpeg_segments(jpeg, count, size):
    """Big APP segments before the frame header, as cameras write EXIF and ICC data."""
    segment = b"\xff\xe2" + struct.pack(">H", size + 2) + b"\x00" * size
    return jpeg[:2] + segment * count + jpeg[2:]


def glb_with_images(images):
    blob, views, entries = b"", [], []
    for data, mime in images:
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
        entries.append({"bufferView": len(views) - 1, "mimeType": mime})
        blob += data + b"\0" * (-len(data) % 4)
    return pack_glb(
        {"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(blob)}],
         "bufferViews": views, "images": entries + [{"uri": "elsewhere.png"}]},
        blob,
    )  # fmt: skip


def test_png_jpeg_and_webp_sizes_come_from_their_headers(tmp_path):
    rgb = Image.new("RGB", (300, 170), (200, 30, 40))
    rgba = Image.new("RGBA", (64, 40), (0, 0, 0, 128))
    images = [
        (encoded(rgb, "PNG"), "image/png"),
        (encoded(rgb, "JPEG"), "image/jpeg"),
        (encoded(rgb, "JPEG", progressive=True), "image/jpeg"),
        (with_jpeg_segments(encoded(rgb, "JPEG"), 3, 60000), "image/jpeg"),
        (encoded(rgb, "WEBP", quality=80), "image/webp"),
        (encoded(rgb, "WEBP", lossless=True), "image/webp"),
        (encoded(rgba, "WEBP", quality=80), "image/webp"),  # alpha: an extended VP8X file
        (b"\xabKTX 20\xbb\r\n\x1a\n" + b"\0" * 64, "image/ktx2"),
        (b"\xff\xd8\xff\xda" + b"\0" * 40, "image/jpeg"),  # a scan before any frame
    ]
    path = write(tmp_path, glb_with_images(images))
    expected = []
    for data, mime in images:
        try:
            with Image.open(io.BytesIO(data)) as im:
                expected.append({"width": im.width, "height": im.height, "format": im.format})
        except Exception:  # noqa: BLE001 - what PIL cannot read is reported unknown
            expected.append({"width": None, "height": None, "format": mime})
    assert glb_facts(path)["textures"] == expected
    assert expected[6] == {"width": 64, "height": 40, "format": "WEBP"}
    assert expected[-1]["width"] is None


# --- files that do not add up -----------------------------------------------------------------


def box_glb():
    return trimesh.creation.box(extents=(1, 2, 3)).export(file_type="glb")


def test_a_truncated_json_chunk_is_refused(tmp_path):
    data = box_glb()
    (json_len,) = struct.unpack_from("<I", data, 12)
    with pytest.raises(GlbError, match="truncated"):
        glb_facts(write(tmp_path, data[: 20 + json_len // 2]))


def test_a_json_chunk_that_does_not_parse_is_refused(tmp_path):
    data = bytearray(box_glb())
    data[20] = ord("[")
    data[21] = ord("}")
    with pytest.raises(GlbError, match="does not parse"):
        glb_facts(write(tmp_path, bytes(data)))


def test_a_json_chunk_larger_than_the_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(glbfacts, "MAX_JSON_BYTES", 64)
    with pytest.raises(GlbError, match="over the cap"):
        glb_facts(write(tmp_path, box_glb()))


def test_a_missing_accessor_is_refused(tmp_path):
    def dangling(document):
        document["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = 99

    with pytest.raises(GlbError, match=r"accessors\[99\]"):
        glb_facts(write(tmp_path, rewritten(box_glb(), dangling)))


def test_a_file_without_accessors_is_refused(tmp_path):
    with pytest.raises(GlbError, match="missing"):
        glb_facts(write(tmp_path, rewritten(box_glb(), lambda d: d.pop("accessors"))))


@pytest.mark.parametrize("count", [10**12, -1, 2.5, True, "8"])
def test_an_absurd_count_is_refused(tmp_path, count):
    def absurd(document):
        document["accessors"][0]["count"] = count  # the box's indices

    with pytest.raises(GlbError):
        glb_facts(write(tmp_path, rewritten(box_glb(), absurd)))


def test_a_count_beyond_any_index_is_refused_even_without_data(tmp_path):
    def viewless(document):
        for accessor in document["accessors"]:
            accessor.pop("bufferView")
            accessor["count"] = 2**40

    with pytest.raises(GlbError, match="impossible count"):
        glb_facts(write(tmp_path, rewritten(box_glb(), viewless)))


def test_a_view_past_the_binary_chunk_is_refused(tmp_path):
    def past(document):
        document["bufferViews"][0]["byteOffset"] = 10**9

    with pytest.raises(GlbError, match="runs past"):
        glb_facts(write(tmp_path, rewritten(box_glb(), past)))


def test_positions_without_min_max_or_data_are_refused(tmp_path):
    def nothing(document):
        without_min_max(document)
        for accessor in document["accessors"]:
            accessor.pop("bufferView")

    with pytest.raises(GlbError, match="without min/max"):
        glb_facts(write(tmp_path, rewritten(box_glb(), nothing)))


def test_a_cyclic_node_hierarchy_ends(tmp_path):
    def cycle(document):
        document["nodes"] = [{"mesh": 0, "children": [1]}, {"children": [0]}]
        document["scenes"] = [{"nodes": [0]}]

    assert glb_facts(write(tmp_path, rewritten(box_glb(), cycle)))["dimensions"] == [1, 2, 3]


def test_a_malformed_transform_is_refused(tmp_path):
    def bad(document):
        document["nodes"][0]["matrix"] = [1, 2, 3]

    with pytest.raises(GlbError, match="malformed transform"):
        glb_facts(write(tmp_path, rewritten(box_glb(), bad)))


def test_a_file_that_is_not_a_glb_is_refused(tmp_path):
    with pytest.raises(GlbError, match="not a glTF"):
        glb_facts(write(tmp_path, b"PK\x03\x04" + b"\0" * 40))


# --- bounded memory ---------------------------------------------------------------------------


def big_glb(path, vertices, *, rotated):
    """A GLB whose BIN chunk holds ``vertices`` positions, written sparsely (all zeros)
    but for the two corner points, so the test costs disk metadata, not memory."""
    body = vertices * 12
    accessor = {"bufferView": 0, "componentType": 5126, "count": vertices, "type": "VEC3"}
    node = {"mesh": 0}
    if rotated:  # 45 degrees about z, and no min/max: the points must be read
        node["rotation"] = [0, 0, 0.38268343, 0.92387953]
    else:
        accessor.update(min=[-1, -2, -3], max=[4, 5, 6])
    document = {
        "asset": {"version": "2.0"},
        "buffers": [{"byteLength": body}],
        "bufferViews": [{"buffer": 0, "byteLength": body}],
        "accessors": [accessor],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "nodes": [node],
        "scenes": [{"nodes": [0]}],
    }
    head = pack_glb(document)
    head = head[:8] + struct.pack("<I", len(head) + 8 + body) + head[12:]
    with open(path, "wb") as out:
        out.write(head + struct.pack("<I4s", body, b"BIN\0"))
        out.write(np.array([-1, -2, -3], dtype="<f4").tobytes())
        out.seek(len(head) + 8 + body - 12)
        out.write(np.array([4, 5, 6], dtype="<f4").tobytes())
    return path


@pytest.mark.parametrize(
    "rotated, dimensions",
    [
        (False, [5.0, 7.0, 9.0]),  # from the accessor's min/max alone
        # streamed: the points (0,0,0), (-1,-2,-3) and (4,5,6) turned 45 degrees about z
        (True, [1.4142, 8.4853, 9.0]),
    ],
)
def test_a_large_model_costs_little_memory(tmp_path, rotated, dimensions):
    path = big_glb(tmp_path / "big.glb", 4_000_000, rotated=rotated)  # 48 MB
    tracemalloc.start()
    try:
        facts = glb_facts(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts["vertices"] == 4_000_000 and facts["faces"] == 1_333_333
    assert facts["dimensions"] == dimensions
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
