"""The facts of a GLB (counts, textures, bounding box, size), read without loading it.

A GLB is a 12-byte header, a JSON chunk and a BIN chunk. Everything we report is
described by the JSON: vertex and index counts are accessor counts, and the glTF
spec requires every POSITION accessor to carry its min and max. Texture sizes
are in the first bytes of each image. So we read the JSON chunk and a few
hundred bytes per image, and memory stays bounded by the JSON's size however
large the geometry is (loading a 200 MB model with trimesh costs over 400 MB).

Positions are read only where the JSON cannot answer: a POSITION accessor
without min/max, or a mesh instanced under a rotation, where the exact box of
the rotated points (what trimesh reports) is not the rotated box. They are
streamed from the BIN chunk in bounded slices.

Every count and offset comes from an untrusted file, so each is checked against
the bytes that are really there before it is used; a file that does not add up
raises GlbError (a ValueError).
"""

import json
import math
import struct
from pathlib import Path

import numpy as np

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
MAX_JSON_BYTES = 32 * 1024 * 1024
# glTF indices are at most uint32, so no meaningful accessor has more elements.
MAX_COUNT = 2**32
SLICE_POINTS = 1 << 16  # positions streamed per read: 768 KB of float32 xyz
MAX_IMAGE_SEGMENTS = 1000  # JPEG markers walked before giving up on a header

COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
COMPONENT_DTYPES = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
TRIANGLES = 4


class GlbError(ValueError):
    """The GLB's structure does not add up."""


def glb_facts(path: Path) -> dict:
    """Vertices, faces, materials, textures, bounding box and bytes of a GLB."""
    path = Path(path)
    with open(path, "rb") as fh:
        glb = _Glb(fh, path.stat().st_size)
        vertices = 0
        faces = 0
        for mesh in glb.list("meshes"):
            for prim in mesh.get("primitives") or []:
                position = glb.accessor(prim.get("attributes", {}).get("POSITION"))
                count = position["count"]
                vertices += count
                if prim.get("mode", TRIANGLES) in (None, TRIANGLES):
                    if prim.get("indices") is not None:
                        count = glb.accessor(prim["indices"])["count"]
                    faces += count // 3
        return {
            "vertices": vertices,
            "faces": faces,
            "materials": len(glb.list("materials")),
            "textures": [
                glb.image_size(image) for image in glb.list("images") if "bufferView" in image
            ],
            "dimensions": glb.dimensions(),
            "bytes": glb.size,
        }


# Geometry compression a reader must decode before it can see any vertex.
COMPRESSION = {
    "KHR_draco_mesh_compression": "Draco",
    "EXT_meshopt_compression": "meshopt",
    "KHR_meshopt_compression": "meshopt",
}


def compression(data: bytes) -> list:
    """The names of the geometry compressions a GLB (its first bytes are enough: the
    header and the JSON chunk) requires, e.g. ["Draco"]; [] for plain geometry."""
    import io

    required = _Glb(io.BytesIO(data), len(data)).json.get("extensionsRequired") or []
    if not isinstance(required, list):
        raise GlbError("The GLB's extensionsRequired is not a list")
    return sorted({COMPRESSION[name] for name in required if name in COMPRESSION})


