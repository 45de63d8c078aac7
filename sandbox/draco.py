"""Draco-compressed GLBs, as the upstream's optimize tool answers ("Draco and texture
compression plus simplification"): every triangle primitive's geometry moves into one
``KHR_draco_mesh_compression`` buffer made by Google's Draco encoder (DracoPy), and its
accessors keep only their count, type and bounds (the extension's rule). Materials,
textures, nodes and the rest of the file are kept as they were.
"""

import json
import struct

import numpy as np

EXTENSION = "KHR_draco_mesh_compression"
COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
DTYPES = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
# Draco's attribute types (draco/attributes/geometry_attribute.h).
POSITION, NORMAL, COLOR, TEX_COORD = 0, 1, 2, 3


def read_glb(data):
    """(the JSON document, the BIN chunk's bytes) of a GLB."""
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20 : 20 + json_length])
    at = 20 + json_length
    binary = b""
    if at + 8 <= len(data):
        bin_length = struct.unpack_from("<I", data, at)[0]
        binary = data[at + 8 : at + 8 + bin_length]
    return document, binary


def write_glb(document, binary):
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + (8 + len(binary) if binary else 0)
    out = struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
    if binary:
        out += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return out


def _array(document, binary, index):
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    dtype = np.dtype(DTYPES[accessor["componentType"]])
    components = COMPONENTS[accessor["type"]]
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    stride = view.get("byteStride") or dtype.itemsize * components
    rows = np.ndarray(
        (accessor["count"], components), dtype, binary, start, (stride, dtype.itemsize)
    )
    if accessor.get("normalized") and dtype.kind in "ui":
        return rows.astype(np.float64) / np.iinfo(dtype).max
    return rows.copy()


def compress(data, quantization_bits=14):
    """The GLB ``data`` with its triangle geometry Draco-compressed."""
    import DracoPy

    document, binary = read_glb(data)
    if document.get("animations") or document.get("skins"):
        raise ValueError("a GLB with animations or skins is not compressed here")
    out = bytearray()
    views = []

    def add_view(chunk):
        out.extend(b"\0" * (-len(out) % 4))
        views.append({"buffer": 0, "byteOffset": len(out), "byteLength": len(chunk)})
        out.extend(chunk)
        return len(views) - 1

    # Images keep their bytes; every other buffer view was geometry, encoded below.
    for image in document.get("images", []):
        if "bufferView" in image:
            view = document["bufferViews"][image["bufferView"]]
            start = view.get("byteOffset", 0)
            image["bufferView"] = add_view(binary[start : start + view["byteLength"]])
    for mesh in document.get("meshes", []):
        for prim in mesh.get("primitives", []):
            if prim.get("mode", 4) != 4:
                raise ValueError("only triangle primitives are compressed")
            names = prim["attributes"]
            points = _array(document, binary, names["POSITION"])
            if prim.get("indices") is not None:
                faces = _array(document, binary, prim["indices"]).reshape(-1, 3)
            else:
                faces = np.arange(len(points), dtype=np.uint32).reshape(-1, 3)
            kwargs = {}
            if "NORMAL" in names:
                kwargs["normals"] = _array(document, binary, names["NORMAL"]).astype(np.float64)
            if "TEXCOORD_0" in names:
                kwargs["tex_coord"] = _array(document, binary, names["TEXCOORD_0"]).astype(
                    np.float64
                )
            if "COLOR_0" in names:
                colours = _array(document, binary, names["COLOR_0"])[:, :3]
                kwargs["colors"] = np.clip(colours * 255 + 0.5, 0, 255).astype(np.uint8)
            encoded = DracoPy.encode(
                points.astype(np.float32),
                faces.astype(np.uint32),
                quantization_bits=quantization_bits,
                **kwargs,
            )
            # The encoder numbers the attributes itself: read the numbers back by type.
            decoded = DracoPy.decode(encoded)
            ids = {
                "POSITION": POSITION,
                "NORMAL": NORMAL,
                "TEXCOORD_0": TEX_COORD,
                "COLOR_0": COLOR,
            }
            attributes = {
                name: decoded.get_attribute_by_type(kind)["unique_id"]
                for name, kind in ids.items()
                if name in names
            }
            prim.setdefault("extensions", {})[EXTENSION] = {
                "bufferView": add_view(encoded),
                "attributes": attributes,
            }
            for name in list(names):
                if name not in attributes:
                    del names[name]  # not carried by the compressed geometry
            if prim.get("indices") is None:
                document["accessors"].append({"componentType": 5125, "type": "SCALAR"})
                prim["indices"] = len(document["accessors"]) - 1
            # The extension's accessors describe the decoded data: Draco may split or merge
            # vertices and quantises positions, so counts and bounds are the decoded ones.
            points = np.asarray(decoded.points)
            for index in [*names.values(), prim["indices"]]:
                accessor = document["accessors"][index]
                accessor.pop("bufferView", None)
                accessor.pop("byteOffset", None)
                accessor["count"] = len(points)
            document["accessors"][prim["indices"]]["count"] = int(np.asarray(decoded.faces).size)
            bounds = document["accessors"][names["POSITION"]]
            bounds["min"] = points.min(axis=0).tolist()
            bounds["max"] = points.max(axis=0).tolist()
            colour = names.get("COLOR_0")
            if colour is not None:  # now unsigned bytes, normalised, RGB
                document["accessors"][colour].update(
                    componentType=5121, normalized=True, type="VEC3"
                )
    document["bufferViews"] = views
    document["buffers"] = [{"byteLength": len(out)}]
    for key in ("extensionsUsed", "extensionsRequired"):
        document[key] = sorted({*document.get(key, []), EXTENSION})
    return write_glb(document, bytes(out))
