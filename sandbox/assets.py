"""Result files: building them from the task's seed, signing their URLs, odd formats.

Files are built once per task, on the first download, from `sandbox.meshes`,
and cached in `<assets dir>/<task_id>/`. They are written to a temporary name and
renamed, so a reader never sees half a file.
"""

import hashlib
import hmac
import io
import json
import random
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageColor
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

from sandbox import draco, images, meshes, video

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


def file_name(result):
    return f"{result['name']}.{result['ext']}"


def thumbnail_name(result):
    """The old status shape's per-item thumbnail (see `old_status_shape`)."""
    return f"{result['name']}_thumbnail.png"


def served_files(job):
    """Every downloadable file of a task: name -> (result, is it the result's thumbnail)."""
    files = {}
    for result in job["results"]:
        if result["asset_type"] == "METADATA":
            continue  # facts in the status answer, no file
        files[file_name(result)] = (result, False)
        files[thumbnail_name(result)] = (result, True)
    return files


def _write(path, data):
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_bytes(data)
    temp.replace(path)


def ensure_files(task_dir, task_id, job, seed, load_source):
    """Build every result file of a task unless they are already on disk."""
    task_dir = Path(task_dir)
    wanted = [(r, task_dir / file_name(r)) for r in job["results"]]
    if all(p.exists() for _, p in wanted):
        return
    with _lock_for(task_id):
        if all(p.exists() for _, p in wanted):
            return
        task_dir.mkdir(parents=True, exist_ok=True)
        build = Build(task_dir, job, seed, load_source)
        for result, path in wanted:
            if not path.exists():
                _write(path, build.encode(result))


def read_served(task_dir, filename, entry):
    """A served file's bytes; a thumbnail is made from its result file on first use."""
    result, is_thumbnail = entry
    path = Path(task_dir) / filename
    if is_thumbnail and not path.exists():
        source = (Path(task_dir) / file_name(result)).read_bytes()
        _write(path, _thumbnail_of(source, result["ext"]))
    return path.read_bytes()


def _thumbnail_of(data, ext):
    if ext in ("png", "jpg", "webp", "gif"):
        img = Image.open(io.BytesIO(data)).convert("RGBA")
        img.thumbnail((256, 256), Image.Resampling.LANCZOS)
        return images.encode(img, "png")
    scene = load_model_bytes(data, ext)
    if scene is None:  # FBX, USDZ, 3MF: formats trimesh does not read back
        scene = meshes.model_from_prompt(hashlib.sha256(data).hexdigest(), 0)
    return meshes.thumbnail_png(scene)


UNIT_METRES = {"mm": 0.001, "cm": 0.01, "m": 1.0, "in": 0.0254}