class _Glb:
    def __init__(self, fh, size):
        self.fh = fh
        self.size = size
        header = fh.read(20)
        if len(header) < 20:
            raise GlbError("The GLB is truncated (no header)")
        magic, version, _length, json_len, json_type = struct.unpack("<4sIIII", header)
        if magic != GLB_MAGIC or version != 2:
            raise GlbError("The file is not a glTF 2.0 binary")
        if json_type != CHUNK_JSON:
            raise GlbError("The GLB has no JSON chunk")
        if json_len > MAX_JSON_BYTES:
            raise GlbError(f"The GLB's JSON chunk is {json_len:,} bytes, over the cap")
        raw = fh.read(json_len)
        if len(raw) < json_len:
            raise GlbError("The GLB's JSON chunk is truncated")
        try:
            self.json = json.loads(raw)
        except ValueError:
            raise GlbError("The GLB's JSON chunk does not parse") from None
        if not isinstance(self.json, dict):
            raise GlbError("The GLB's JSON chunk is not an object")
        # The BIN chunk, if any, follows the JSON chunk (padded to 4 bytes by the spec).
        self.bin_start, self.bin_length = None, 0
        bin_header = fh.read(8)
        if len(bin_header) == 8:
            bin_len, bin_type = struct.unpack("<II", bin_header)
            start = 20 + json_len + 8
            if bin_type == CHUNK_BIN:
                if start + bin_len > size:
                    raise GlbError("The GLB's BIN chunk is truncated")
                self.bin_start, self.bin_length = start, bin_len
        self._boxes = {}

    # --- the JSON, checked as it is read ---------------------------------------------------

    def list(self, key):
        value = self.json.get(key, [])
        if not isinstance(value, list):
            raise GlbError(f"The GLB's {key} is not a list")
        return value

    def item(self, key, index):
        items = self.list(key)
        if not _is_size(index) or index >= len(items):
            raise GlbError(f"The GLB refers to {key}[{index!r}], which is missing")
        if not isinstance(items[index], dict):
            raise GlbError(f"The GLB's {key}[{index}] is not an object")
        return items[index]

    def accessor(self, index):
        accessor = self.item("accessors", index)
        count = accessor.get("count")
        if not _is_size(count) or count > MAX_COUNT:
            raise GlbError(f"The GLB's accessor {index} has an impossible count {count!r}")
        if accessor.get("bufferView") is not None:
            self._view_of(accessor)  # an accessor must fit in the bytes it claims
        return accessor

    def _buffer_range(self, view_index):
        """(start in the file or None when outside the GLB, length) of a buffer view."""
        view = self.item("bufferViews", view_index)
        offset, length = view.get("byteOffset", 0), view.get("byteLength")
        buffer = self.item("buffers", view.get("buffer"))
        if not all(_is_size(x) for x in (offset, length, buffer.get("byteLength"))):
            raise GlbError(f"The GLB's buffer view {view_index} has a bad range")
        if offset + length > buffer["byteLength"]:
            raise GlbError(f"The GLB's buffer view {view_index} runs past its buffer")
        if view["buffer"] != 0 or "uri" in buffer or self.bin_start is None:
            return None, length  # an external or data: buffer, not in the BIN chunk
        if offset + length > self.bin_length:
            raise GlbError(f"The GLB's buffer view {view_index} runs past the BIN chunk")
        return self.bin_start + offset, length

    def _view_of(self, accessor):
        """(file offset of the first element, stride, dtype, components) of an accessor."""
        view_index = accessor["bufferView"]
        start, length = self._buffer_range(view_index)
        dtype = COMPONENT_DTYPES.get(accessor.get("componentType"))
        components = COMPONENTS.get(accessor.get("type"))
        offset = accessor.get("byteOffset", 0)
        if dtype is None or components is None or not _is_size(offset):
            raise GlbError("The GLB has an accessor of an unknown type")
        element = dtype.itemsize * components
        stride = self.item("bufferViews", view_index).get("byteStride") or element
        count = accessor["count"]
        if not _is_size(stride) or stride < element:
            raise GlbError(f"The GLB's buffer view {view_index} has a bad stride")
        if count and offset + stride * (count - 1) + element > length:
            raise GlbError(f"The GLB has an accessor of {count:,} elements its view cannot hold")
        return (None if start is None else start + offset), stride, dtype, components

    # --- the bounding box ------------------------------------------------------------------

    def dimensions(self):
        """Width, height and depth of the scene's box, as trimesh's ``scene.extents`` reports."""
        if not self.list("meshes"):
            return [0, 0, 0]
        lows, highs = [], []
        for mesh_index, matrix in self._instances():
            for prim in self.item("meshes", mesh_index).get("primitives") or []:
                position = self.accessor(prim.get("attributes", {}).get("POSITION"))
                if position["count"] == 0:
                    continue
                low, high = self._instance_box(position, matrix)
                lows.append(low)
                highs.append(high)
        if not lows:
            return [0, 0, 0]
        extents = np.max(highs, axis=0) - np.min(lows, axis=0)
        return [round(float(x), 4) for x in extents]

    def _instances(self):
        """(mesh index, world matrix) of every mesh placed by the default scene's nodes.

        Like trimesh: the scene named by ``scene`` (else the first); each parent-child
        edge is followed once, so a cyclic or shared hierarchy cannot loop or explode.
        """
        scenes = self.list("scenes")
        if not scenes:
            return
        scene = self.item("scenes", self.json.get("scene", 0))
        stack = [(root, np.eye(4)) for root in scene.get("nodes") or []]
        followed = set()
        while stack:
            index, parent = stack.pop()
            node = self.item("nodes", index)
            matrix = parent @ _local_matrix(node)
            if node.get("mesh") is not None:
                self.item("meshes", node["mesh"])
                yield node["mesh"], matrix
            for child in node.get("children") or []:
                if (index, child) not in followed:
                    followed.add((index, child))
                    stack.append((child, matrix))

    def _instance_box(self, accessor, matrix):
        rotation, translation = matrix[:3, :3], matrix[:3, 3]
        # Under a scale, a translation or a quarter-turn each axis maps to one axis, so the
        # transformed box is exact; under another rotation only the points give it.
        if np.count_nonzero(rotation, axis=1).max() <= 1 or not self._readable(accessor):
            low, high = self._local_box(accessor)
            lower = np.minimum(rotation * low, rotation * high).sum(axis=1)
            upper = np.maximum(rotation * low, rotation * high).sum(axis=1)
            return lower + translation, upper + translation
        low, high = self._stream_box(accessor, rotation)
        return low + translation, high + translation

    def _local_box(self, accessor):
        key = id(accessor)
        if key not in self._boxes:
            low, high = accessor.get("min"), accessor.get("max")
            if _is_vector(low) and _is_vector(high):
                box = np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)
                box = tuple(_denormalise(b, accessor) for b in box)
            elif self._readable(accessor):
                box = self._stream_box(accessor, np.eye(3))
            else:
                raise GlbError("The GLB has a POSITION accessor without min/max or data")
            self._boxes[key] = box
        return self._boxes[key]

    def _readable(self, accessor):
        """Whether the accessor's points can be streamed from the BIN chunk."""
        return (
            accessor.get("bufferView") is not None
            and "sparse" not in accessor
            and self._view_of(accessor)[0] is not None
        )

    def _stream_box(self, accessor, rotation):
        """Exact box of ``rotation @ p`` over the accessor's points, SLICE_POINTS at a time."""
        start, stride, dtype, components = self._view_of(accessor)
        if components != 3:
            raise GlbError("The GLB has a POSITION accessor that is not VEC3")
        low, high = np.full(3, np.inf), np.full(3, -np.inf)
        count = accessor["count"]
        for first in range(0, count, SLICE_POINTS):
            n = min(SLICE_POINTS, count - first)
            self.fh.seek(start + first * stride)
            raw = self.fh.read(stride * (n - 1) + dtype.itemsize * 3)
            points = np.ndarray((n, 3), dtype, raw, strides=(stride, dtype.itemsize))
            moved = rotation @ _denormalise(points.astype(np.float64), accessor).T
            low = np.minimum(low, moved.min(axis=1))
            high = np.maximum(high, moved.max(axis=1))
        return low, high

    # --- textures ----------------------------------------------------------------------------

    def image_size(self, image):
        """Width, height and format of an embedded image, from its header bytes only."""
        unknown = {"width": None, "height": None, "format": image.get("mimeType")}
        try:
            start, length = self._buffer_range(image["bufferView"])
        except GlbError:
            return unknown
        if start is None:
            return unknown
        self.fh.seek(start)
        head = self.fh.read(min(length, 32))
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
            width, height = struct.unpack(">II", head[16:24])
            return {"width": width, "height": height, "format": "PNG"}
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            size = _webp_size(head)
            return {"width": size[0], "height": size[1], "format": "WEBP"} if size else unknown
        if head[:3] == b"\xff\xd8\xff":
            size = _jpeg_size(self.fh, start, length)
            return {"width": size[0], "height": size[1], "format": "JPEG"} if size else unknown
        return unknown


