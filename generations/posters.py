"""A poster of a finished model, drawn on the CPU when the upstream sent no thumbnail.

A small software rasteriser in numpy: no GPU, no OpenGL, no new dependency. The
model is seen from a fixed three-quarter view (orthographic, fitted to what is
drawn), every triangle goes through a z-buffer, and each covered pixel is shaded
with Lambert light on its face normal over the material's base colour, times the
vertex colours and the base-colour texture at the pixel's interpolated UV. The
picture is drawn at twice the size and shrunk, which smooths the edges, over a
transparent background with a soft shadow on the ground.

Big models stay bounded in memory and time, like ``glbfacts`` reads them: the GLB
is never loaded whole. Indices are streamed in slices and, above ``FACE_BUDGET``
faces, every k-th face is kept and drawn grown to cover its dropped neighbours
(``_grown``: that many faces are each about a pixel or smaller on the poster);
only the vertices those faces use are then read, streamed in slices too. Faces
are rasterised, and pixels shaded, in bounded slices, and a deadline is checked
between them: a model that cannot be drawn in time gets no poster
(``PosterUnavailable``), never a broken one. Draco-compressed geometry (the optimize
step's output, ``KHR_draco_mesh_compression``) is decoded with DracoPy, Google's Draco
decoder, one primitive whole at a time (at most ``DRACO_MAX_POINTS`` vertices: it is
decoded whole, so larger ones would break the memory budget); without
DracoPy, or for meshopt-compressed geometry (``EXT_meshopt_compression``: no maintained
Python decoder exists), the model gets no poster and the page shows none. A PNG or
WebP base-colour texture over ``TEXTURE_MAX_PIXELS`` is not decoded (whole, it would
break the memory budget; JPEG decodes reduced): its material's base colour stands in.
"""

import io
import logging
import math
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .glbfacts import SLICE_POINTS, TRIANGLES, GlbError, _denormalise, _Glb

log = logging.getLogger(__name__)

SIZE = 512  # the poster's side in pixels
SUPERSAMPLE = 2  # drawn at SIZE * SUPERSAMPLE, then shrunk: smooth edges
FACE_BUDGET = 300_000  # faces drawn at most; above it every k-th face is kept, grown
GROWTH = 2.5  # kept faces grow GROWTH * sqrt(k) wide: the kept are not evenly spread
CANDIDATES = 1 << 17  # pixel candidates rasterised at once (bounds temporary arrays)
FACE_CHUNK = 1 << 16  # faces set up for rasterising at once
SHADE_CHUNK = 1 << 16  # covered pixels shaded at once
TEXTURE_SIDE = 1024  # a base-colour texture is sampled at most this big
TEXTURE_MAX_PIXELS = 2048 * 2048  # larger textures that Pillow cannot decode reduced are skipped
SECONDS = 20.0  # the default time box of one poster
AZIMUTH, ELEVATION = math.radians(35), math.radians(22)  # the three-quarter view
LIGHT = np.array([-0.45, 0.75, 0.55])  # from the upper left, in view space
AMBIENT, DIFFUSE = 0.38, 0.72


# Compressed geometry: its accessors have no bytes of their own to read. Draco is decoded
# (DracoPy); meshopt is not (no maintained Python decoder).
DRACO = "KHR_draco_mesh_compression"
UNDECODED = {"EXT_meshopt_compression"}
# A Draco primitive is decoded whole, by DracoPy then into our arrays: about 165 bytes of
# peak memory per vertex (tests/bench/bench_posters.py: +62.6 MB for 374k vertices with
# normals and UVs). Above DRACO_MAX_POINTS (the pipeline's 64 MB), or above DRACO_MAX_BYTES
# compressed (a count the file states may lie), it is not decoded: no poster.
DRACO_MAX_POINTS = 380_000
DRACO_MAX_BYTES = 16 * 1024 * 1024