class Build:
    """Builds the result files of one task; the scene is made once, when first needed."""

    def __init__(self, task_dir, job, seed, load_source):
        self.task_dir = task_dir
        self.job = job
        self.seed = seed
        self.load_source = load_source
        self.options = job.get("options") or {}
        self.inputs = [p.read_bytes() for p in sorted(task_dir.glob("input-*.bin"))]
        self._scene = None

    @property
    def scene(self):
        if self._scene is None:
            self._scene = self._make_scene()
        return self._scene

    def _make_scene(self):
        job = self.job
        options = dict(job["mesh"])
        if job["kind"] == "convert":  # tasks stored before sources were recorded
            return self.load_source(self.options["model_url"], self.seed)
        if job["kind"] == "model":
            return self.source("source")
        if job["kind"] == "prompt":
            return meshes.model_from_prompt(job["prompt"], self.seed, **options)
        options.pop("low_poly", None)
        if job["kind"] == "image" or len(self.inputs) == 1:
            return meshes.model_from_image(self.inputs[0], self.seed, **options)
        return meshes.model_from_images(self.inputs, self.seed, **options)

    def source(self, role):
        """The model an endpoint starts from: an upload in the task folder, or a URL."""
        where = self.options[role]
        if "file" in where:
            data = (self.task_dir / where["file"]).read_bytes()
            scene = load_model_bytes(data, where["ext"])
            if scene is None:  # a format trimesh cannot read: a stand-in from its bytes
                scene = meshes.model_from_prompt(hashlib.sha256(data).hexdigest(), self.seed)
            return scene
        return self.load_source(where["url"], self.seed)

    def encode(self, result):
        role = result.get("role") or ""
        if role:
            return getattr(self, "make_" + role)(result)
        if self.job["kind"] == "convert":
            return convert(self.scene, self.options["output_format"])
        ext = result["ext"]
        if ext == "glb":
            return meshes.glb_bytes(self.scene)
        if ext == "zip":
            return meshes.obj_zip_bytes(self.scene)
        if ext == "fbx":
            return meshes.fbx_bytes(self.scene)
        if ext == "png":
            return meshes.thumbnail_png(self.scene)
        raise ValueError(f"no encoder for {ext}")

    # --- models ---------------------------------------------------------------------------

    def make_thumbnail(self, result):
        return meshes.thumbnail_png(self.scene)

    def make_convert(self, result):
        scene = self.scene
        max_size = self.options.get("max_size")
        if max_size:
            wanted = max_size * UNIT_METRES[self.options.get("unit") or "cm"]
            scene = scene.scaled(wanted / max(float(scene.extents.max()), 1e-9))
        return convert(scene, self.options["output_format"])

    def make_retexture(self, result):
        if self.inputs:
            texture = images.open_rgb(self.inputs[0], 512).convert("RGB")
        else:
            texture = images.generate(self.job.get("prompt") or "texture", self.seed, 512, 512)
        return meshes.glb_bytes(retexture(self.scene, texture, self.options.get("pbr", True)))

    def make_bake(self, result):
        original = self.source("material_source")
        texture = first_texture(original)
        if texture is None:
            texture = meshes.render_image(original, 256)
        return meshes.glb_bytes(retexture(self.scene, texture.convert("RGB"), True))

    def make_remesh(self, result):
        scene = self.scene
        if self.options.get("scale", 1.0) != 1.0:
            scene = scene.scaled(self.options["scale"])
        level = self.options.get("face_level")
        if level in ("medium", "low") or self.options.get("face_limit"):
            scene = simplified(scene, {"medium": 90, "low": 45}.get(level, 60))
        return convert(scene, self.options["output_format"])

    def make_segment(self, result):
        return meshes.glb_bytes(segmented(self.scene))

    def make_optimize(self, result):
        low = self.options.get("preset") == "low"
        data = meshes.glb_bytes(simplified(self.scene, 40 if low else 80, texture_side=256))
        return draco.compress(data) if self.options.get("draco") else data

    def make_repair(self, result):
        scene = self.scene
        height = self.options.get("target_height")
        if height:
            wanted = height * UNIT_METRES[self.options.get("unit") or "cm"]
            scene = scene.scaled(wanted / max(float(scene.extents[1]), 1e-9))
        return convert(repaired(scene), self.options["output_format"])

    def make_volume(self, result):
        mesh = _single_mesh(self.scene)
        own_height = max(float(mesh.extents[1]), 1e-9)
        heights = []
        for height in self.options["heights"]:
            f = height / own_height  # the answer is in the request's unit
            heights.append(
                {
                    "height": float(height),
                    "volume": round(abs(float(mesh.volume)) * f**3, 4),
                    "surface_area": round(float(mesh.area) * f**2, 4),
                    "bounding_box": [round(float(e) * f, 4) for e in mesh.extents],
                }
            )
        return json.dumps({"unit": self.options["unit"], "heights": heights}).encode()

    def make_scaled(self, result):
        return meshes.glb_bytes(self.scaled_scene())

    def make_scaled_obj(self, result):
        # OBJ in millimetres by default: the multiplier turns metres into the OBJ's unit.
        return meshes.obj_zip_bytes(self.scaled_scene().scaled(self.options["obj_multiplier"]))

    def scaled_scene(self):
        scene = self.scene
        return scene.scaled(self.options["height_m"] / max(float(scene.extents[1]), 1e-9))

    # --- pictures -------------------------------------------------------------------------

    def picture_size(self):
        if "size" in self.options:  # Seedream: a named size, capped like the others
            width, height = self.options["size"]
            scale = min(1.0, images.MAX_SIDE / max(width, height))
            return round(width * scale), round(height * scale)
        return images.size_for(self.options["aspect_ratio"], self.options["long_side"])

    def make_picture(self, result):
        width, height = self.picture_size()
        seed = self.seed if self.options.get("seed") is None else self.options["seed"]
        img = images.generate(self.job["prompt"], (seed, result["params"]["index"]), width, height)
        return images.encode(img, self.options.get("format") or "png")

    def make_edit(self, result):
        width, height = self.picture_size()
        key = (self.seed, result["params"]["index"])
        img = images.edit(self.inputs, self.job["prompt"], key, width, height)
        return images.encode(img, self.options.get("format") or "png")

    def make_cutout(self, result):
        params = result["params"]
        source = self.inputs[0]
        if params.get("enhanced"):
            source = images.encode(images.enhance(source, params["enhanced"]), "png")
        return images.encode(images.cutout(source, params["quality"], params["mask"]), "png")

    def make_enhance(self, result):
        return images.encode(images.enhance(self.inputs[0], result["params"]["mode"]), "png")

    def make_styled(self, result):
        return images.encode(images.styled(self.inputs[0], self.seed), "png")

    def make_render(self, result):
        return images.encode(self.render(result["params"], self.options["size"]), "png")

    def make_video(self, result):
        return video.TURNTABLE_MP4

    def render(self, params, size):
        background = self.options.get("background") or "transparent"
        img = meshes.render_image(
            self.scene,
            size,
            yaw=params["yaw"],
            pitch=params["pitch"],
            transparent=True,
            shadow=self.options.get("shadow", True),
        )
        if background == "transparent":
            return img
        try:
            colour = ImageColor.getrgb(background)
        except ValueError:
            colour = (236, 236, 240)  # an unknown name: the studio grey
        canvas = Image.new("RGBA", img.size, colour)
        canvas.alpha_composite(img)
        return canvas.convert("RGB")