def _is_size(value):
    """A count, index or offset: a non-negative integer (JSON true is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_vector(value):
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(x, int | float) and math.isfinite(x) for x in value)
    )


def _denormalise(values, accessor):
    """Normalised integer components stand for [-1, 1] or [0, 1] (KHR_mesh_quantization)."""
    if not accessor.get("normalized"):
        return values
    dtype = COMPONENT_DTYPES[accessor.get("componentType")]
    if dtype.kind == "f":
        return values
    limit = float(np.iinfo(dtype).max)
    return np.maximum(values / limit, -1.0) if dtype.kind == "i" else values / limit


def _local_matrix(node):
    """A node's transform: its matrix, else translation * rotation * scale (glTF order)."""
    try:
        if "matrix" in node:
            matrix = np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T  # column-major
        else:
            matrix = np.eye(4)
            if "translation" in node:
                matrix[:3, 3] = np.array(node["translation"], dtype=np.float64).reshape(3)
            if "rotation" in node:
                x, y, z, w = np.array(node["rotation"], dtype=np.float64).reshape(4)
                matrix[:3, :3] = _quaternion_matrix(x, y, z, w)
            if "scale" in node:
                matrix[:3, :3] = matrix[:3, :3] * np.array(node["scale"], dtype=np.float64)
    except (TypeError, ValueError):
        raise GlbError("The GLB has a node with a malformed transform") from None
    if not np.isfinite(matrix).all():
        raise GlbError("The GLB has a node with a non-finite transform")
    return matrix


def _quaternion_matrix(x, y, z, w):
    """Rotation matrix of a quaternion, normalised first as trimesh does."""
    norm = x * x + y * y + z * z + w * w
    if norm < np.finfo(np.float64).eps * 4:
        return np.eye(3)
    s = 2.0 / norm
    return np.array(
        [
            [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
            [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
            [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
        ]
    )


def _webp_size(head):
    """Canvas size from a WebP's first chunk: VP8X, lossless VP8L or lossy VP8."""
    kind = head[12:16]
    if kind == b"VP8X" and len(head) >= 30:
        return (
            int.from_bytes(head[24:27], "little") + 1,
            int.from_bytes(head[27:30], "little") + 1,
        )
    if kind == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


# Start-of-frame markers carry the size; C4 (Huffman), C8 and CC (arithmetic) do not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg_size(fh, start, length):
    """Walk a JPEG's marker segments, seeking past each, to its start-of-frame."""
    position = 2  # after SOI
    for _ in range(MAX_IMAGE_SEGMENTS):
        if position + 4 > length:
            return None
        fh.seek(start + position)
        segment = fh.read(9)
        if segment[0] != 0xFF:
            return None
        marker = segment[1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan began without a frame
            return None
        if marker in _JPEG_SOF:
            if len(segment) < 9:
                return None
            height, width = struct.unpack(">HH", segment[5:9])
            return width, height
        position += 2 + struct.unpack(">H", segment[2:4])[0]
    return None