class PosterUnavailable(Exception):
    """The model cannot be drawn (unreadable, empty, too slow); it gets no poster."""


def render_png(path, *, size=SIZE, face_budget=FACE_BUDGET, seconds=SECONDS) -> bytes:
    """A PNG poster of the GLB at ``path``, or PosterUnavailable."""
    image = render(path, size=size, face_budget=face_budget, seconds=seconds)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def render(path, *, size=SIZE, face_budget=FACE_BUDGET, seconds=SECONDS) -> Image.Image:
    deadline = time.monotonic() + seconds
    try:
        with open(Path(path), "rb") as fh:
            glb = _Glb(fh, Path(path).stat().st_size)
            required = set(glb.json.get("extensionsRequired") or [])
            compressed = UNDECODED & required
            if compressed:
                # No maintained Python decoder: the page's viewer decodes it, we cannot.
                raise PosterUnavailable(f"its geometry is compressed ({', '.join(compressed)})")
            if DRACO in required and _draco() is None:
                raise PosterUnavailable(
                    f"its geometry is compressed ({DRACO}) and DracoPy is missing"
                )
            parts = _read_parts(glb, face_budget, deadline)
    except (GlbError, OSError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise PosterUnavailable(f"the GLB could not be read: {exc}") from None
    if not parts:
        raise PosterUnavailable("the GLB has no triangles to draw")
    return _draw(parts, size, deadline)


def _check(deadline):
    if time.monotonic() > deadline:
        raise PosterUnavailable("drawing it took longer than its time box")


# --- reading the model ------------------------------------------------------------------


class _Part:
    """The triangles of one primitive instance, in world space, with their look."""

    def __init__(self, points, faces, uv, colour, texture, step, tint=None):
        self.points, self.faces, self.uv = points, faces, uv
        self.colour, self.texture = colour, texture
        self.tint = tint  # per-vertex linear RGB (COLOR_0), or None
        self.step = step  # one face of every ``step`` was kept


def _read_parts(glb, face_budget, deadline):
    primitives = []
    total = 0
    for mesh_index, matrix in glb._instances():
        for prim in glb.item("meshes", mesh_index).get("primitives") or []:
            if prim.get("mode", TRIANGLES) not in (None, TRIANGLES):
                continue  # points and lines have no surface to draw
            position = glb.accessor(prim.get("attributes", {}).get("POSITION"))
            if prim.get("indices") is not None:
                count = glb.accessor(prim["indices"])["count"] // 3
            else:
                count = position["count"] // 3
            if count:
                primitives.append((prim, matrix, position, count))
                total += count
    step = max(1, math.ceil(total / face_budget))
    if step > 1:
        log.info("poster: drawing every %d-th of %d faces", step, total)
    textures = {}
    parts = []
    for prim, matrix, position, count in primitives:
        _check(deadline)
        draco = (prim.get("extensions") or {}).get(DRACO)
        if draco is not None:
            faces, rows = _draco_geometry(glb, draco, position, step)
        else:
            faces, rows = _read_faces(glb, prim, position, count, step), None
        used, faces = np.unique(faces, return_inverse=True)
        faces = faces.reshape(-1, 3).astype(np.int32)

        def attribute(name, components, prim=prim, used=used, rows=rows):
            """The ``used`` rows of one of the primitive's attributes, as float32."""
            accessor = glb.accessor(prim["attributes"][name])
            if rows is None:
                return _gather(glb, accessor, used, components)
            values = rows(name)
            if values.ndim != 2 or values.shape[1] < min(components, 3):
                raise GlbError(f"the Draco data's {name} has the wrong shape")
            return _denormalise(values[used, :components].astype(np.float32), accessor)

        points = attribute("POSITION", 3)
        points = points @ matrix[:3, :3].T.astype(np.float32) + matrix[:3, 3].astype(np.float32)
        colour, texture, uv = _look(glb, prim, attribute, textures)
        tint = _vertex_colours(glb, prim, attribute)
        parts.append(_Part(points, faces, uv, colour, texture, step, tint))
    return parts


def _draco():
    """The DracoPy module, or None where it is not installed."""
    try:
        import DracoPy
    except ImportError:
        return None
    return DracoPy


def _draco_geometry(glb, draco, position, step):
    """(every ``step``-th triangle, the attribute reader) of a Draco-compressed primitive:
    its buffer view decoded whole by DracoPy, attributes found by the ids it names."""
    if position["count"] > DRACO_MAX_POINTS:
        raise PosterUnavailable(
            f"its Draco-compressed geometry has {position['count']:,} vertices, over the "
            f"{DRACO_MAX_POINTS:,} decoded at once"
        )
    start, length = glb._buffer_range(draco["bufferView"])
    if start is None:
        raise GlbError("the Draco data is outside the GLB")
    if length > DRACO_MAX_BYTES:  # the declared count may lie; the decoded size follows this
        raise PosterUnavailable(
            f"its Draco-compressed geometry is {length:,} bytes, over the {DRACO_MAX_BYTES:,} "
            "decoded at once"
        )
    glb.fh.seek(start)
    try:
        mesh = _draco().decode(glb.fh.read(length))
    except Exception as exc:  # noqa: BLE001 - DracoPy raises its own and ValueErrors
        raise GlbError(f"the Draco data could not be decoded ({type(exc).__name__})") from None
    ids = draco.get("attributes") or {}
    faces = np.asarray(getattr(mesh, "faces", None))  # a point cloud has none
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise GlbError("the Draco data holds no triangles")
    faces = faces[::step].astype(np.uint32)

    def rows(name):
        found = mesh.get_attribute_by_unique_id(ids[name]) if name in ids else None
        if not found or found.get("data") is None:
            raise GlbError(f"the Draco data has no {name} (attribute {ids.get(name)!r})")
        return np.asarray(found["data"])

    if faces.size and faces.max() >= len(rows("POSITION")):
        raise GlbError("the Draco data has an index past its vertices")
    return faces, rows


def _read_faces(glb, prim, position, count, step):
    """Every ``step``-th triangle's vertex ids, (n, 3), streamed from the index accessor."""
    if prim.get("indices") is None:
        first = np.arange(0, count * 3, 3 * step, dtype=np.uint32)
        return np.stack([first, first + 1, first + 2], axis=1)
    accessor = glb.accessor(prim["indices"])
    start, stride, dtype, components = glb._view_of(accessor)
    if start is None or components != 1 or dtype.kind != "u":
        raise GlbError("the GLB has indices we cannot stream")
    kept = []
    rows = step * max(1, SLICE_POINTS // step)  # whole triangles, a multiple of the step
    for first in range(0, count, rows):
        n = min(rows, count - first)
        glb.fh.seek(start + first * 3 * stride)
        raw = glb.fh.read(stride * (n * 3 - 1) + dtype.itemsize)
        ids = np.ndarray((n, 3), dtype, raw, strides=(3 * stride, stride))
        kept.append(ids[::step].astype(np.uint32))
    faces = np.concatenate(kept)
    if faces.size and faces.max() >= position["count"]:
        raise GlbError("the GLB has an index past its vertices")
    return faces


def _gather(glb, accessor, wanted, components):
    """The rows ``wanted`` (sorted, unique) of an accessor, streamed in slices."""
    start, stride, dtype, have = glb._view_of(accessor)
    if start is None or have != components or "sparse" in accessor:
        raise GlbError("the GLB has an attribute we cannot stream")
    out = np.empty((len(wanted), components), np.float32)
    count = accessor["count"]
    if len(wanted) and wanted[-1] >= count:
        raise GlbError("the GLB refers to a vertex past its attribute")
    for first in range(0, count, SLICE_POINTS):
        lo, hi = np.searchsorted(wanted, [first, first + SLICE_POINTS])
        if lo == hi:
            continue
        last = int(wanted[hi - 1])
        n = last - first + 1
        glb.fh.seek(start + first * stride)
        raw = glb.fh.read(stride * (n - 1) + dtype.itemsize * components)
        rows = np.ndarray((n, components), dtype, raw, strides=(stride, dtype.itemsize))
        out[lo:hi] = _denormalise(rows[wanted[lo:hi] - first].astype(np.float32), accessor)
    return out


def _look(glb, prim, attribute, textures):
    """(linear RGB base colour, texture as sRGB uint8 or None, UVs or None)."""
    colour = np.ones(3, np.float32)
    texture = uv = None
    if prim.get("material") is None:
        return colour * 0.8, None, None
    material = glb.item("materials", prim["material"])
    pbr = material.get("pbrMetallicRoughness") or {}
    factor = pbr.get("baseColorFactor")
    if isinstance(factor, list) and len(factor) >= 3:
        colour = np.clip(np.array(factor[:3], np.float32), 0, 1)
    info = pbr.get("baseColorTexture")
    if isinstance(info, dict) and info.get("index") is not None:
        coord = f"TEXCOORD_{info.get('texCoord', 0)}"
        if coord in prim.get("attributes", {}):
            key = info["index"]
            if key not in textures:
                textures[key] = _texture(glb, key)
            texture = textures[key]
            if texture is not None:
                uv = attribute(coord, 2)
    return colour, texture, uv


def _vertex_colours(glb, prim, attribute):
    """COLOR_0 of the drawn vertices as linear RGB (float16: half the memory), or None."""
    index = prim.get("attributes", {}).get("COLOR_0")
    if index is None:
        return None
    accessor = glb.accessor(index)
    components = {"VEC3": 3, "VEC4": 4}.get(accessor.get("type"))
    if components is None:
        return None
    if not accessor.get("normalized") and accessor.get("componentType") != 5126:
        return None  # neither floats nor normalised: not valid glTF colours; the material's
    colours = attribute("COLOR_0", components)[:, :3]
    return np.clip(colours, 0, 1).astype(np.float16)


def _texture(glb, index):
    """The texture's image, decoded reduced where Pillow can (JPEG), as sRGB uint8."""
    try:
        source = glb.item("textures", index).get("source")
        image = glb.item("images", source)
        start, length = glb._buffer_range(image["bufferView"])
        if start is None:
            return None
        size = glb.image_size(image)
        if (size["width"] or 0) * (size["height"] or 0) > TEXTURE_MAX_PIXELS and size[
            "format"
        ] != "JPEG":
            log.info("poster: a %sx%s texture is too big to decode", size["width"], size["height"])
            return None
        glb.fh.seek(start)
        with Image.open(io.BytesIO(glb.fh.read(length))) as picture:
            picture.draft("RGB", (TEXTURE_SIDE, TEXTURE_SIDE))  # JPEG: decode at 1/2, 1/4, 1/8
            picture = picture.convert("RGB")
            picture.thumbnail((TEXTURE_SIDE, TEXTURE_SIDE))
            return np.asarray(picture)  # uint8: a quarter of the floats' memory
    except (GlbError, KeyError, TypeError, OSError, ValueError, Image.DecompressionBombError):
        log.info("poster: a texture could not be decoded; its base colour is used")
        return None


def _linear(srgb):
    return srgb**2.2


def _srgb(linear):
    return np.clip(linear, 0, 1) ** (1 / 2.2)


# --- drawing ---------------------------------------------------------------------------------


def _view_matrix():
    """World (Y up, +Z the front) to view space (camera looks down -Z)."""
    ca, sa = math.cos(AZIMUTH), math.sin(AZIMUTH)
    ce, se = math.cos(ELEVATION), math.sin(ELEVATION)
    turn = np.array([[ca, 0, -sa], [0, 1, 0], [sa, 0, ca]])  # the model turned by the azimuth
    tilt = np.array([[1, 0, 0], [0, ce, -se], [0, se, ce]])  # seen from above by the elevation
    return (tilt @ turn).astype(np.float32)


def _draw(parts, size, deadline):
    side = size * SUPERSAMPLE
    view = _view_matrix()
    for part in parts:
        part.points = part.points @ view.T
    low = np.min([p.points.min(axis=0) for p in parts], axis=0)
    high = np.max([p.points.max(axis=0) for p in parts], axis=0)
    # Fit the drawn points, with a margin, in the square; keep the aspect ratio.
    margin = 0.08
    extent = max(float(high[0] - low[0]), float(high[1] - low[1]), 1e-9)
    scale = side * (1 - 2 * margin) / extent
    centre = (low + high) / 2

    depth = np.full(side * side, np.inf, np.float32)
    owner = np.full(side * side, -1, np.int32)  # global face id of the nearest face
    screens, offsets, offset = [], [], 0
    for part in parts:
        # To pixels, in place (one copy of the points): x right, y down, depth away from
        # the camera (smaller is nearer), all at one scale, so shapes and normals keep.
        screen = part.points
        part.points = None
        screen[:, 0] = (screen[:, 0] - centre[0]) * scale + side / 2
        screen[:, 1] = side / 2 - (screen[:, 1] - centre[1]) * scale
        screen[:, 2] = (centre[2] - screen[:, 2]) * scale
        for first in range(0, len(part.faces), FACE_CHUNK):
            tri = screen[part.faces[first : first + FACE_CHUNK]]
            if part.step > 1:
                tri = _grown(tri, part.step, 3 * SUPERSAMPLE)
            _rasterise(tri, offset + first, side, depth, owner, deadline)
        screens.append(screen)
        offsets.append(offset)
        offset += len(part.faces)

    picture = np.zeros((side * side, 4), np.uint8)
    covered = owner >= 0
    for part, screen, first in zip(parts, screens, offsets, strict=True):
        _check(deadline)
        pixels = np.flatnonzero(covered & (owner >= first) & (owner < first + len(part.faces)))
        for start in range(0, pixels.size, SHADE_CHUNK):  # a slice at a time: bounded memory
            block = pixels[start : start + SHADE_CHUNK]
            rgb = _srgb(_shade(part, screen, owner[block] - first, block, side))
            picture[block, :3] = (rgb * 255 + 0.5).astype(np.uint8)
    picture[covered, 3] = 255
    alpha = covered.reshape(side, side)
    image = Image.fromarray(picture.reshape(side, side, 4), "RGBA")
    image = _with_shadow(image, alpha)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _grown(tri, step, reach):
    """Kept faces grown about their centroids to cover the area of the ``step`` - 1 left
    out beside each (area times ``step``): above the budget faces are a pixel or less on
    screen, so each then covers its dropped neighbours. No corner moves more than ``reach``
    pixels, so a large face stays where it is."""
    centre = tri[:, :, :2].mean(axis=1, keepdims=True)
    move = (tri[:, :, :2] - centre) * (GROWTH * math.sqrt(step) - 1)
    length = np.linalg.norm(move, axis=2, keepdims=True)
    move *= np.minimum(1, reach / np.maximum(length, 1e-9))
    grown = tri.copy()
    grown[:, :, :2] += move
    return grown


def _rasterise(tri, offset, side, depth, owner, deadline):
    """Z-buffer every triangle ``tri`` (n, 3 corners, x y depth), grouped by the size of
    its pixel box so each group's candidates are a dense (triangles, box pixels) array of
    at most CANDIDATES."""
    x0 = np.clip(np.floor(tri[:, :, 0].min(axis=1)), 0, side - 1).astype(np.int32)
    x1 = np.clip(np.ceil(tri[:, :, 0].max(axis=1)), 0, side - 1).astype(np.int32)
    y0 = np.clip(np.floor(tri[:, :, 1].min(axis=1)), 0, side - 1).astype(np.int32)
    y1 = np.clip(np.ceil(tri[:, :, 1].max(axis=1)), 0, side - 1).astype(np.int32)
    box = np.maximum(x1 - x0, y1 - y0) + 1
    bucket = np.ceil(np.log2(box)).astype(np.int32)  # box side <= 2**bucket
    for level in np.unique(bucket):
        span = 1 << int(level)
        members = np.flatnonzero(bucket == level)
        per_chunk = max(1, CANDIDATES // (span * span))
        grid = np.arange(span, dtype=np.int32)
        gx = np.tile(grid, span)
        gy = np.repeat(grid, span)
        for first in range(0, len(members), per_chunk):
            _check(deadline)
            ids = members[first : first + per_chunk]
            px = x0[ids, None] + gx[None, :]
            py = y0[ids, None] + gy[None, :]
            inside = (px <= x1[ids, None]) & (py <= y1[ids, None])
            t = tri[ids]
            half = np.float32(0.5)
            w, z = _barycentric(t, px.astype(np.float32) + half, py.astype(np.float32) + half)
            inside &= (w >= -1e-4).all(axis=0)
            rows, cols = np.nonzero(inside)
            if not rows.size:
                continue
            pix = py[rows, cols].astype(np.int64) * side + px[rows, cols]
            zs = z[rows, cols]
            # The nearest candidate per pixel within the chunk, then against the buffer.
            order = np.lexsort((zs, pix))
            pix, zs, rows = pix[order], zs[order], rows[order]
            head = np.ones(pix.size, bool)
            head[1:] = pix[1:] != pix[:-1]
            pix, zs, rows = pix[head], zs[head], rows[head]
            nearer = zs < depth[pix]
            depth[pix[nearer]] = zs[nearer]
            owner[pix[nearer]] = ids[rows[nearer]] + offset


def _barycentric(t, px, py):
    """Weights (3, n, k) of pixel centres in triangles t (n, 3, 3), and their depth."""
    ax, ay = t[:, 0, 0, None], t[:, 0, 1, None]
    bx, by = t[:, 1, 0, None], t[:, 1, 1, None]
    cx, cy = t[:, 2, 0, None], t[:, 2, 1, None]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    area = np.where(np.abs(area) < 1e-12, np.nan, area)  # degenerate: covers nothing
    w1 = ((px - ax) * (cy - ay) - (py - ay) * (cx - ax)) / area
    w2 = ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / area
    w0 = 1 - w1 - w2
    weights = np.stack([w0, w1, w2])
    z = w0 * t[:, 0, 2, None] + w1 * t[:, 1, 2, None] + w2 * t[:, 2, 2, None]
    return np.nan_to_num(weights, nan=-1.0), z


def _shade(part, screen, faces, pixels, side):
    """Linear RGB of the covered ``pixels``, each drawn by one of the part's ``faces``."""
    corners = screen[part.faces[faces]]  # (n, 3, 3) in pixels
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    normal *= np.where(normal[:, 2:3] > 0, -1, 1)  # the side facing the camera (two-sided)
    # Pixels are view space turned half a turn about x (y down, depth away): so is the light.
    light = LIGHT * np.array([1, -1, -1]) / np.linalg.norm(LIGHT)
    shade = AMBIENT + DIFFUSE * np.clip(normal @ light, 0, 1)
    albedo = np.broadcast_to(part.colour, (len(faces), 3)).copy()
    if part.tint is None and (part.texture is None or part.uv is None):
        return albedo * shade[:, None]
    px = (pixels % side).astype(np.float32) + 0.5
    py = (pixels // side).astype(np.float32) + 0.5
    weights, _ = _barycentric(corners, px[:, None], py[:, None])
    weights = np.clip(weights[:, :, 0], 0, 1)  # (3, n); a grown face's pixel may be outside
    weights /= np.maximum(weights.sum(axis=0, keepdims=True), 1e-9)
    if part.tint is not None:
        albedo *= np.einsum("kn,nkc->nc", weights, part.tint[part.faces[faces]].astype(np.float32))
    if part.texture is not None and part.uv is not None:
        uv = np.einsum("kn,nkc->nc", weights, part.uv[part.faces[faces]])
        height, width = part.texture.shape[:2]
        u = np.mod(uv[:, 0], 1.0) * (width - 1)  # REPEAT wrapping, the glTF default
        v = np.mod(uv[:, 1], 1.0) * (height - 1)  # glTF's V runs down the image
        albedo *= _linear(part.texture[v.astype(np.int32), u.astype(np.int32)] / np.float32(255))
    return albedo * shade[:, None]


def _with_shadow(image, alpha):
    """A soft shadow under the model: its silhouette squashed onto the ground, blurred."""
    side = alpha.shape[0]
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if not rows.size:
        return image
    width = cols[-1] - cols[0] + 1
    height = max(4, int(width * 0.12))
    shadow = Image.new("L", (side, side), 0)
    from PIL import ImageDraw

    bottom = min(side - height // 2 - 2, rows[-1] + height // 4)
    ImageDraw.Draw(shadow).ellipse(
        [
            cols[0] + width * 0.05,
            bottom - height // 2,
            cols[-1] - width * 0.05,
            bottom + height // 2,
        ],
        fill=90,
    )
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(2, height // 3)))
    under = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    under.putalpha(shadow)
    return Image.alpha_composite(under, image)


# --- a generation's poster ---------------------------------------------------------------

POSTER_NAME = "poster:rendered"  # the Asset's original_name: one rendered poster per generation


def wants_poster(generation):
    """A finished generation with a model and no picture yet (upstream, captured or ours)."""
    from .models import Asset, State

    roles = {asset.role for asset in generation.assets.all()}
    return (
        generation.state == State.FINISHED
        and Asset.Role.THUMBNAIL not in roles
        and bool({Asset.Role.MODEL, Asset.Role.PREVIEW} & roles)
    )


def make_poster(generation, *, seconds=SECONDS):
    """Keep a picture of the generation's model as its THUMBNAIL asset; the asset, or None.

    The picture is a still from the upstream's render tool where the generation has one
    (the stored file is shared, as a render's version shares its source's model), else
    the model drawn here. None when it needs no poster or its model cannot be drawn
    (logged): a poster is a nicety and never touches the generation's state.
    """
    import hashlib
    import uuid

    from django.core.files.base import ContentFile

    from . import ingest, storage

    if not wants_poster(generation):
        return None
    still = rendered_still(generation.assets.all())
    if still is not None:
        # The upstream's render tool drew one better than we can: it is the picture.
        return _keep(generation, still.file.name, still.format, still.bytes, still.sha256)
    model = generation.glb_asset
    # Counted before drawing: a model that kills the worker counts too (its task is not
    # delivered again, and the sweep stops queueing it after MAX_ATTEMPTS).
    _note(model, ATTEMPTS, int(model.facts.get(ATTEMPTS) or 0) + 1)
    try:
        with storage.local_copy(model.file, ingest.incoming_dir(), ".glb") as path:
            png = render_png(path, seconds=seconds)
    except PosterUnavailable as exc:
        log.warning("generation %s: no poster: %s", generation.pk, exc)
        _note(model, FAILED, str(exc)[:300])  # for good: the sweep does not queue it again
        return None
    picture = ContentFile(png, name=f"{uuid.uuid4().hex}.png")
    return _keep(generation, picture, "png", len(png), hashlib.sha256(png).hexdigest())


def _note(model, key, value):
    """Record a poster attempt's outcome in the model's facts (only that key changes)."""
    from .models import Asset

    model.facts = {**(model.facts or {}), key: value}
    Asset.objects.filter(pk=model.pk).update(facts=model.facts)


# --- posters the broker lost ------------------------------------------------------------------

# The poster task is queued once, after ingest (or a finishing step), and acknowledged on
# receipt: a message the broker lost, or a worker that died, leaves the model without a
# picture. The sweep (tasks.sweep_posters, on the beat) queues those again, except models
# that could not be drawn: recorded in the drawn asset's facts, so they are not retried on
# every sweep (``manage.py backfill_posters`` still draws whatever a person asks it to).
FAILED = "poster_failed"  # the reason the model could not be drawn (PosterUnavailable)
ATTEMPTS = "poster_attempts"  # drawings started: one that killed its worker never ended
MAX_ATTEMPTS = 3
SWEEP_AFTER = timedelta(minutes=5)  # a poster task still on its way is not lost yet
SWEEP_LOOKBACK = timedelta(days=7)  # older ones are backfill_posters' (bounds the scan)
SWEEP_LIMIT = 20  # posters queued per sweep at most: each may take a worker SECONDS


def lost(now, limit=SWEEP_LIMIT):
    """Ids of the generations whose poster is lost, newest first: finished between
    SWEEP_LOOKBACK and SWEEP_AFTER ago, with a model, without a picture, and whose model
    neither failed to be drawn nor used up its attempts."""
    from django.db.models import Exists, OuterRef, Q

    from .models import Asset, Generation, State

    models = Asset.objects.filter(
        generation=OuterRef("pk"), role__in=[Asset.Role.MODEL, Asset.Role.PREVIEW]
    )
    given_up = models.filter(
        Q(facts__has_key=FAILED) | Q(**{f"facts__{ATTEMPTS}__gte": MAX_ATTEMPTS})
    )
    pictured = Asset.objects.filter(generation=OuterRef("pk"), role=Asset.Role.THUMBNAIL)
    return list(
        Generation.objects.filter(
            state=State.FINISHED,
            finished_at__lt=now - SWEEP_AFTER,
            finished_at__gte=now - SWEEP_LOOKBACK,
        )
        .filter(Exists(models))
        .exclude(Exists(pictured))
        .exclude(Exists(given_up))
        .order_by("-finished_at", "-pk")
        .values_list("pk", flat=True)[:limit]
    )


def _keep(generation, file, fmt, size, sha256):
    """The generation's THUMBNAIL asset, made once: None if one was made meanwhile."""
    from django.db import IntegrityError, transaction

    from .models import Asset

    try:
        with transaction.atomic():
            return Asset.objects.create(
                generation=generation,
                role=Asset.Role.THUMBNAIL,
                file=file,
                format=fmt,
                # The unique (generation, original_name) makes a second run a no-op.
                original_name=POSTER_NAME,
                bytes=size,
                sha256=sha256,
            )
    except IntegrityError:
        return None


# --- turntables ------------------------------------------------------------------------------

# A turntable is a rendered animation of the model (the finishing step's render tool): an
# Asset of the render role in a moving format. Stills of that role are PNG or WebP.
TURNTABLE_ROLES = {"render", "turntable"}
TURNTABLE_FORMATS = {"gif": "img", "mp4": "video", "webm": "video"}
STILL_FORMATS = {"png", "jpeg", "webp"}


def rendered_still(assets):
    """The first still the render tool made among ``assets`` (prefetched), or None."""
    stills = [a for a in assets if a.role in TURNTABLE_ROLES and a.format in STILL_FORMATS]
    return min(stills, key=lambda asset: asset.pk) if stills else None


def turntable(assets):
    """The newest turntable among ``assets`` (prefetched: no query), or None."""
    found = [
        asset
        for asset in assets
        if asset.role in TURNTABLE_ROLES and asset.format in TURNTABLE_FORMATS
    ]
    return max(found, key=lambda asset: asset.pk) if found else None