# --- mesh operations ---------------------------------------------------------------------


def _planar_uv(mesh):
    lo, hi = mesh.bounds
    span = np.maximum(hi - lo, 1e-9)
    return np.column_stack(
        [(mesh.vertices[:, 0] - lo[0]) / span[0], (mesh.vertices[:, 1] - lo[1]) / span[1]]
    )


def retexture(scene, texture, pbr):
    """The same geometry with one new textured material (UVs kept, or planar ones made)."""
    material = PBRMaterial(
        name="textured",
        baseColorTexture=texture,
        metallicFactor=0.1 if pbr else 0.0,
        roughnessFactor=0.55 if pbr else 0.9,
    )
    out = trimesh.Scene()
    for node, mesh in meshes._world_meshes(scene):
        uv = getattr(mesh.visual, "uv", None)
        if uv is None or len(uv) != len(mesh.vertices):
            uv = _planar_uv(mesh)
        copy = trimesh.Trimesh(
            vertices=mesh.vertices,
            faces=mesh.faces,
            visual=TextureVisuals(uv=uv, material=material),
            process=False,
        )
        out.add_geometry(copy, geom_name=node, node_name=node)
    return out


def first_texture(scene):
    for _, mesh in meshes._world_meshes(scene):
        material = getattr(mesh.visual, "material", None)
        image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
        if image is not None:
            return image
    return None


def simplified(scene, cells, texture_side=None):
    """Vertex clustering on a grid of `cells` along the longest side (UV seams kept apart),
    optionally with textures scaled down: fewer faces, a smaller file, the same look."""
    size = max(float(scene.extents.max()), 1e-9) / cells
    out = trimesh.Scene()
    for node, mesh in meshes._world_meshes(scene):
        uv = getattr(mesh.visual, "uv", None)
        has_uv = uv is not None and len(uv) == len(mesh.vertices)
        key = np.floor(mesh.vertices / size).astype(np.int64)
        if has_uv:
            key = np.column_stack([key, np.floor(np.asarray(uv) * 32).astype(np.int64)])
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        faces = inverse[mesh.faces]
        keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
        keep &= faces[:, 0] != faces[:, 2]
        if keep.sum() < 4:  # too coarse for this part: keep it as it was
            out.add_geometry(mesh, geom_name=node, node_name=node)
            continue
        visual = None
        if has_uv:
            material = mesh.visual.material
            if texture_side and isinstance(material, PBRMaterial) and material.baseColorTexture:
                material = material.copy()
                small = material.baseColorTexture.copy()
                small.thumbnail((texture_side, texture_side))
                material.baseColorTexture = small
            visual = TextureVisuals(uv=np.asarray(uv)[first], material=material)
        part = trimesh.Trimesh(
            vertices=mesh.vertices[first], faces=faces[keep], visual=visual, process=False
        )
        out.add_geometry(part, geom_name=node, node_name=node)
    return out


def segmented(scene, parts=4):
    """Each mesh cut into bands along its longest axis: one node per segment."""
    out = trimesh.Scene()
    for node, mesh in meshes._world_meshes(scene):
        axis = int(np.argmax(mesh.extents))
        centres = mesh.triangles_center[:, axis]
        edges = np.quantile(centres, np.linspace(0, 1, parts + 1)[1:-1])
        band = np.searchsorted(edges, centres)
        for index in range(parts):
            faces = np.nonzero(band == index)[0]
            if len(faces) == 0:
                continue
            piece = mesh.submesh([faces], append=True)
            name = f"{node}_segment_{index}"
            out.add_geometry(piece, geom_name=name, node_name=name)
    return out


def repaired(scene):
    """Merged vertices, no degenerate or duplicate faces."""
    out = trimesh.Scene()
    for node, mesh in meshes._world_meshes(scene):
        mesh = mesh.copy()
        mesh.merge_vertices()
        mesh.update_faces(mesh.nondegenerate_faces())
        mesh.update_faces(mesh.unique_faces())
        out.add_geometry(mesh, geom_name=node, node_name=node)
    return out


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


READABLE = ("glb", "gltf", "obj", "stl", "ply")


def load_model_bytes(data, ext):
    """Load a model (a ZIP: its first supported file); None when trimesh cannot read it."""
    try:
        if ext == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                inner = next(
                    (n for n in archive.namelist() if n.rsplit(".", 1)[-1].lower() in READABLE),
                    None,
                )
                if inner is None:
                    return None
                loaded = trimesh.load(
                    io.BytesIO(archive.read(inner)),
                    file_type=inner.rsplit(".", 1)[-1].lower(),
                    force="scene",
                    resolver=trimesh.resolvers.ZipResolver(io.BytesIO(data)),
                )
        else:
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
        "jpg": "image/jpeg",
        "webp": "image/webp",
        "gif": "image/gif",
        "mp4": "video/mp4",
        "fbx": "application/octet-stream",
        "obj": "text/plain",
        "stl": "model/stl",
        "ply": "application/octet-stream",
        "usdz": "model/vnd.usdz+zip",
        "3mf": "model/3mf",
    }.get(ext, "application/octet-stream")
