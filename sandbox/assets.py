"""Result files: building them from the task's seed, signing their URLs, odd formats.

Files are built once per task, on the first download, from `sandbox.meshes`,
and cached in `<assets dir>/<task_id>/`. They are written to a temporary name and
renamed, so a reader never sees half a file.
"""

import hashlib
import hmac
import io
import random
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import trimesh

from sandbox import meshes

_build_locks = {}
_build_locks_guard = threading.Lock()


def sign(secret, task_id, filename, expires):
    message = f"{task_id}/{filename}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_url(base, secret, task_id, filename, expires):
    query = urllib.parse.urlencode(
        {"expires": expires, "signature": sign(secret, task_id, filename, expires)}
    )
    return f"{base}/storage/{task_id}/{filename}?{query}"


def check_signature(secret, task_id, filename, expires, signature, now=None):
    """Returns None when valid, else "expired" or "bad"."""
    try:
        expires = int(expires)
    except (TypeError, ValueError):
        return "bad"
    if not hmac.compare_digest(sign(secret, task_id, filename, expires), signature or ""):
        return "bad"
    if (now or time.time()) > expires:
        return "expired"
    return None


def _lock_for(task_id):
    with _build_locks_guard:
        return _build_locks.setdefault(task_id, threading.Lock())


def ensure_files(task_dir, task_id, job, seed, load_source):
    """Build every result file of a task unless they are already on disk."""
    task_dir = Path(task_dir)
    wanted = [task_dir / f"{r['name']}.{r['ext']}" for r in job["results"]]
    if all(p.exists() for p in wanted):
        return
    with _lock_for(task_id):
        if all(p.exists() for p in wanted):
            return
        task_dir.mkdir(parents=True, exist_ok=True)
        scene = _scene_for(task_dir, job, seed, load_source)
        for result, path in zip(job["results"], wanted, strict=True):
            data = _encode(scene, result, job)
            temp = path.with_suffix(path.suffix + ".tmp")
            temp.write_bytes(data)
            temp.replace(path)


def _scene_for(task_dir, job, seed, load_source):
    options = dict(job["mesh"])
    images = [p.read_bytes() for p in sorted(task_dir.glob("input-*.bin"))]
    if job["kind"] == "convert":
        return load_source(job["options"]["model_url"], seed)
    if job["kind"] == "prompt":
        return meshes.model_from_prompt(job["prompt"], seed, **options)
    options.pop("low_poly", None)
    if job["kind"] == "image" or len(images) == 1:
        return meshes.model_from_image(images[0], seed, **options)
    return meshes.model_from_images(images, seed, **options)


def _encode(scene, result, job):
    ext = result["ext"]
    if job["kind"] == "convert":
        return convert(scene, job["options"]["output_format"])
    if ext == "glb":
        return meshes.glb_bytes(scene)
    if ext == "zip":
        return meshes.obj_zip_bytes(scene)
    if ext == "fbx":
        return meshes.fbx_bytes(scene)
    if ext == "png":
        return meshes.thumbnail_png(scene)
    raise ValueError(f"no encoder for {ext}")


def convert(scene, output_format):
    if output_format == "glb":
        return meshes.glb_bytes(scene)
    if output_format == "obj_zip":
        return meshes.obj_zip_bytes(scene)
    if output_format == "fbx":
        return meshes.fbx_bytes(scene)
    if output_format == "fbx_zip":
        return _zip({"model.fbx": meshes.fbx_bytes(scene)})
    mesh = _single_mesh(scene)
    if output_format in ("obj", "stl", "ply"):
        data = mesh.export(file_type=output_format)
        return data.encode() if isinstance(data, str) else data
    if output_format == "usdz":
        return usdz_bytes(mesh)
    if output_format == "3mf":
        return three_mf_bytes(mesh)
    raise ValueError(output_format)


def _single_mesh(scene):
    if isinstance(scene, trimesh.Trimesh):
        return scene
    return scene.to_geometry()


def _zip(files):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def usdz_bytes(mesh):
    """A minimal USDZ: an uncompressed ZIP whose one .usda member starts 64-byte aligned
    (USD readers map the member in place and require the alignment)."""
    points = ", ".join(f"({x:.6f}, {y:.6f}, {z:.6f})" for x, y, z in mesh.vertices)
    counts = ", ".join("3" for _ in mesh.faces)
    indices = ", ".join(str(int(i)) for i in mesh.faces.reshape(-1))
    usda = (
        '#usda 1.0\n(\n    defaultPrim = "Model"\n    upAxis = "Y"\n)\n\n'
        'def Xform "Model"\n{\n    def Mesh "Mesh"\n    {\n'
        f"        int[] faceVertexCounts = [{counts}]\n"
        f"        int[] faceVertexIndices = [{indices}]\n"
        f"        point3f[] points = [{points}]\n"
        "    }\n}\n"
    ).encode()
    name = "model.usda"
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = 30 + len(name)  # the member is the first thing in the file
    padding = (-(header + 4)) % 64
    # An "extra" block of unknown id 0x1986 carrying only zero bytes pads the header.
    info.extra = (0x1986).to_bytes(2, "little") + padding.to_bytes(2, "little") + b"\0" * padding
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(info, usda)
    return out.getvalue()


def three_mf_bytes(mesh):
    """A minimal 3MF package (trimesh's own writer needs networkx, which we do not ship)."""
    vertices = "".join(
        f'<vertex x="{x:.6f}" y="{y:.6f}" z="{z:.6f}"/>' for x, y, z in mesh.vertices
    )
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in mesh.faces)
    model = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<model unit="millimeter" xml:lang="en-US" '
        'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
        f'<resources><object id="1" type="model"><mesh><vertices>{vertices}</vertices>'
        f"<triangles>{triangles}</triangles></mesh></object></resources>"
        '<build><item objectid="1"/></build></model>'
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="model" '
        'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
        'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
    )
    return _zip(
        {"[Content_Types].xml": content_types, "_rels/.rels": rels, "3D/3dmodel.model": model}
    )


def load_model_bytes(data, ext):
    """Load a model for the convert tool; None when trimesh cannot read it."""
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type=ext, force="scene")
    except Exception:
        return None
    return loaded if len(loaded.geometry) else None


def corrupt_bytes(seed, size):
    """Bytes that are no known model format: no glTF, PK or FBX magic at the start."""
    rng = random.Random(seed)
    body = rng.randbytes(max(size - 16, 0))
    return b"\x00CORRUPTED-DATA\x00" + body


def content_type(ext):
    return {
        "glb": "model/gltf-binary",
        "zip": "application/zip",
        "png": "image/png",
        "fbx": "application/octet-stream",
        "obj": "text/plain",
        "stl": "model/stl",
        "ply": "application/octet-stream",
        "usdz": "model/vnd.usdz+zip",
        "3mf": "model/3mf",
    }.get(ext, "application/octet-stream")
