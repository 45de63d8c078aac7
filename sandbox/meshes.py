"""Procedural 3D models for the sandbox: the stand-in for the upstream generators.

Every result is built from the request alone, deterministically: the same prompt
(or image bytes) and seed always give the same scene and byte-identical files.

Prompt models are composed from parametric primitives (rounded boxes, lathed
profiles, tubes, lofts, noise-displaced blobs) chosen by a keyword table, sized
in metres, Y-up, centred on x/z with the base on y=0. Words in the prompt pick
colours and materials. Image models are a relief: the silhouette of the picture
(alpha, or distance from the border colour) inflated into a pillow whose front
follows the brightness, with the picture itself as the texture.

The exporters write what the upstream hands out: a binary glTF 2.0 (GLB), a
ZIP of OBJ + MTL + PNG textures, a minimal binary FBX 7.4, and a PNG thumbnail
drawn in software (painter's algorithm with Pillow: no OpenGL on a server).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import trimesh
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from trimesh.visual.material import PBRMaterial, SimpleMaterial
from trimesh.visual.texture import TextureVisuals

__all__ = [
    "model_from_prompt",
    "model_from_image",
    "model_from_images",
    "glb_bytes",
    "obj_zip_bytes",
    "fbx_bytes",
    "thumbnail_png",
    "render_image",
]

DEFAULT_FACES = 20_000
LOW_POLY_FACES = 1_500
# Upstream accepts up to 1.5M faces; a sandbox answering in under a second cannot,
# so requests are clamped to this range (the result stays a plausible file).
MIN_FACES = 60
MAX_FACES = 200_000
TEXTURE_SIZE = 512
SECONDARY_TEXTURE_SIZE = 256
IMAGE_TEXTURE_SIZE = 512


# --------------------------------------------------------------------------- looks


@dataclass(frozen=True)
class Look:
    """Surface of one material: sRGB colour (0-255), PBR scalars, texture pattern."""

    color: tuple[float, float, float]
    metallic: float = 0.0
    roughness: float = 0.6
    pattern: str = "noise"
    alpha: float = 1.0
    emissive: float = 0.0


PRESETS: dict[str, Look] = {
    "wood": Look((139, 94, 56), 0.0, 0.75, "wood"),
    "darkwood": Look((92, 60, 36), 0.0, 0.7, "wood"),
    "metal": Look((172, 174, 180), 1.0, 0.35, "brushed"),
    "darkmetal": Look((70, 72, 78), 0.9, 0.45, "brushed"),
    "gold": Look((232, 180, 70), 1.0, 0.25, "brushed"),
    "paint": Look((180, 30, 35), 0.3, 0.3, "paint"),
    "plastic": Look((220, 220, 215), 0.0, 0.45, "paint"),
    "fabric": Look((70, 90, 140), 0.0, 0.9, "fabric"),
    "leather": Look((96, 58, 34), 0.0, 0.6, "fabric"),
    "stone": Look((138, 135, 126), 0.0, 0.9, "stone"),
    "rubber": Look((28, 28, 30), 0.0, 0.85, "noise"),
    "glass": Look((170, 205, 225), 0.0, 0.05, "none", alpha=0.4),
    "light": Look((255, 236, 170), 0.0, 0.3, "none", emissive=1.0),
    "ceramic": Look((235, 232, 222), 0.0, 0.25, "paint"),
    "bark": Look((88, 62, 40), 0.0, 0.95, "wood"),
    "foliage": Look((58, 128, 52), 0.0, 0.8, "foliage"),
    "skin": Look((224, 178, 146), 0.0, 0.55, "paint"),
    "scales": Look((60, 120, 70), 0.1, 0.5, "scales"),
    "fur": Look((140, 96, 58), 0.0, 0.9, "foliage"),
    "plaster": Look((228, 220, 200), 0.0, 0.9, "stone"),
    "roof": Look((150, 60, 40), 0.0, 0.8, "tiles"),
    "brick": Look((160, 72, 52), 0.0, 0.85, "brick"),
    "hair": Look((70, 45, 30), 0.0, 0.7, "fabric"),
}

# Colour words: sRGB, plus metal scalars for the precious metals.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (200, 32, 36),
    "crimson": (160, 20, 40),
    "green": (50, 150, 62),
    "blue": (40, 84, 205),
    "navy": (26, 40, 100),
    "yellow": (242, 204, 40),
    "orange": (240, 122, 30),
    "purple": (122, 52, 165),
    "violet": (140, 70, 200),
    "pink": (240, 130, 172),
    "white": (236, 236, 232),
    "black": (24, 24, 27),
    "grey": (128, 128, 132),
    "gray": (128, 128, 132),
    "brown": (112, 70, 40),
    "cyan": (40, 190, 200),
    "teal": (30, 140, 140),
    "turquoise": (60, 200, 190),
    "beige": (220, 200, 160),
    "cream": (240, 230, 200),
    "gold": (232, 180, 70),
    "golden": (232, 180, 70),
    "silver": (205, 205, 212),
    "bronze": (176, 116, 62),
    "copper": (190, 104, 72),
}
METAL_COLORS = {"gold", "golden", "silver", "bronze", "copper"}

# Material words: which preset they select.
MATERIALS: dict[str, str] = {
    "wooden": "wood",
    "wood": "wood",
    "timber": "wood",
    "metal": "metal",
    "metallic": "metal",
    "steel": "metal",
    "iron": "darkmetal",
    "chrome": "metal",
    "aluminium": "metal",
    "aluminum": "metal",
    "glass": "glass",
    "crystal": "glass",
    "transparent": "glass",
    "stone": "stone",
    "marble": "plaster",
    "granite": "stone",
    "concrete": "stone",
    "plastic": "plastic",
    "ceramic": "ceramic",
    "porcelain": "ceramic",
    "leather": "leather",
    "fabric": "fabric",
    "velvet": "fabric",
    "cloth": "fabric",
    "brick": "brick",
    "furry": "fur",
    "fluffy": "fur",
    "scaly": "scales",
}
GLOW_WORDS = {"glowing", "glow", "neon", "luminous", "shining", "emissive"}
PAINT_COLORS = ["red", "blue", "yellow", "green", "white", "black", "orange", "silver", "teal"]


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return 255.0 * np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _rng(*key: object) -> np.random.Generator:
    digest = hashlib.sha256(repr(key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _words(prompt: str) -> list[str]:
    words = re.findall(r"[a-z]+", prompt.lower())
    # crude singular: "chairs" -> "chair", but keep "glass", "dress"
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


# ---------------------------------------------------------------------- geometry


@dataclass
class _Part:
    v: np.ndarray  # (n, 3) float64 positions
    n: np.ndarray  # (n, 3) unit normals
    uv: np.ndarray  # (n, 2) texture coordinates (world-scaled, repeating)
    f: np.ndarray  # (m, 3) int64 triangles

    def transformed(self, matrix: np.ndarray) -> _Part:
        lin = matrix[:3, :3]
        normal_m = np.linalg.inv(lin).T
        n = self.n @ normal_m.T
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        f = self.f if np.linalg.det(lin) > 0 else self.f[:, ::-1]
        return _Part(self.v @ lin.T + matrix[:3, 3], n, self.uv, f)


def _concat(parts: list[_Part]) -> _Part:
    offsets = np.cumsum([0] + [len(p.v) for p in parts[:-1]])
    return _Part(
        np.concatenate([p.v for p in parts]),
        np.concatenate([p.n for p in parts]),
        np.concatenate([p.uv for p in parts]),
        np.concatenate([p.f + o for p, o in zip(parts, offsets, strict=True)]),
    )


def _face_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


def _orient(part: _Part) -> _Part:
    """Drop degenerate triangles and wind every face to agree with its normals."""
    fn = _face_normals(part.v, part.f)
    area = np.linalg.norm(fn, axis=1)
    keep = area > 1e-14
    f = part.f[keep]
    flip = np.einsum("ij,ij->i", fn[keep], part.n[f].sum(axis=1)) < 0
    f = np.where(flip[:, None], f[:, ::-1], f)
    return _Part(part.v, part.n, part.uv, f)


def _smooth_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, welded across seams (duplicated positions)."""
    _, inv = np.unique(np.round(v, 5), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    fn = _face_normals(v, f)
    acc = np.zeros((inv.max() + 1, 3))
    for k in range(3):
        for c in range(3):
            acc[:, c] += np.bincount(inv[f[:, k]], weights=fn[:, c], minlength=len(acc))
    n = acc[inv]
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _lathe(strips: list[np.ndarray], seg: int, tile: float) -> _Part:
    """Revolve (radius, y) profile strips around +Y; each strip is smooth, corners split."""
    theta = np.linspace(0.0, 2 * np.pi, seg + 1)
    cos, sin = np.cos(theta), np.sin(theta)
    parts = []
    for pts in strips:
        pts = np.asarray(pts, dtype=np.float64)
        k = len(pts)
        r, y = pts[:, 0], pts[:, 1]
        d = np.gradient(pts, axis=0)
        nr, ny = d[:, 1], -d[:, 0]
        ln = np.maximum(np.hypot(nr, ny), 1e-12)
        nr, ny = nr / ln, ny / ln
        v = np.stack(
            [r[:, None] * cos, np.repeat(y[:, None], seg + 1, 1), -r[:, None] * sin], -1
        ).reshape(-1, 3)
        n = np.stack(
            [nr[:, None] * cos, np.repeat(ny[:, None], seg + 1, 1), -nr[:, None] * sin], -1
        ).reshape(-1, 3)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(r), np.diff(y)))])
        reps = max(1, round(2 * np.pi * max(float(r.max()), 1e-6) / tile))
        uv = np.column_stack(
            [np.tile(theta / (2 * np.pi) * reps, k), np.repeat(arc / tile, seg + 1)]
        )
        i = np.arange(k - 1)[:, None]
        j = np.arange(seg)[None, :]
        a = i * (seg + 1) + j
        b, c = a + 1, a + seg + 1
        dd = c + 1
        lower = np.broadcast_to((r[:-1] > 1e-9)[:, None], a.shape)
        upper = np.broadcast_to((r[1:] > 1e-9)[:, None], a.shape)
        t1 = np.stack([a, b, dd], -1)[lower]
        t2 = np.stack([a, dd, c], -1)[upper]
        parts.append(_Part(v, n, uv, np.concatenate([t1, t2]).reshape(-1, 3)))
    return _orient(_concat(parts))


def _axis_coords(h: float, r: float, k: int, m: int) -> np.ndarray:
    if r <= 0 or k == 0:
        return np.linspace(-h, h, m + 1)
    alpha = np.linspace(0.0, np.pi / 4, k + 1)
    edge = -h + r * (1.0 - np.tan(alpha[::-1]))  # -h .. -h + r, dense near the edge
    mid = np.linspace(-h + r, h - r, m + 1)
    return np.concatenate([edge[:-1], mid, -edge[::-1][1:]])


def _box(size: tuple[float, float, float], r: float, k: int, m: int, tile: float) -> _Part:
    """A box centred on the origin, edges rounded with radius r (k steps per bevel)."""
    h = np.asarray(size, dtype=np.float64) / 2
    r = min(r, 0.45 * float(h.min()) * 2) if r > 0 else 0.0
    r = min(r, float(h.min()))
    coords = [_axis_coords(h[a], r, k, max(1, round(m * h[a] / h.max()))) for a in range(3)]
    parts = []
    for ax, (a1, a2) in enumerate([(1, 2), (2, 0), (0, 1)]):
        c1, c2 = np.meshgrid(coords[a1], coords[a2], indexing="ij")
        n1, n2 = c1.shape
        for s in (1.0, -1.0):
            p = np.zeros((n1 * n2, 3))
            p[:, a1], p[:, a2], p[:, ax] = c1.ravel(), c2.ravel(), s * h[ax]
            q = np.clip(p, -h + r, h - r)
            dvec = p - q
            ln = np.linalg.norm(dvec, axis=1, keepdims=True)
            face_n = np.zeros(3)
            face_n[ax] = s
            nrm = np.where(ln > 1e-12, dvec / np.maximum(ln, 1e-12), face_n)
            pos = q + r * nrm if r > 0 else p
            uv = np.column_stack([c1.ravel() * s, c2.ravel()]) / tile
            i = np.arange(n1 - 1)[:, None]
            j = np.arange(n2 - 1)[None, :]
            a = i * n2 + j
            f = np.concatenate(
                [np.stack([a, a + n2, a + n2 + 1], -1), np.stack([a, a + n2 + 1, a + 1], -1)]
            ).reshape(-1, 3)
            parts.append(_Part(pos, nrm, uv, f))
    return _orient(_concat(parts))


def _tube(path: np.ndarray, radii: np.ndarray, seg: int, tile: float) -> _Part:
    """A capped tube along a 3D polyline with per-point radius (parallel-transport frames)."""
    path = np.asarray(path, dtype=np.float64)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(path),))
    t = np.gradient(path, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    ref = np.array([0.0, 0.0, 1.0]) if abs(t[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    nvec = np.cross(t[0], ref)
    nvec /= np.linalg.norm(nvec)
    normals = []
    for ti in t:
        nvec = nvec - ti * np.dot(nvec, ti)
        nvec /= max(np.linalg.norm(nvec), 1e-12)
        normals.append(nvec)
    nn = np.array(normals)
    bb = np.cross(t, nn)
    phi = np.linspace(0, 2 * np.pi, seg + 1)
    ring = np.cos(phi)[None, :, None] * nn[:, None, :] + np.sin(phi)[None, :, None] * bb[:, None, :]
    v = (path[:, None, :] + radii[:, None, None] * ring).reshape(-1, 3)
    n = ring.reshape(-1, 3)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    reps = max(1, round(2 * np.pi * float(radii.max()) / tile))
    k = len(path)
    uv = np.column_stack([np.tile(phi / (2 * np.pi) * reps, k), np.repeat(arc / tile, seg + 1)])
    i = np.arange(k - 1)[:, None]
    j = np.arange(seg)[None, :]
    a = i * (seg + 1) + j
    f = np.concatenate(
        [np.stack([a, a + 1, a + seg + 2], -1), np.stack([a, a + seg + 2, a + seg + 1], -1)]
    ).reshape(-1, 3)
    parts = [_Part(v, n, uv, f)]
    for end, sign in ((0, -1.0), (k - 1, 1.0)):
        if radii[end] <= 1e-9:
            continue
        rim = v[end * (seg + 1) : (end + 1) * (seg + 1)]
        cv = np.vstack([path[end], rim])
        cn = np.repeat((sign * t[end])[None, :], seg + 2, 0)
        cuv = np.vstack([[0.5, 0.5], 0.5 + 0.5 * np.column_stack([np.cos(phi), np.sin(phi)])])
        js = np.arange(seg)
        cf = np.column_stack([np.zeros(seg, dtype=np.int64), js + 1, js + 2])
        parts.append(_Part(cv, cn, cuv * radii[end] * 2 / tile, cf))
    return _orient(_concat(parts))


def _flat(tris: np.ndarray, tile: float) -> _Part:
    """Unshared triangles with face normals; UVs by projection on the dominant axis."""
    fn = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    area = np.linalg.norm(fn, axis=1)
    tris, fn, area = tris[area > 1e-14], fn[area > 1e-14], area[area > 1e-14]
    fn /= area[:, None]
    v = tris.reshape(-1, 3)
    n = np.repeat(fn, 3, axis=0)
    dom = np.repeat(np.argmax(np.abs(fn), axis=1), 3)
    uv = np.where(
        (dom == 0)[:, None],
        v[:, [2, 1]],
        np.where((dom == 1)[:, None], v[:, [0, 2]], v[:, [0, 1]]),
    )
    f = np.arange(len(v)).reshape(-1, 3)
    return _Part(v, n, uv / tile, f)


def _loft(sections: list[np.ndarray], ys: list[float], tile: float) -> _Part:
    """Flat-shaded solid through closed (x, z) cross-sections stacked along +Y."""
    rings = [
        np.column_stack([s[:, 0], np.full(len(s), y), s[:, 1]])
        for s, y in zip(sections, ys, strict=True)
    ]
    tris = []
    for lo, hi in zip(rings[:-1], rings[1:], strict=True):
        lo1, hi1 = np.roll(lo, -1, 0), np.roll(hi, -1, 0)
        tris.append(np.stack([lo, lo1, hi1], 1))
        tris.append(np.stack([lo, hi1, hi], 1))
    for ring in (rings[0], rings[-1]):
        c = np.repeat(ring.mean(axis=0)[None], len(ring), 0)
        tris.append(np.stack([c, ring, np.roll(ring, -1, 0)], 1))
    tris = np.concatenate(tris)
    # signed volume tells whether the stack was wound inside out
    vol = np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum()
    if vol < 0:
        tris = tris[:, ::-1]
    return _flat(tris, tile)


def _rot(deg: tuple[float, float, float]) -> np.ndarray:
    rx, ry, rz = (math.radians(a) for a in deg)
    cx, sx, cy, sy, cz, sz = (
        math.cos(rx),
        math.sin(rx),
        math.cos(ry),
        math.sin(ry),
        math.cos(rz),
        math.sin(rz),
    )
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def _matrix(at=(0.0, 0.0, 0.0), rot=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    m = np.eye(4)
    rot_m = np.asarray(rot, dtype=float) if np.shape(rot) == (3, 3) else _rot(rot)
    m[:3, :3] = rot_m @ np.diag(np.broadcast_to(np.asarray(scale, dtype=float), (3,)))
    m[:3, 3] = at
    return m


class _Builder:
    """Collects parts per material role; `q` scales every subdivision count."""

    def __init__(self, rng: np.random.Generator, q: float, low_poly: bool) -> None:
        self.rng = rng
        self.q = q
        self.low = low_poly
        self.tile = 0.5
        self.parts: dict[str, list[_Part]] = {}
        self.looks: dict[str, tuple[str, int]] = {}

    def look(self, role: str, preset: str, paint: int = 0) -> None:
        """Declare a material role; paint 1/2 takes the prompt's first/second colour."""
        self.looks[role] = (preset, paint)

    def j(self, x: float, pct: float = 0.12) -> float:
        return float(x * self.rng.uniform(1 - pct, 1 + pct))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def seg(self, n: float, lo: int = 3) -> int:
        return max(lo, int(round(n * self.q)))

    def add(self, role: str, part: _Part, matrix: np.ndarray | None = None) -> None:
        if matrix is not None:
            part = part.transformed(matrix)
        self.parts.setdefault(role, []).append(part)

    # primitives --------------------------------------------------------------
    def box(self, role, size, at=(0, 0, 0), r=0.0, rot=(0, 0, 0), detail=1.0) -> None:
        k = 0 if (self.low or r <= 0) else int(0.6 * self.q)
        m = max(1, int(round((1.2 if k == 0 else 0.8) * self.q * detail)))
        self.add(role, _box(size, r if k else 0.0, k, m, self.tile), _matrix(at, rot))

    def lathe(self, role, strips, at=(0, 0, 0), rot=(0, 0, 0), seg=16, scale=1.0) -> None:
        n = self.seg(seg, 5 if not self.low else 4)
        rows = max(1, int(round(self.q * 0.6)))
        dense = [_resample(np.asarray(s, dtype=float), rows) for s in strips]
        self.add(role, _lathe(dense, n, self.tile), _matrix(at, rot, scale))

    def cylinder(self, role, radius, height, at=(0, 0, 0), top=None, rot=(0, 0, 0), seg=16):
        """Bottom centre at `at`; `top` is the top radius (a cone/frustum if different)."""
        top = radius if top is None else top
        strips = [[(0, 0), (radius, 0)], [(radius, 0), (top, height)]]
        if top > 0:
            strips.append([(top, height), (0, height)])
        self.lathe(role, strips, at, rot, seg)

    def sphere(self, role, radius, at=(0, 0, 0), scale=(1, 1, 1), rot=(0, 0, 0), seg=16):
        strips = [_arc(radius, -90, 90, 9)]
        self.lathe(role, strips, at, rot, seg, scale)

    def tube(self, role, path, radii, seg=10) -> None:
        path = np.asarray(path, dtype=float)
        dense_n = max(len(path), int(round(len(path) * max(1.0, self.q * 0.7))))
        tt = np.linspace(0, 1, len(path))
        ts = np.linspace(0, 1, dense_n)
        dense = np.column_stack([np.interp(ts, tt, path[:, c]) for c in range(3)])
        rr = np.interp(ts, tt, np.broadcast_to(np.asarray(radii, dtype=float), (len(path),)))
        self.add(role, _tube(dense, rr, self.seg(seg, 4), self.tile))

    def loft(self, role, sections, ys, at=(0, 0, 0), rot=(0, 0, 0)) -> None:
        secs = [np.asarray(s, dtype=float) for s in sections]
        self.add(role, _loft(secs, list(ys), self.tile), _matrix(at, rot))

    def blob(self, role, radius, at=(0, 0, 0), scale=(1, 1, 1), amount=0.15, seg=20, floor=None):
        """A sphere displaced by smooth random waves (rocks, foliage, bodies)."""
        base = _lathe(
            [_resample(_arc(radius, -90, 90, 9), max(1, round(self.q * 0.6)))],
            self.seg(seg, 5),
            self.tile,
        )
        waves = self.rng.normal(size=(6, 3)) * 2.2 / radius
        phases = self.rng.uniform(0, 2 * np.pi, 6)
        amps = self.rng.uniform(0.4, 1.0, 6)
        w = np.sin(base.v @ waves.T + phases) @ amps / amps.sum()
        unit = base.v / radius
        v = base.v + unit * (radius * amount * w)[:, None]
        v = v * np.asarray(scale, dtype=float) + np.asarray(at, dtype=float)
        if floor is not None:
            v[:, 1] = np.maximum(v[:, 1], floor)
        self.add(role, _Part(v, _smooth_normals(v, base.f), base.uv, base.f))


def _arc(radius: float, a0: float, a1: float, n: int, cy: float = 0.0) -> np.ndarray:
    a = np.radians(np.linspace(a0, a1, n))
    return np.column_stack([radius * np.cos(a), cy + radius * np.sin(a)])


def _resample(pts: np.ndarray, factor: int) -> np.ndarray:
    """Insert factor-1 points on every profile segment (face budget grows with q^2)."""
    if factor <= 1:
        return pts
    t = np.arange(len(pts), dtype=float)
    ts = np.linspace(0, len(pts) - 1, (len(pts) - 1) * factor + 1)
    return np.column_stack([np.interp(ts, t, pts[:, 0]), np.interp(ts, t, pts[:, 1])])


def _rect(w: float, d: float) -> np.ndarray:
    return np.array([[-w / 2, -d / 2], [w / 2, -d / 2], [w / 2, d / 2], [-w / 2, d / 2]])


# ------------------------------------------------------------------------ shapes
# Each builder lays out a real-size object (metres, Y up, roughly centred).


def _chair(b: _Builder) -> None:
    b.tile = 0.4
    b.look("frame", "wood", 1)
    b.look("cushion", "fabric", 2)
    sh, w, d = b.j(0.45, 0.08), b.j(0.46, 0.1), b.j(0.44, 0.1)
    leg = b.j(0.04, 0.15)
    for sx in (-1, 1):
        for sz in (-1, 1):
            height = sh if sz > 0 else b.j(0.92, 0.06)
            b.box(
                "frame",
                (leg, height, leg),
                (sx * (w - leg) / 2, height / 2, sz * (d - leg) / 2),
                r=0.006,
                detail=2.5,
            )
    b.box("frame", (w, 0.04, d), (0, sh, 0), r=0.008)
    b.box("cushion", (w - 0.04, 0.05, d - 0.05), (0, sh + 0.045, 0.01), r=0.02)
    top = sh + b.j(0.45, 0.08)
    for y in np.linspace(sh + 0.15, top - 0.04, 3 if b.chance(0.5) else 2):
        b.box("frame", (w - leg, 0.05, 0.025), (0, y, -(d - leg) / 2), r=0.006)
    if b.chance(0.35):
        for sx in (-1, 1):
            b.box("frame", (0.05, 0.03, d), (sx * (w / 2 + 0.01), sh + 0.22, 0), r=0.01)
            b.box("frame", (0.035, 0.22, 0.035), (sx * (w / 2 + 0.01), sh + 0.11, d / 2 - 0.04))


def _table(b: _Builder) -> None:
    b.tile = 0.6
    b.look("top", "wood", 1)
    b.look("legs", "darkwood", 2)
    h = b.j(0.75, 0.05)
    if b.chance(0.35):
        rad = b.j(0.55)
        b.cylinder("top", rad, 0.04, (0, h - 0.04, 0), seg=40)
        b.lathe(
            "legs",
            [
                [
                    (0, 0),
                    (0.28, 0),
                    (0.26, 0.04),
                    (0.06, 0.1),
                    (0.05, h - 0.15),
                    (0.12, h - 0.05),
                    (0, h - 0.05),
                ]
            ],
            seg=24,
        )
        return
    w, d = b.j(1.3, 0.15), b.j(0.78, 0.1)
    b.box("top", (w, 0.045, d), (0, h - 0.0225, 0), r=0.01, detail=3)
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - 0.08), sz * (d / 2 - 0.08)
            b.lathe(
                "legs",
                [
                    [(0, 0), (0.022, 0)],
                    [(0.022, 0), (0.03, 0.5 * h), (0.035, h - 0.12), (0.035, h - 0.045)],
                    [(0.035, h - 0.045), (0, h - 0.045)],
                ],
                at=(x, 0, z),
                seg=12,
            )
    b.box("legs", (w - 0.2, 0.08, 0.02), (0, h - 0.085, d / 2 - 0.08), r=0.005)
    b.box("legs", (w - 0.2, 0.08, 0.02), (0, h - 0.085, -d / 2 + 0.08), r=0.005)


def _car(b: _Builder) -> None:
    b.tile = 1.2
    b.look("body", "paint", 1)
    b.look("trim", "metal", 2)
    b.look("tyres", "rubber")
    b.look("glass", "glass")
    b.look("lights", "light")
    length, width = b.j(4.3, 0.1), b.j(1.8, 0.06)
    wheel_r = b.j(0.34, 0.08)
    body_h = b.j(0.72, 0.1)
    base = wheel_r * 0.85
    b.box("body", (length, body_h, width), (0, base + body_h / 2, 0), r=0.16, detail=4)
    cab_l = length * b.j(0.5, 0.1)
    cab_h = b.j(0.5, 0.1)
    y0 = base + body_h - 0.02
    b.loft(
        "glass",
        [_rect(cab_l, width * 0.9), _rect(cab_l * 0.62, width * 0.76)],
        [y0, y0 + cab_h],
        at=(-length * 0.06, 0, 0),
    )
    b.box(
        "body", (cab_l * 0.64, 0.05, width * 0.78), (-length * 0.06, y0 + cab_h + 0.02, 0), r=0.02
    )
    for sx in (-1, 1):
        for sz in (-1, 1):
            at = (sx * length * 0.32, wheel_r, sz * (width / 2 - 0.12))
            b.cylinder(
                "tyres", wheel_r, 0.24, at=(at[0], at[1], at[2] - 0.12), rot=(90, 0, 0), seg=24
            )
            b.cylinder(
                "trim",
                wheel_r * 0.6,
                0.02,
                at=(at[0], at[1], at[2] + sz * 0.12),
                rot=(90 * sz, 0, 0),
                seg=16,
            )
    for sx in (-1, 1):
        b.box("trim", (0.1, 0.16, width * 0.96), (sx * length / 2, base + 0.12, 0), r=0.04)
    for sz in (-1, 1):
        b.box(
            "lights",
            (0.04, 0.1, 0.3),
            (length / 2, base + body_h * 0.7, sz * width * 0.33),
            r=0.015,
        )


def _tree(b: _Builder, conifer: bool = False) -> None:
    b.tile = 0.8
    b.look("leaves", "foliage", 1)
    b.look("bark", "bark", 2)
    h = b.j(5.0, 0.2)
    trunk_h = h * (0.3 if conifer else 0.5)
    r0 = b.j(0.2)
    b.lathe(
        "bark",
        [
            [(0, 0), (r0 * 1.3, 0)],
            [(r0 * 1.3, 0), (r0, 0.3), (r0 * 0.7, trunk_h), (r0 * 0.5, trunk_h + 0.6)],
            [(r0 * 0.5, trunk_h + 0.6), (0, trunk_h + 0.6)],
        ],
        seg=14,
    )
    if conifer:
        tiers = 4
        for i in range(tiers):
            y = trunk_h * 0.7 + i * (h - trunk_h) / (tiers + 0.5)
            rad = 1.6 * (1 - i / (tiers + 1)) * b.j(1.0, 0.1)
            b.cylinder("leaves", rad, (h - trunk_h) * 0.45, at=(0, y, 0), top=0.0, seg=20)
        return
    cy = trunk_h + (h - trunk_h) * 0.45
    b.blob("leaves", 1.5, (0, cy, 0), (1.1, 0.9, 1.1), amount=0.18)
    for _ in range(4):
        a = b.rng.uniform(0, 2 * np.pi)
        rr = b.j(0.9, 0.3)
        b.blob(
            "leaves",
            b.j(0.9, 0.2),
            (rr * math.cos(a), cy + b.rng.uniform(-0.3, 0.8), rr * math.sin(a)),
            amount=0.2,
            seg=14,
        )
    for a in (0.0, 2.2, 4.1):
        b.tube(
            "bark",
            [(0, trunk_h * 0.8, 0), (0.5 * math.cos(a), trunk_h + 0.5, 0.5 * math.sin(a))],
            [r0 * 0.45, r0 * 0.2],
            8,
        )


def _house(b: _Builder) -> None:
    b.tile = 2.0
    b.look("walls", "plaster", 1)
    b.look("roof", "roof", 2)
    b.look("wood", "darkwood")
    b.look("glass", "glass")
    w, d, h = b.j(7.0, 0.15), b.j(5.5, 0.12), b.j(3.0, 0.1)
    b.box("walls", (w, h, d), (0, h / 2, 0), r=0.04, detail=3)
    rh = b.j(2.2, 0.15)
    tri = np.array([[-w / 2 - 0.4, 0.0], [w / 2 + 0.4, 0.0], [0.0, rh]])
    b.loft("roof", [tri, tri], [-d / 2 - 0.35, d / 2 + 0.35], at=(0, h, 0), rot=(-90, 0, 0))
    gable = np.array([[-w / 2, 0.0], [w / 2, 0.0], [0.0, rh * w / (w + 0.8)]])
    b.loft("walls", [gable, gable], [-d / 2, d / 2], at=(0, h, 0), rot=(-90, 0, 0))
    b.box("wood", (1.0, 2.1, 0.1), (b.rng.uniform(-0.5, 0.5), 1.05, d / 2), r=0.02)
    for x in (-w / 3, w / 3):
        b.box("glass", (1.2, 1.1, 0.08), (x, 1.7, d / 2), r=0.02)
        b.box("wood", (1.35, 0.08, 0.16), (x, 1.12, d / 2), r=0.01)
    for z in (-d / 4, d / 4):
        b.box("glass", (0.08, 1.1, 1.0), (w / 2, 1.7, z), r=0.02)
    if b.chance(0.7):
        b.box("roof", (0.6, 2.2, 0.6), (w * 0.25, h + rh * 0.75, -d * 0.15), r=0.03)


def _robot(b: _Builder) -> None:
    b.tile = 0.5
    b.look("armor", "metal", 1)
    b.look("joints", "darkmetal", 2)
    b.look("eyes", "light")
    s = b.j(1.0, 0.1)
    leg_h = 0.8 * s
    for sx in (-1, 1):
        b.box("armor", (0.2 * s, 0.12 * s, 0.3 * s), (sx * 0.15 * s, 0.06 * s, 0.04 * s), r=0.03)
        b.cylinder("joints", 0.06 * s, leg_h, at=(sx * 0.15 * s, 0.1 * s, 0), seg=12)
        b.box("armor", (0.16 * s, 0.3 * s, 0.18 * s), (sx * 0.15 * s, 0.35 * s, 0), r=0.04)
        b.sphere("joints", 0.08 * s, (sx * 0.15 * s, leg_h * 0.62, 0))
    torso = (0.62 * s, 0.62 * s, 0.36 * s)
    b.box("armor", torso, (0, leg_h + 0.36 * s, 0), r=0.07, detail=2)
    b.box("joints", (0.44 * s, 0.12 * s, 0.3 * s), (0, leg_h + 0.02 * s, 0), r=0.03)
    sy = leg_h + 0.6 * s
    for sx in (-1, 1):
        b.sphere("joints", 0.09 * s, (sx * 0.38 * s, sy, 0))
        b.tube(
            "joints",
            [
                (sx * 0.4 * s, sy, 0),
                (sx * 0.45 * s, sy - 0.3 * s, 0.05 * s),
                (sx * 0.46 * s, sy - 0.55 * s, 0.12 * s),
            ],
            0.05 * s,
        )
        b.box(
            "armor",
            (0.14 * s, 0.12 * s, 0.14 * s),
            (sx * 0.46 * s, sy - 0.62 * s, 0.13 * s),
            r=0.03,
        )
    b.cylinder("joints", 0.06 * s, 0.1 * s, at=(0, leg_h + 0.66 * s, 0))
    hy = leg_h + 0.86 * s
    b.box("armor", (0.34 * s, 0.26 * s, 0.3 * s), (0, hy, 0), r=0.06)
    for sx in (-1, 1):
        b.sphere("eyes", 0.035 * s, (sx * 0.08 * s, hy + 0.02 * s, 0.15 * s), (1, 1, 0.5))
    b.cylinder("joints", 0.01 * s, 0.14 * s, at=(0, hy + 0.12 * s, 0), seg=6)
    b.sphere("eyes", 0.025 * s, (0, hy + 0.27 * s, 0))


def _sword(b: _Builder) -> None:
    b.tile = 0.25
    b.look("blade", "metal", 1)
    b.look("guard", "gold", 2)
    b.look("grip", "leather")
    length = b.j(0.78, 0.15)
    w, t = b.j(0.05, 0.15), 0.009
    diamond = np.array([[-w / 2, 0], [0, -t / 2], [w / 2, 0], [0, t / 2]])
    base = 0.22
    b.loft(
        "blade",
        [diamond, diamond * 0.92, diamond * 0.02],
        [base, base + length * 0.86, base + length],
    )
    b.box("guard", (b.j(0.22), 0.028, 0.04), (0, base - 0.012, 0), r=0.008)
    b.lathe(
        "grip",
        [
            [(0, 0.045), (0.017, 0.045)],
            [(0.017, 0.045), (0.019, 0.12), (0.017, base - 0.025)],
            [(0.017, base - 0.025), (0, base - 0.025)],
        ],
        seg=12,
    )
    b.sphere("guard", 0.028, (0, 0.028, 0), (1, 1, 0.7))


def _mug(b: _Builder) -> None:
    b.tile = 0.08
    b.look("ceramic", "ceramic", 1)
    r, h, t = b.j(0.045, 0.1), b.j(0.1, 0.1), 0.005
    b.lathe(
        "ceramic",
        [
            [(0, 0), (r - 0.004, 0)],
            [(r - 0.004, 0), (r, 0.004), (r, h)],
            [(r, h), (r - t, h)],
            [(r - t, h), (r - t, t)],
            [(r - t, t), (0, t)],
        ],
        seg=32,
    )
    path = [(r - 0.002, h * 0.8, 0)]
    for a in np.linspace(80, -80, 9):
        ar = math.radians(a)
        path.append((r + 0.022 + 0.022 * math.cos(ar), h * 0.5 + h * 0.3 * math.sin(ar), 0))
    path.append((r - 0.002, h * 0.2, 0))
    b.tube("ceramic", path, 0.0065, 10)


def _vase(b: _Builder) -> None:
    b.tile = 0.2
    b.look("ceramic", "ceramic", 1)
    h, r = b.j(0.38, 0.2), b.j(0.1, 0.15)
    neck = b.j(0.45, 0.2)
    t = np.linspace(0, 1, 16)
    radius = r * (0.55 + 0.45 * np.sin(np.pi * np.clip(t * 1.25, 0, 1)) ** 1.3)
    radius = np.where(t > 0.8, r * neck + (radius - r * neck) * 0.0, radius)
    radius[-3:] = r * neck * np.array([1.0, 1.08, 1.16])
    outer = np.column_stack([radius, t * h])
    inner = np.column_stack([np.maximum(radius - 0.006, 0.003), t * h])[::-1]
    inner = inner[inner[:, 1] > 0.012]
    b.lathe(
        "ceramic",
        [
            [(0, 0), (outer[0, 0], 0)],
            outer,
            [outer[-1], inner[0]],
            inner,
            [inner[-1], (0, inner[-1, 1])],
        ],
        seg=32,
    )


def _lamp(b: _Builder) -> None:
    b.tile = 0.2
    b.look("shade", "fabric", 1)
    b.look("base", "metal", 2)
    b.look("bulb", "light")
    h = b.j(0.55, 0.12)
    b.lathe(
        "base",
        [[(0, 0), (0.1, 0)], [(0.1, 0), (0.1, 0.015), (0.07, 0.035)], [(0.07, 0.035), (0, 0.035)]],
        seg=24,
    )
    b.cylinder("base", 0.012, h * 0.75, at=(0, 0.03, 0), seg=10)
    y0, y1 = h * 0.58, h
    r0, r1, t = b.j(0.15, 0.1), b.j(0.08, 0.15), 0.004
    b.lathe(
        "shade",
        [
            [(r0, y0), (r1, y1)],
            [(r1, y1), (r1 - t, y1)],
            [(r1 - t, y1), (r0 - t, y0)],
            [(r0 - t, y0), (r0, y0)],
        ],
        seg=32,
    )
    b.sphere("bulb", 0.035, (0, h * 0.72, 0), (1, 1.2, 1))


def _rock(b: _Builder) -> None:
    b.tile = 0.5
    b.look("stone", "stone", 1)
    rad = b.j(0.45, 0.25)
    b.blob(
        "stone",
        rad,
        (0, rad * 0.55, 0),
        (b.j(1.3), b.j(0.75), b.j(1.0)),
        amount=0.32,
        seg=28,
        floor=0.0,
    )
    for _ in range(int(b.rng.integers(0, 3))):
        a = b.rng.uniform(0, 2 * np.pi)
        rr = rad * b.j(0.35, 0.3)
        b.blob(
            "stone",
            rr,
            (1.4 * rad * math.cos(a), rr * 0.5, 1.2 * rad * math.sin(a)),
            (1.2, 0.7, 1.0),
            amount=0.35,
            seg=12,
            floor=0.0,
        )


def _tower(b: _Builder) -> None:
    b.tile = 3.0
    b.look("stone", "stone", 1)
    b.look("roof", "roof", 2)
    b.look("glass", "glass")
    b.look("wood", "darkwood")
    r, h = b.j(2.4, 0.15), b.j(12.0, 0.2)
    b.lathe(
        "stone",
        [
            [(0, 0), (r * 1.08, 0)],
            [(r * 1.08, 0), (r, 1.5), (r * 0.92, h)],
            [(r * 0.92, h), (r * 1.12, h + 0.3)],
            [(r * 1.12, h + 0.3), (r * 1.12, h + 1.3)],
            [(r * 1.12, h + 1.3), (0, h + 1.3)],
        ],
        seg=32,
    )
    n = int(b.rng.integers(8, 13))
    for i in range(n):
        a = 2 * np.pi * i / n
        b.box(
            "stone",
            (0.6, 0.7, 0.5),
            (r * 1.05 * math.cos(a), h + 1.6, -r * 1.05 * math.sin(a)),
            rot=(0, math.degrees(a), 0),
            r=0.03,
        )
    if b.chance(0.6):
        b.cylinder("roof", r * 1.0, b.j(4.5), at=(0, h + 1.3, 0), top=0.0, seg=32)
    for k in range(3):
        y = 3.5 + k * (h - 4.5) / 3
        a = b.rng.uniform(0, 2 * np.pi)
        rr = r * (1 - 0.08 * y / h)
        b.box(
            "glass",
            (0.6, 1.1, 0.3),
            (rr * math.cos(a), y, -rr * math.sin(a)),
            rot=(0, math.degrees(a) + 90, 0),
            r=0.05,
        )
    b.box("wood", (1.2, 2.2, 0.3), (0, 1.1, r * 1.02), r=0.04)


def _rocket(b: _Builder) -> None:
    b.tile = 2.0
    b.look("hull", "paint", 1)
    b.look("fins", "paint", 2)
    b.look("engine", "darkmetal")
    b.look("glass", "glass")
    r, h = b.j(0.6, 0.1), b.j(7.0, 0.15)
    body_top = h * 0.68
    nose = [
        (
            r * math.cos(a * math.pi / 2) ** 0.7,
            body_top + (h - body_top) * math.sin(a * math.pi / 2),
        )
        for a in np.linspace(0, 1, 10)
    ]
    b.lathe(
        "hull", [[(0, 0.7), (r * 0.85, 0.7)], [(r * 0.85, 0.7), (r, 1.5), (r, body_top)]], seg=32
    )
    b.lathe("fins", [nose], seg=32)
    b.lathe(
        "engine",
        [
            [(r * 0.5, 0.7), (r * 0.75, 0.05)],
            [(r * 0.75, 0.05), (r * 0.68, 0.05)],
            [(r * 0.68, 0.05), (r * 0.4, 0.7)],
        ],
        seg=24,
    )
    nf = 3 if b.chance(0.4) else 4
    fin = np.array([[0.0, -0.04], [1.0, -0.03], [1.0, 0.03], [0.0, 0.04]])
    for i in range(nf):
        a = 360.0 * i / nf + 45
        sec0 = fin * [r * 1.9, 1]
        sec1 = fin * [r * 1.1, 1] + [0, 0]
        b.loft(
            "fins",
            [sec0 + [r * 0.8, 0], sec1 + [r * 0.8, 0], fin * [0.05, 1] + [r * 0.95, 0]],
            [0.0, 1.6, 2.6],
            rot=(0, a, 0),
        )
    b.sphere("glass", r * 0.22, (0, body_top * 0.78, r * 0.93), (1, 1, 0.4), seg=14)


def _mushroom(b: _Builder) -> None:
    b.tile = 0.1
    b.look("cap", "paint", 1)
    b.look("stem", "ceramic", 2)
    b.look("spots", "ceramic")
    h, r = b.j(0.16, 0.2), b.j(0.12, 0.2)
    b.lathe(
        "stem",
        [[(0, 0), (0.035, 0)], [(0.035, 0), (0.03, h * 0.6), (0.025, h)], [(0.025, h), (0, h)]],
        seg=16,
    )
    cap = _arc(r, 0, 90, 10) * [1, 0.65] + [0, h * 0.9]
    b.lathe("cap", [[(0.02, h * 0.88), (r * 0.9, h * 0.84), cap[0]], cap], seg=32)
    for _ in range(int(b.rng.integers(5, 10))):
        a = b.rng.uniform(0, 2 * np.pi)
        e = math.radians(b.rng.uniform(20, 70))
        p = (
            r * math.cos(e) * math.cos(a),
            h * 0.9 + r * 0.65 * math.sin(e),
            r * math.cos(e) * math.sin(a),
        )
        b.sphere("spots", r * 0.13, p, (1, 0.35, 1), rot=(0, 0, 0), seg=8)


def _creature(b: _Builder, kind: str = "dragon") -> None:
    # species: (body length in metres, leg length / body length, neck length factor)
    size, leg, neck = {
        "dog": (0.8, 0.55, 1.0),
        "cat": (0.45, 0.5, 0.8),
        "fox": (0.7, 0.5, 0.9),
        "horse": (1.9, 0.85, 1.6),
        "cow": (2.0, 0.6, 0.8),
        "pig": (1.1, 0.35, 0.6),
        "bear": (1.6, 0.45, 0.7),
        "wolf": (1.1, 0.6, 1.0),
        "lion": (1.7, 0.55, 0.9),
        "deer": (1.5, 0.85, 1.4),
        "dragon": (2.4, 0.5, 1.4),
        "dinosaur": (3.5, 0.6, 1.6),
    }.get(kind, (1.2, 0.5, 1.0))
    s = b.j(size, 0.1) / 0.9
    b.tile = 0.6 * s
    b.look("body", "scales" if kind in ("dragon", "dinosaur") else "fur", 1)
    b.look("horns", "ceramic", 2)
    b.look("eyes", "rubber")
    leg_h = leg * 0.9 * s
    body_l, body_r = 0.9 * s, 0.28 * s
    by = leg_h + body_r * 0.6
    b.blob("body", body_r, (0, by, 0), (body_l / body_r / 2, 1.0, 0.85), amount=0.05, seg=20)
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * body_l * 0.32, sz * body_r * 0.55
            b.tube(
                "body",
                [(x, by, z), (x + 0.05 * s, leg_h * 0.5, z), (x, 0.04 * s, z)],
                [0.09 * s, 0.06 * s, 0.055 * s],
                8,
            )
            b.sphere("body", 0.07 * s, (x + 0.04 * s, 0.035 * s, z), (1.3, 0.5, 1), seg=10)
    neck_top = (body_l * (0.5 + 0.12 * neck), by + 0.45 * s * neck, 0)
    b.tube(
        "body",
        [(body_l * 0.4, by + 0.05 * s, 0), (body_l * 0.55, by + 0.3 * s * neck, 0), neck_top],
        [0.14 * s, 0.1 * s, 0.09 * s],
        10,
    )
    hx, hy = neck_top[0] + 0.08 * s, neck_top[1] + 0.04 * s
    b.sphere("body", 0.14 * s, (hx, hy, 0), (1.3, 0.9, 0.9))
    b.sphere("body", 0.08 * s, (hx + 0.16 * s, hy - 0.03 * s, 0), (1.4, 0.8, 0.9))
    for sz in (-1, 1):
        b.sphere("eyes", 0.025 * s, (hx + 0.08 * s, hy + 0.05 * s, sz * 0.09 * s))
    tail = [(-body_l * 0.45 + 0.02 * s, by, 0)]
    wiggle = b.rng.uniform(-0.3, 0.3)
    for k in range(1, 6):
        tail.append(
            (
                -body_l * 0.45 - 0.22 * s * k,
                by - 0.08 * s * k + 0.02 * s * k * k * 0.5,
                wiggle * s * math.sin(k * 0.9),
            )
        )
    b.tube("body", tail, np.linspace(0.12 * s, 0.015 * s, len(tail)), 10)
    if kind in ("dragon", "dinosaur", "monster", "creature", "beast"):
        for sz in (-1, 1):
            b.cylinder(
                "horns",
                0.03 * s,
                0.18 * s,
                at=(hx - 0.04 * s, hy + 0.08 * s, sz * 0.06 * s),
                top=0.0,
                rot=(sz * -20, 0, 30),
                seg=8,
            )
        for k in range(5):
            b.cylinder(
                "horns",
                0.04 * s,
                0.1 * s,
                at=(body_l * (0.3 - 0.15 * k), by + body_r * 0.9, 0),
                top=0.0,
                seg=6,
            )
    if kind == "dragon":
        wing = np.array([[0.0, 0.0], [0.4, 0.5], [1.0, 0.35], [0.7, 0.0]]) * s * [1.0, 1.1]
        for sz in (-1, 1):
            sec = np.column_stack([wing[:, 0] - 0.3 * s, wing[:, 1]])
            b.loft(
                "horns",
                [sec, sec],
                [0, 0.02 * s],
                at=(0, by + body_r * 0.7, sz * body_r * 0.6),
                rot=(sz * 70, 0, 0),
            )


def _character(b: _Builder, kind: str = "person") -> None:
    b.tile = 0.4
    armour = kind in ("knight", "warrior", "soldier", "robot")
    b.look("clothes", "metal" if armour else "fabric", 1)
    b.look("trousers", "darkmetal" if armour else "fabric", 2)
    b.look("skin", "skin")
    b.look("hair", "hair")
    s = b.j(1.75, 0.06) / 1.75
    for sx in (-1, 1):
        b.tube(
            "trousers",
            [
                (sx * 0.1 * s, 0.92 * s, 0),
                (sx * 0.1 * s, 0.5 * s, 0.01 * s),
                (sx * 0.1 * s, 0.08 * s, 0),
            ],
            [0.075 * s, 0.06 * s, 0.05 * s],
            10,
        )
        b.box(
            "trousers", (0.1 * s, 0.07 * s, 0.25 * s), (sx * 0.1 * s, 0.035 * s, 0.05 * s), r=0.02
        )
    b.lathe(
        "clothes",
        [
            [(0, 0.85 * s), (0.17 * s, 0.85 * s)],
            [(0.17 * s, 0.85 * s), (0.19 * s, 1.05 * s), (0.2 * s, 1.35 * s), (0.16 * s, 1.47 * s)],
            [(0.16 * s, 1.47 * s), (0, 1.47 * s)],
        ],
        scale=(1, 1, 0.65),
        seg=20,
    )
    if kind == "wizard":
        b.cylinder("clothes", 0.33 * s, 1.0 * s, at=(0, 0.02, 0), top=0.19 * s, seg=24)
    for sx in (-1, 1):
        b.tube(
            "clothes",
            [
                (sx * 0.2 * s, 1.42 * s, 0),
                (sx * 0.27 * s, 1.15 * s, 0.02 * s),
                (sx * 0.3 * s, 0.9 * s, 0.04 * s),
            ],
            [0.055 * s, 0.045 * s, 0.04 * s],
            10,
        )
        b.sphere("skin", 0.045 * s, (sx * 0.3 * s, 0.85 * s, 0.04 * s))
    b.cylinder("skin", 0.045 * s, 0.08 * s, at=(0, 1.46 * s, 0), seg=12)
    b.sphere("skin", 0.11 * s, (0, 1.63 * s, 0.01 * s), (0.9, 1.1, 1.0))
    if kind == "wizard":
        b.cylinder("clothes", 0.2 * s, 0.4 * s, at=(0, 1.7 * s, 0), top=0.0, rot=(-8, 0, 0))
    elif armour:
        b.lathe("clothes", [_arc(0.125 * s, -20, 90, 9)], at=(0, 1.64 * s, 0.005 * s))
    else:
        b.sphere("hair", 0.115 * s, (0, 1.67 * s, -0.015 * s), (0.95, 0.85, 1.0))


def _barrel(b: _Builder) -> None:
    b.tile = 0.4
    b.look("staves", "wood", 1)
    b.look("hoops", "darkmetal", 2)
    h, r = b.j(0.9, 0.1), b.j(0.3, 0.1)
    prof = [(r * (0.85 + 0.15 * math.sin(math.pi * t)), h * t) for t in np.linspace(0, 1, 9)]
    b.lathe("staves", [[(0, 0), prof[0]], prof, [prof[-1], (0, h)]], seg=28)
    for t in (0.12, 0.88):
        rr = r * (0.85 + 0.15 * math.sin(math.pi * t)) + 0.006
        b.cylinder("hoops", rr, 0.04, at=(0, h * t - 0.02, 0), seg=28)


def _crate(b: _Builder) -> None:
    b.tile = 0.35
    b.look("planks", "wood", 1)
    b.look("frame", "darkwood", 2)
    s = b.j(0.7, 0.15)
    b.box("planks", (s, s, s), (0, s / 2, 0), r=0.01, detail=2)
    for ax in range(3):
        for u in (-1, 1):
            for v in (-1, 1):
                size = [0.06 * s] * 3
                size[ax] = s * 1.02
                at = [0.0, 0.0, 0.0]
                others = [a for a in range(3) if a != ax]
                at[others[0]], at[others[1]] = u * s / 2, v * s / 2
                at[1] += s / 2
                b.box("frame", tuple(size), tuple(at), r=0.005)


def _bottle(b: _Builder) -> None:
    b.tile = 0.1
    b.look("glass", "glass", 1)
    b.look("cap", "metal", 2)
    h, r = b.j(0.3, 0.1), b.j(0.04, 0.1)
    prof = [(0, 0), (r, 0), (r, h * 0.6), (r * 0.45, h * 0.78), (r * 0.35, h * 0.93)]
    b.lathe("glass", [prof[:2], prof[1:], [prof[-1], (0, h * 0.93)]], seg=24)
    b.cylinder("cap", r * 0.4, h * 0.07, at=(0, h * 0.93, 0), seg=16)


def _sofa(b: _Builder) -> None:
    b.tile = 0.6
    b.look("fabric", "fabric", 1)
    b.look("legs", "darkwood", 2)
    w, d = b.j(2.0, 0.1), b.j(0.9, 0.08)
    b.box("fabric", (w, 0.3, d), (0, 0.27, 0), r=0.06, detail=3)
    b.box("fabric", (w, 0.5, 0.2), (0, 0.6, -d / 2 + 0.1), r=0.08, detail=3)
    for sx in (-1, 1):
        b.box("fabric", (0.2, 0.28, d), (sx * (w / 2 - 0.1), 0.55, 0), r=0.08)
    for i in range(3):
        b.box(
            "fabric",
            ((w - 0.4) / 3 - 0.02, 0.12, d - 0.25),
            (-(w - 0.4) / 3 + i * (w - 0.4) / 3, 0.48, 0.1),
            r=0.05,
        )
    for sx in (-1, 1):
        for sz in (-1, 1):
            b.cylinder("legs", 0.03, 0.12, at=(sx * (w / 2 - 0.1), 0, sz * (d / 2 - 0.1)), top=0.02)


def _airplane(b: _Builder) -> None:
    b.tile = 2.0
    b.look("hull", "paint", 1)
    b.look("wings", "metal", 2)
    b.look("glass", "glass")
    length, r = b.j(12.0, 0.15), b.j(0.8, 0.1)
    prof = [
        (0, 0),
        (r * 0.6, 0.4),
        (r, 1.6),
        (r, length * 0.7),
        (r * 0.5, length * 0.95),
        (0, length),
    ]
    b.lathe("hull", [prof], rot=(0, 0, -90), at=(-length / 2, r + 0.6, 0), seg=24)
    wing = np.array([[-1.2, -0.12], [1.2, -0.1], [1.2, 0.1], [-1.2, 0.12]])
    span = b.j(11.0, 0.1)
    b.loft(
        "wings",
        [wing, wing * [0.5, 0.5] + [0.8, 0]],
        [0, span / 2],
        at=(0.3, r + 0.4, 0),
        rot=(90, 0, 0),
    )
    b.loft(
        "wings",
        [wing, wing * [0.5, 0.5] + [0.8, 0]],
        [0, span / 2],
        at=(0.3, r + 0.4, 0),
        rot=(-90, 0, 0),
    )
    tail = np.array([[-0.6, -0.06], [0.6, -0.05], [0.6, 0.05], [-0.6, 0.06]])
    b.loft("wings", [tail, tail * 0.5 + [0.5, 0]], [0, 2.0], at=(-length * 0.42, r * 1.5 + 0.6, 0))
    b.sphere("glass", r * 0.7, (length * 0.4, r * 1.45 + 0.6, 0), (1.6, 0.6, 0.8))
    for x in (1.0, -1.5):
        b.cylinder("wings", 0.06, r + 0.6 - 0.2, at=(x, 0.2, 0), seg=8)
        b.cylinder("wings", 0.2, 0.15, at=(x, 0.2, -0.075), rot=(90, 0, 0), seg=12)


def _boat(b: _Builder) -> None:
    b.tile = 1.0
    b.look("hull", "wood", 1)
    b.look("sail", "fabric", 2)
    b.look("mast", "darkwood")
    length, w = b.j(5.0, 0.15), b.j(1.8, 0.1)
    secs, ys = [], []
    for t in np.linspace(0, 1, 9):
        width = w * max(0.02, math.sin(math.pi * (0.1 + 0.85 * t)) ** 0.7)
        sec = np.array(
            [
                [-width / 2, 0.9],
                [-width * 0.45, 0.3],
                [0, 0.0],
                [width * 0.45, 0.3],
                [width / 2, 0.9],
            ]
        )
        secs.append(sec)
        ys.append(t * length)
    # section x -> world z (beam), section z -> world y (height), stacking y -> world x
    b.loft("hull", secs, ys, at=(-length / 2, 0, 0), rot=[[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    b.cylinder("mast", 0.06, 4.0, at=(0.2, 0.5, 0), seg=10)
    sail = np.array([[0.0, -0.01], [1.8, -0.01], [1.8, 0.01], [0.0, 0.01]])
    b.loft("sail", [sail, sail * [0.1, 1]], [1.2, 4.3], at=(-1.7, 0, 0))


def _sculpture(b: _Builder) -> None:
    """Fallback for prompts we have no word for: a hashed abstract piece on a plinth."""
    b.tile = 0.3
    b.look("piece", "ceramic", 1)
    b.look("plinth", "stone", 2)
    b.box("plinth", (0.4, 0.3, 0.4), (0, 0.15, 0), r=0.01)
    y = 0.3
    for _ in range(int(b.rng.integers(2, 5))):
        kind = int(b.rng.integers(0, 3))
        size = b.j(0.16, 0.4)
        if kind == 0:
            b.sphere("piece", size, (b.rng.uniform(-0.04, 0.04), y + size, 0), seg=20)
            y += 1.8 * size
        elif kind == 1:
            b.box(
                "piece",
                (size * 1.6, size * 1.6, size * 1.6),
                (0, y + size * 0.8, 0),
                rot=(0, float(b.rng.uniform(0, 90)), 0),
                r=0.02,
            )
            y += size * 1.6
        else:
            ring = [
                (size * math.cos(a), y + size + size * math.sin(a), 0)
                for a in np.linspace(0, 2 * np.pi, 17)
            ]
            b.tube("piece", ring, size * 0.25, 10)
            y += size * 2.1


Shape = Callable[[_Builder], None]


def _species(kind: str) -> Shape:
    return lambda b: _creature(b, kind)


def _person(kind: str) -> Shape:
    return lambda b: _character(b, kind)


SHAPES: dict[str, Shape] = {
    "chair": _chair,
    "stool": _chair,
    "armchair": _chair,
    "seat": _chair,
    "table": _table,
    "desk": _table,
    "car": _car,
    "vehicle": _car,
    "truck": _car,
    "automobile": _car,
    "taxi": _car,
    "van": _car,
    "tree": _tree,
    "oak": _tree,
    "bush": _tree,
    "pine": lambda b: _tree(b, True),
    "fir": lambda b: _tree(b, True),
    "christmas": lambda b: _tree(b, True),
    "house": _house,
    "home": _house,
    "cottage": _house,
    "hut": _house,
    "cabin": _house,
    "building": _house,
    "barn": _house,
    "robot": _robot,
    "android": _robot,
    "mech": _robot,
    "droid": _robot,
    "cyborg": _robot,
    "sword": _sword,
    "blade": _sword,
    "katana": _sword,
    "dagger": _sword,
    "mug": _mug,
    "cup": _mug,
    "vase": _vase,
    "pot": _vase,
    "urn": _vase,
    "jar": _vase,
    "lamp": _lamp,
    "light": _lamp,
    "rock": _rock,
    "stone": _rock,
    "boulder": _rock,
    "pebble": _rock,
    "tower": _tower,
    "castle": _tower,
    "lighthouse": _tower,
    "turret": _tower,
    "rocket": _rocket,
    "spaceship": _rocket,
    "missile": _rocket,
    "shuttle": _rocket,
    "mushroom": _mushroom,
    "toadstool": _mushroom,
    "fungus": _mushroom,
    "barrel": _barrel,
    "keg": _barrel,
    "crate": _crate,
    "box": _crate,
    "chest": _crate,
    "bottle": _bottle,
    "potion": _bottle,
    "sofa": _sofa,
    "couch": _sofa,
    "airplane": _airplane,
    "plane": _airplane,
    "aeroplane": _airplane,
    "jet": _airplane,
    "aircraft": _airplane,
    "boat": _boat,
    "ship": _boat,
    "sailboat": _boat,
    "sculpture": _sculpture,
    "statue": _person("person"),
    **{
        k: _species(k)
        for k in (
            "dragon",
            "dinosaur",
            "dog",
            "cat",
            "horse",
            "bear",
            "wolf",
            "lion",
            "cow",
            "pig",
            "fox",
            "deer",
        )
    },
    "monster": _species("monster"),
    "creature": _species("creature"),
    "beast": _species("beast"),
    "animal": _species("dog"),
    "puppy": _species("dog"),
    "kitten": _species("cat"),
    "dino": _species("dinosaur"),
    **{k: _person(k) for k in ("knight", "warrior", "soldier", "wizard")},
    **{
        k: _person("person")
        for k in (
            "character",
            "person",
            "human",
            "man",
            "woman",
            "girl",
            "boy",
            "hero",
            "king",
            "queen",
            "princess",
            "figure",
            "villager",
            "astronaut",
            "elf",
        )
    },
}
# words that name a material before they name a thing ("stone tower", "glass jar")
_ADJECTIVE_FIRST = {"stone", "light", "box", "oak"}
FALLBACK_SHAPES: list[Shape] = [_sculpture, _vase, _rock, _crate, _barrel]


def _pick_shape(words: list[str], prompt: str) -> Shape:
    """The first thing named, preferring real nouns over words that are also materials;
    in a compound ("desk lamp", "stone tower") the last word is the thing."""
    hits = [i for i, w in enumerate(words) if w in SHAPES]
    if not hits:
        digest = hashlib.sha256(prompt.strip().lower().encode()).digest()
        return FALLBACK_SHAPES[digest[0] % len(FALLBACK_SHAPES)]
    nouns = [i for i in hits if words[i] not in _ADJECTIVE_FIRST] or hits
    i = nouns[0]
    while i + 1 < len(words) and words[i + 1] in SHAPES:
        i += 1
    return SHAPES[words[i]]


def _prompt_looks(
    words: list[str], defaults: dict[str, tuple[str, int]], rng: np.random.Generator
) -> dict[str, Look]:
    colors = [w for w in words if w in COLORS]
    mats = [MATERIALS[w] for w in words if w in MATERIALS]
    glow = any(w in GLOW_WORDS for w in words)
    looks: dict[str, Look] = {}
    for role, (preset, paint) in defaults.items():
        look = PRESETS[preset]
        if paint == 1 and preset == "paint" and not colors:
            # a car with no colour word: the seed picks a paint
            look = replace(look, color=COLORS[PAINT_COLORS[int(rng.integers(len(PAINT_COLORS)))]])
        if paint:
            slot = paint - 1
            if len(mats) > slot:
                look = PRESETS[mats[slot]]
            elif slot == 1 and len(mats) == 1 and len(colors) < 2:
                look = look  # the secondary keeps its own material
            if len(colors) > slot:
                word = colors[slot]
                look = replace(look, color=COLORS[word])
                if word in METAL_COLORS:
                    look = replace(
                        look, metallic=1.0, roughness=min(look.roughness, 0.3), pattern="brushed"
                    )
            if glow and paint == 1:
                look = replace(look, emissive=0.8)
        looks[role] = look
    return looks


# --------------------------------------------------------------------- textures


def _noise(rng: np.random.Generator, size: int, beta: float, aniso: float = 1.0) -> np.ndarray:
    """Tileable fractal noise in [0, 1] (spectral synthesis: periodic by construction)."""
    spec = np.fft.rfft2(rng.standard_normal((size, size)))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt((fx / aniso) ** 2 + (fy * aniso) ** 2)
    f[0, 0] = 1.0
    spec *= f ** (-beta / 2)
    spec[0, 0] = 0.0
    out = np.fft.irfft2(spec, s=(size, size))
    out /= 4 * out.std() + 1e-12
    return np.clip(out + 0.5, 0.0, 1.0)


def _pattern(kind: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
    """A (size, size) variation field in [0, 1] and how strongly it modulates the colour."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == "wood":
        warp = _noise(rng, size, 3.0)
        rings = np.sin(2 * np.pi * (6 * yy + 1.5 * warp)) * 0.5 + 0.5
        grain = _noise(rng, size, 1.4, aniso=6.0)
        return 0.65 * rings**1.5 + 0.35 * grain, 0.45
    if kind == "brushed":
        return _noise(rng, size, 1.2, aniso=10.0), 0.16
    if kind == "stone":
        speck = (rng.random((size, size)) > 0.985) * 0.4
        return np.clip(
            0.8 * _noise(rng, size, 2.2) + 0.2 * _noise(rng, size, 1.0) + speck, 0, 1
        ), 0.4
    if kind == "fabric":
        weave = (np.sin(2 * np.pi * 64 * xx) * np.sin(2 * np.pi * 64 * yy)) * 0.5 + 0.5
        return 0.45 * weave + 0.55 * _noise(rng, size, 1.8), 0.3
    if kind == "foliage":
        return np.clip(0.6 * _noise(rng, size, 1.6) + 0.4 * _noise(rng, size, 0.6), 0, 1), 0.5
    if kind == "scales":
        cell = np.abs(
            np.sin(np.pi * 16 * (xx + 0.5 * np.floor(16 * yy) / 16)) * np.sin(np.pi * 16 * yy)
        )
        return 0.6 * cell**0.5 + 0.4 * _noise(rng, size, 2.0), 0.4
    if kind == "tiles":
        rows = (16 * yy) % 1.0
        shift = np.floor(16 * yy) % 2 * 0.5
        cols = np.abs(((8 * xx + shift) % 1.0) - 0.5) > 0.47
        return np.clip(0.6 * rows + 0.4 * _noise(rng, size, 2.0) - 0.5 * cols, 0, 1), 0.4
    if kind == "brick":
        rowi = np.floor(8 * yy)
        mortar = ((8 * yy) % 1.0 < 0.08) | (((4 * xx + 0.5 * (rowi % 2)) % 1.0) < 0.04)
        tone = _noise(rng, size, 2.4)
        return np.where(mortar, 1.0, 0.35 + 0.5 * tone), 0.45
    if kind == "paint":
        return _noise(rng, size, 2.6), 0.07
    return _noise(rng, size, 2.0), 0.22


def _texture(look: Look, rng: np.random.Generator, size: int) -> tuple[Image.Image, Image.Image]:
    """Base colour (sRGB, tinted pattern) and glTF metallic-roughness map (G rough, B metal)."""
    field, amp = _pattern(look.pattern, rng, size)
    color = np.asarray(look.color, dtype=np.float64)
    rgb = color[None, None, :] * (1.0 - amp + 2.0 * amp * field[..., None])
    # a little independent per-channel grain: real albedo maps are never a single ramp
    rgb += (rng.random((size, size, 3)) - 0.5) * (6.0 + 10.0 * amp)
    base = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    small = field[::2, ::2] if size >= 256 else field
    mr = np.empty(small.shape + (3,), dtype=np.uint8)
    mr[..., 0] = 255
    mr[..., 1] = np.clip(255 * (0.78 + 0.22 * (1 - small)), 0, 255).astype(np.uint8)
    mr[..., 2] = 255
    return base, Image.fromarray(mr)


def _material(
    name: str, look: Look, tex: Image.Image | None, mr: Image.Image | None, pbr: bool
) -> PBRMaterial | SimpleMaterial:
    srgb = np.asarray(look.color, dtype=np.float64)
    if not pbr:
        diffuse = np.append(srgb if tex is None else [255.0, 255.0, 255.0], 255 * look.alpha)
        gloss = 2.0 / max(look.roughness, 0.05) ** 4 - 2.0
        return SimpleMaterial(
            name=name,
            image=tex,
            diffuse=diffuse.round().astype(np.uint8),
            ambient=(255, 255, 255, 255),
            specular=(40, 40, 40, 255),
            glossiness=float(min(gloss, 1000.0)),
        )
    factor = np.ones(4) if tex is not None else np.append(_srgb_to_linear(srgb), 1.0)
    factor[3] = look.alpha
    emissive = _srgb_to_linear(srgb) * look.emissive if look.emissive else None
    return PBRMaterial(
        name=name,
        baseColorFactor=factor,
        baseColorTexture=tex,
        metallicFactor=float(look.metallic),
        roughnessFactor=float(look.roughness),
        metallicRoughnessTexture=mr,
        emissiveFactor=emissive,
        alphaMode="BLEND" if look.alpha < 1 else None,
    )


# ---------------------------------------------------------------- scene assembly


def _compact(p: _Part) -> _Part:
    """Drop vertices no face uses (pole seams, degenerate caps): counts stay honest."""
    used, inv = np.unique(p.f, return_inverse=True)
    return _Part(p.v[used], p.n[used], p.uv[used], inv.reshape(-1, 3))


def _flat_shaded(p: _Part) -> _Part:
    v = p.v[p.f].reshape(-1, 3)
    fn = _face_normals(p.v, p.f)
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
    return _Part(v, np.repeat(fn, 3, 0), p.uv[p.f].reshape(-1, 2), np.arange(len(v)).reshape(-1, 3))


def _scene(
    meshes: dict[str, _Part],
    materials: dict[str, PBRMaterial | SimpleMaterial],
    textured: bool,
    name: str,
) -> trimesh.Scene:
    lo = np.min([p.v.min(axis=0) for p in meshes.values()], axis=0)
    hi = np.max([p.v.max(axis=0) for p in meshes.values()], axis=0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -lo[1], -(lo[2] + hi[2]) / 2])
    scene = trimesh.Scene()
    for role, part in meshes.items():
        visual = TextureVisuals(uv=part.uv if textured else None, material=materials[role])
        mesh = trimesh.Trimesh(
            vertices=(part.v + shift).astype(np.float32).astype(np.float64),
            faces=part.f,
            vertex_normals=part.n,
            visual=visual,
            process=False,
        )
        node = f"{name}_{role}"
        scene.add_geometry(mesh, geom_name=node, node_name=node)
    return scene


def _face_budget(face_target: int | None, default: int) -> int:
    return int(np.clip(face_target if face_target else default, MIN_FACES, MAX_FACES))


def model_from_prompt(
    prompt: str,
    seed: int,
    *,
    textured: bool = True,
    pbr: bool = True,
    low_poly: bool = False,
    face_target: int | None = None,
) -> trimesh.Scene:
    """A procedural model whose shape and colours follow the prompt; deterministic."""
    words = _words(prompt)
    shape = _pick_shape(words, prompt)
    key = (" ".join(words), int(seed))
    target = _face_budget(face_target, LOW_POLY_FACES if low_poly else DEFAULT_FACES)

    def build(q: float) -> _Builder:
        b = _Builder(_rng("shape", key), q, low_poly)
        shape(b)
        return b

    # Face count grows roughly with q^2 but in steps (bevels appear, rings are added):
    # secant steps on log(q), falling back to bisection inside the bracket; keep the best.
    q, lo, hi = 1.0, 0.0, math.inf
    best: tuple[float, _Builder] | None = None
    for _ in range(8):
        b = build(q)
        faces = max(1, sum(len(p.f) for parts in b.parts.values() for p in parts))
        miss = abs(math.log(target / faces))
        if best is None or miss < best[0]:
            best = (miss, b)
        if miss < math.log(1.25):
            break
        if faces < target:
            lo = max(lo, q)
        else:
            hi = min(hi, q)
        q_next = float(np.clip(q * (target / faces) ** 0.5, 0.02, 40.0))
        if not lo < q_next < hi:
            q_next = math.sqrt(lo * hi) if lo > 0 and hi < math.inf else q_next
        if q_next == q:
            break
        q = q_next
    b = best[1]

    looks = _prompt_looks(words, b.looks, _rng("looks", key))
    meshes = {role: _compact(_concat(parts)) for role, parts in b.parts.items()}
    if low_poly:
        meshes = {role: _flat_shaded(p) for role, p in meshes.items()}
    materials = {}
    primary = next(iter(b.looks))
    for role in meshes:
        look = looks[role]
        tex = mr = None
        if textured and look.pattern != "none":
            size = TEXTURE_SIZE if role == primary else SECONDARY_TEXTURE_SIZE
            tex, mr = _texture(look, _rng("texture", key, role), size)
        materials[role] = _material(role, look, tex, mr if pbr else None, pbr)
    return _scene(meshes, materials, textured, "model")


# ------------------------------------------------------------------ image relief


def _open_image(data: bytes, longest: int) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    if img.format == "JPEG":
        img.draft("RGB", (longest * 2, longest * 2))  # decode big JPEGs at reduced scale
    img = ImageOps.exif_transpose(img)
    img = img.convert("RGBA")
    if max(img.size) > longest:
        scale = longest / max(img.size)
        img = img.resize(
            (max(1, round(img.width * scale)), max(1, round(img.height * scale))),
            Image.Resampling.LANCZOS,
        )
    return img


def _silhouette(rgba: np.ndarray) -> np.ndarray:
    """Foreground mask: alpha if the image has transparency, else distance from the border."""
    alpha = rgba[..., 3]
    if alpha.min() < 0.5 and alpha.max() > 0.5:
        mask = alpha > 0.5
    else:
        rgb = rgba[..., :3]
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        bg = np.median(border, axis=0)
        spread = np.percentile(np.abs(border - bg).max(axis=1), 90)
        dist = np.abs(rgb - bg).max(axis=2)
        mask = dist > max(0.1, 2.5 * spread)
        if spread > 0.2:  # busy border: a photo without a plain background
            mask[:] = True
    img = Image.fromarray((mask * 255).astype(np.uint8))
    img = img.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))  # specks
    img = img.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))  # pinholes
    mask = np.asarray(img) > 127
    if mask.mean() < 0.01:
        mask[:] = True
    return mask


def _inset_distance(mask: np.ndarray, steps: int) -> np.ndarray:
    """Approximate distance (in cells) from the outside, by repeated 4-neighbour erosion."""
    dist = np.zeros(mask.shape)
    cur = np.pad(mask, 1)
    for _ in range(steps):
        dist += cur[1:-1, 1:-1]
        nxt = cur.copy()
        nxt[1:-1, 1:-1] = (
            cur[1:-1, 1:-1] & cur[:-2, 1:-1] & cur[2:, 1:-1] & cur[1:-1, :-2] & cur[1:-1, 2:]
        )
        if not nxt.any():
            break
        cur = nxt
    return dist


def _relief(
    front: Image.Image,
    back: Image.Image | None,
    side: Image.Image | None,
    seed: int,
    textured: bool,
    pbr: bool,
    face_target: int | None,
    tag: bytes,
) -> trimesh.Scene:
    rng = _rng("relief", tag, int(seed))
    target = _face_budget(face_target, DEFAULT_FACES)
    probe = np.asarray(front.resize((48, 48), Image.Resampling.BOX), dtype=np.float64) / 255
    fill = max(float(_silhouette(probe).mean()), 0.05)
    n = int(np.clip(math.sqrt(target / (4.2 * fill)), 8, 256))
    aspect = front.width / front.height
    gw, gh = (n, max(4, round(n / aspect))) if aspect >= 1 else (max(4, round(n * aspect)), n)
    grid = np.asarray(front.resize((gw, gh), Image.Resampling.BOX), dtype=np.float64) / 255
    mask = _silhouette(grid)
    longest = 1.0  # metres: the relief stands about as tall as a small statue
    cell = longest / max(gw, gh)
    if side is not None:
        sm = _silhouette(np.asarray(side.resize((64, 64), Image.Resampling.BOX), dtype=float) / 255)
        cols, rows = np.nonzero(sm.any(axis=0))[0], np.nonzero(sm.any(axis=1))[0]
        side_aspect = (np.ptp(cols) + 1) / (np.ptp(rows) + 1) * side.width / side.height
        rows_f = np.nonzero(mask.any(axis=1))[0]
        depth = float(np.clip(side_aspect * (np.ptp(rows_f) + 1) * cell, 0.05, 1.5)) / 2
    else:
        depth = 0.16 * rng.uniform(0.9, 1.1)
    steps = max(2, max(gw, gh) // 5)
    dist = _inset_distance(mask, steps)
    # blur the stepped erosion distance, or the dome shows terraces
    dist = np.asarray(
        Image.fromarray(np.clip(dist * 255 / steps, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(max(1.0, steps / 6))
        ),
        dtype=float,
    )
    dist = dist / 255 * mask
    dome = 1.0 - (1.0 - np.clip(dist, 0, 1)) ** 2  # rounded, but thin at the rim
    luma = grid[..., :3] @ np.array([0.299, 0.587, 0.114])
    luma = (
        np.asarray(
            Image.fromarray((luma * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0)),
            dtype=np.float64,
        )
        / 255
    )
    zf = depth * dome * (0.55 + 0.45 * luma) + 0.004
    zb = -(depth * 0.8 * dome + 0.004)

    jj, ii = np.meshgrid(np.arange(gw), np.arange(gh))
    x = (jj - (gw - 1) / 2) * cell
    y = (gh - 1 - ii) * cell
    u = (jj + 0.5) / gw
    v = 1.0 - (ii + 0.5) / gh
    a = (ii[:-1, :-1] * gw + jj[:-1, :-1]).ravel()
    cand = np.concatenate(
        [np.stack([a, a + gw, a + 1], 1), np.stack([a + 1, a + gw, a + gw + 1], 1)]
    )
    flat_mask = mask.ravel()
    tris = cand[flat_mask[cand].all(axis=1)]
    if len(tris) == 0:
        raise ValueError("image has no usable silhouette")
    used, tris = np.unique(tris, return_inverse=True)
    tris = tris.reshape(-1, 3)
    xs, ys = x.ravel()[used], y.ravel()[used]
    u_front = u.ravel()[used]
    vs = v.ravel()[used]
    vf = np.column_stack([xs, ys, zf.ravel()[used]])
    vb = np.column_stack([xs, ys, zb.ravel()[used]])
    if back is not None:
        uvf = np.column_stack([u_front * 0.5, vs])
        uvb = np.column_stack([0.5 + 0.5 * (1 - u_front), vs])
    else:
        uvf = np.column_stack([u_front, vs])
        uvb = uvf
    front_p = _Part(vf, _smooth_normals(vf, tris), uvf, tris)
    back_f = tris[:, ::-1]
    back_p = _Part(vb, _smooth_normals(vb, back_f), uvb, back_f)
    # side walls: every directed front edge whose twin is missing lies on the silhouette
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    nv = len(vf)
    keys = edges[:, 0] * nv + edges[:, 1]
    boundary = edges[~np.isin(keys, edges[:, 1] * nv + edges[:, 0])]
    p, q = boundary[:, 0], boundary[:, 1]
    walls = np.concatenate([np.stack([vf[p], vb[p], vf[q]], 1), np.stack([vf[q], vb[p], vb[q]], 1)])
    wall_uv = np.concatenate(
        [np.stack([uvf[p], uvf[p], uvf[q]], 1), np.stack([uvf[q], uvf[p], uvf[q]], 1)]
    )
    wn = np.cross(walls[:, 1] - walls[:, 0], walls[:, 2] - walls[:, 0])
    good = np.linalg.norm(wn, axis=1) > 1e-14
    walls, wall_uv, wn = walls[good], wall_uv[good], wn[good]
    wn /= np.linalg.norm(wn, axis=1, keepdims=True)
    wall = _Part(
        walls.reshape(-1, 3),
        np.repeat(wn, 3, 0),
        wall_uv.reshape(-1, 2),
        np.arange(3 * len(walls)).reshape(-1, 3),
    )
    part = _compact(_concat([front_p, back_p, wall]))

    tex_img = front.convert("RGB")
    if max(tex_img.size) > IMAGE_TEXTURE_SIZE:
        tex_img.thumbnail((IMAGE_TEXTURE_SIZE, IMAGE_TEXTURE_SIZE), Image.Resampling.LANCZOS)
    if back is not None:
        back_img = back.convert("RGB").resize(tex_img.size, Image.Resampling.LANCZOS)
        atlas = Image.new("RGB", (tex_img.width * 2, tex_img.height))
        atlas.paste(tex_img, (0, 0))
        atlas.paste(back_img, (tex_img.width, 0))
        tex_img = atlas
    fg = grid[mask][:, :3]
    mean_rgb = tuple(float(c) for c in (fg.mean(axis=0) * 255))
    look = Look(mean_rgb, 0.0, float(rng.uniform(0.55, 0.7)), "noise")
    mr = None
    if textured and pbr:
        lum = np.asarray(tex_img.convert("L").resize((256, 256)), dtype=np.float64) / 255
        mr_arr = np.stack(
            [np.full_like(lum, 255), 255 * (0.85 + 0.15 * (1 - lum)), np.full_like(lum, 255)], -1
        )
        mr = Image.fromarray(mr_arr.astype(np.uint8))
    material = _material("relief", look, tex_img if textured else None, mr, pbr)
    return _scene({"relief": part}, {"relief": material}, textured, "model")


def model_from_image(
    image_bytes: bytes,
    seed: int,
    *,
    textured: bool = True,
    pbr: bool = True,
    face_target: int | None = None,
) -> trimesh.Scene:
    """A relief built from the picture: silhouette, brightness-driven front, image texture."""
    front = _open_image(image_bytes, 1024)
    tag = hashlib.sha256(image_bytes).digest()
    return _relief(front, None, None, seed, textured, pbr, face_target, tag)


def model_from_images(
    images: list[bytes],
    seed: int,
    *,
    textured: bool = True,
    pbr: bool = True,
    face_target: int | None = None,
) -> trimesh.Scene:
    """Multi-view: the first (front) view makes the relief; in the Tripo order (front, left,
    back, right) the second view sets the depth and the third textures the back."""
    if not images:
        raise ValueError("at least one image is required")
    front = _open_image(images[0], 1024)
    side = _open_image(images[1], 256) if len(images) > 1 else None
    back = _open_image(images[2], 1024) if len(images) > 2 else None
    tag = hashlib.sha256(b"".join(hashlib.sha256(i).digest() for i in images)).digest()
    return _relief(front, back, side, seed, textured, pbr, face_target, tag)


# --------------------------------------------------------------------- exporters


def _world_meshes(scene: trimesh.Scene) -> list[tuple[str, trimesh.Trimesh]]:
    out = []
    for node in scene.graph.nodes_geometry:
        matrix, geom = scene.graph[node]
        mesh = scene.geometry[geom]
        if not isinstance(mesh, trimesh.Trimesh):
            continue
        if not np.allclose(matrix, np.eye(4)):
            mesh = mesh.copy()
            mesh.apply_transform(matrix)
        out.append((str(node), mesh))
    return out


def _pbr_of(material) -> PBRMaterial:
    """glTF view of a material. A SimpleMaterial becomes an explicitly dielectric PBR one:
    trimesh's own conversion leaves metallicFactor unset, which glTF reads as 1.0 (a dark,
    fully metallic look in <model-viewer>)."""
    if isinstance(material, PBRMaterial):
        return material
    if isinstance(material, SimpleMaterial):
        diffuse = np.asarray(material.diffuse, dtype=np.float64)
        factor = np.append(_srgb_to_linear(diffuse[:3]), diffuse[3] / 255)
        gloss = float(material.glossiness or 0.0)
        return PBRMaterial(
            name=material.name,
            baseColorFactor=factor,
            baseColorTexture=material.image,
            metallicFactor=0.0,
            roughnessFactor=float((2 / (gloss + 2)) ** 0.25),
            alphaMode="BLEND" if diffuse[3] < 255 else None,
        )
    return PBRMaterial(metallicFactor=0.0, roughnessFactor=0.8)


def glb_bytes(scene: trimesh.Scene) -> bytes:
    """Binary glTF 2.0 with normals, UVs, PBR materials and embedded PNG textures."""
    out = trimesh.Scene()
    for node in scene.graph.nodes_geometry:
        matrix, geom = scene.graph[node]
        mesh = scene.geometry[geom]
        if isinstance(mesh, trimesh.Trimesh) and isinstance(mesh.visual, TextureVisuals):
            mesh = trimesh.Trimesh(
                vertices=mesh.vertices,
                faces=mesh.faces,
                vertex_normals=mesh.vertex_normals,
                visual=TextureVisuals(uv=mesh.visual.uv, material=_pbr_of(mesh.visual.material)),
                process=False,
            )
        out.add_geometry(mesh, geom_name=str(geom), node_name=str(node), transform=matrix)
    return out.export(file_type="glb", include_normals=True)


def _material_info(material) -> tuple[np.ndarray, Image.Image | None, float, float]:
    """(sRGB RGBA 0-1, texture, metallic, roughness) of either material kind."""
    if isinstance(material, PBRMaterial):
        f = (
            np.asarray(
                material.baseColorFactor
                if material.baseColorFactor is not None
                else [255, 255, 255, 255],
                dtype=np.float64,
            )
            / 255
        )
        rgba = np.append(_linear_to_srgb(f[:3]) / 255, f[3])
        metal = material.metallicFactor if material.metallicFactor is not None else 1.0
        rough = material.roughnessFactor if material.roughnessFactor is not None else 1.0
        return rgba, material.baseColorTexture, float(metal), float(rough)
    if isinstance(material, SimpleMaterial):
        d = np.asarray(material.diffuse, dtype=np.float64) / 255
        gloss = float(material.glossiness or 0.0)
        return d, material.image, 0.0, float((2 / (gloss + 2)) ** 0.25)
    return np.array([0.8, 0.8, 0.8, 1.0]), None, 0.0, 0.8


def _fmt(prefix: str, arr: np.ndarray, fmt: str) -> str:
    buf = io.StringIO()
    np.savetxt(buf, arr, fmt=f"{prefix} {fmt}")
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # deterministic
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def obj_zip_bytes(scene: trimesh.Scene) -> bytes:
    """A ZIP of model.obj + model.mtl + one PNG per textured material (Hunyuan Rapid style)."""
    obj = ["# Studio Dashboard sandbox", "mtllib model.mtl"]
    mtl = ["# Studio Dashboard sandbox"]
    files: dict[str, bytes] = {}
    offset = 0
    for node, mesh in _world_meshes(scene):
        material = getattr(mesh.visual, "material", None)
        rgba, tex, metal, rough = _material_info(material)
        uv = getattr(mesh.visual, "uv", None)
        has_uv = uv is not None and len(uv) == len(mesh.vertices)
        name = re.sub(r"[^A-Za-z0-9_]", "_", node)
        obj.append(f"o {name}")
        obj.append(_fmt("v", mesh.vertices, "%.6f %.6f %.6f").rstrip("\n"))
        if has_uv:
            obj.append(_fmt("vt", uv[:, :2], "%.6f %.6f").rstrip("\n"))
        obj.append(_fmt("vn", mesh.vertex_normals, "%.5f %.5f %.5f").rstrip("\n"))
        obj.append(f"usemtl {name}")
        idx = mesh.faces + offset + 1
        if has_uv:
            tri = np.repeat(idx, 3, axis=1)
            obj.append(_fmt("f", tri, "%d/%d/%d %d/%d/%d %d/%d/%d").rstrip("\n"))
        else:
            tri = np.repeat(idx, 2, axis=1)
            obj.append(_fmt("f", tri, "%d//%d %d//%d %d//%d").rstrip("\n"))
        offset += len(mesh.vertices)
        kd = np.ones(3) if tex is not None else rgba[:3]
        mtl += [
            f"newmtl {name}",
            "Ka 1.000000 1.000000 1.000000",
            "Kd {:.6f} {:.6f} {:.6f}".format(*kd),
            "Ks 0.040000 0.040000 0.040000",
            f"Ns {min(2.0 / max(rough, 0.05) ** 4 - 2.0, 1000.0):.4f}",
            f"d {rgba[3]:.4f}",
            "illum 2",
            f"Pr {rough:.4f}",
            f"Pm {metal:.4f}",
        ]
        if tex is not None and has_uv:
            tex_name = f"{name}_basecolor.png"
            files[tex_name] = _png(tex)
            mtl.append(f"map_Kd {tex_name}")
        mtl.append("")
    return _zip(
        {
            "model.obj": ("\n".join(obj) + "\n").encode(),
            "model.mtl": ("\n".join(mtl) + "\n").encode(),
            **files,
        }
    )


# FBX ------------------------------------------------------------------------------

_FBX_MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
_FBX_FOOTER_ID = bytes.fromhex("fabcab09d0c8d466b176fb831cf7267e")
_FBX_FOOTER_MAGIC = bytes.fromhex("f85a8c6adef5d97eece90ce3758f290b")
_FBX_FILE_ID = bytes.fromhex("28b32aebb624ccc2bfc8b02aa92bfcf1")
_FBX_NULL = b"\x00" * 13

FbxProp = tuple[str, object]
FbxNode = tuple[str, list[FbxProp], list["FbxNode"]]


def _fbx_prop(code: str, value: object) -> bytes:
    if code in "ifdlb":
        arr = np.ascontiguousarray(
            value, dtype={"i": "<i4", "f": "<f4", "d": "<f8", "l": "<i8", "b": "u1"}[code]
        ).ravel()
        raw = arr.tobytes()
        if len(raw) > 128:
            data = zlib.compress(raw, 6)
            return code.encode() + struct.pack("<III", len(arr), 1, len(data)) + data
        return code.encode() + struct.pack("<III", len(arr), 0, len(raw)) + raw
    if code in "SR":
        data = value.encode() if isinstance(value, str) else bytes(value)
        return code.encode() + struct.pack("<I", len(data)) + data
    fmt = {"Y": "<h", "C": "<?", "I": "<i", "F": "<f", "D": "<d", "L": "<q"}[code]
    return code.encode() + struct.pack(fmt, value)


def _fbx_node(node: FbxNode, start: int) -> bytes:
    name, props, children = node
    prop_bytes = b"".join(_fbx_prop(c, v) for c, v in props)
    head_len = 13 + len(name)
    body = bytearray()
    pos = start + head_len + len(prop_bytes)
    for child in children:
        enc = _fbx_node(child, pos)
        body += enc
        pos += len(enc)
    if children or not props:
        body += _FBX_NULL
    end = start + head_len + len(prop_bytes) + len(body)
    head = struct.pack("<IIIB", end, len(props), len(prop_bytes), len(name)) + name.encode()
    return head + prop_bytes + bytes(body)


def _p70(name: str, kind: str, label: str, flags: str, *values: FbxProp) -> FbxNode:
    return ("P", [("S", name), ("S", kind), ("S", label), ("S", flags), *values], [])


def _fbx_document(nodes: list[FbxNode]) -> bytes:
    out = bytearray(_FBX_MAGIC + struct.pack("<I", 7400))
    for node in nodes:
        out += _fbx_node(node, len(out))
    out += _FBX_NULL + _FBX_FOOTER_ID + b"\x00" * 4
    pad = (16 - len(out) % 16) % 16 or 16
    out += b"\x00" * pad + struct.pack("<I", 7400) + b"\x00" * 120 + _FBX_FOOTER_MAGIC
    return bytes(out)


def fbx_bytes(scene: trimesh.Scene) -> bytes:
    """A minimal binary FBX 7.4: one Model + Geometry + Material (+ embedded texture) per mesh,
    Y-up, 1 unit = 1 m (UnitScaleFactor 100 cm)."""
    objects: list[FbxNode] = []
    links: list[FbxNode] = []
    counts = {"Model": 0, "Geometry": 0, "Material": 0, "Texture": 0, "Video": 0}
    next_id = 1_000_000
    for node_name, mesh in _world_meshes(scene):
        name = re.sub(r"[^A-Za-z0-9_]", "_", node_name)
        gid, mid, matid, tid, vid = range(next_id, next_id + 5)
        next_id += 5
        rgba, tex, metal, rough = _material_info(getattr(mesh.visual, "material", None))
        faces = mesh.faces.astype(np.int64)
        pvi = faces.copy()
        pvi[:, 2] = -pvi[:, 2] - 1  # a negative (bitwise-not) index closes each polygon
        corner_normals = mesh.vertex_normals[faces].reshape(-1, 3)
        layer_elems: list[FbxNode] = [
            (
                "LayerElement",
                [],
                [("Type", [("S", "LayerElementNormal")], []), ("TypedIndex", [("I", 0)], [])],
            ),
            (
                "LayerElement",
                [],
                [("Type", [("S", "LayerElementMaterial")], []), ("TypedIndex", [("I", 0)], [])],
            ),
        ]
        geom_children: list[FbxNode] = [
            ("Vertices", [("d", mesh.vertices)], []),
            ("PolygonVertexIndex", [("i", pvi)], []),
            ("GeometryVersion", [("I", 124)], []),
            (
                "LayerElementNormal",
                [("I", 0)],
                [
                    ("Version", [("I", 101)], []),
                    ("Name", [("S", "")], []),
                    ("MappingInformationType", [("S", "ByPolygonVertex")], []),
                    ("ReferenceInformationType", [("S", "Direct")], []),
                    ("Normals", [("d", corner_normals)], []),
                ],
            ),
        ]
        uv = getattr(mesh.visual, "uv", None)
        if uv is not None and len(uv) == len(mesh.vertices):
            geom_children.append(
                (
                    "LayerElementUV",
                    [("I", 0)],
                    [
                        ("Version", [("I", 101)], []),
                        ("Name", [("S", "UVMap")], []),
                        ("MappingInformationType", [("S", "ByPolygonVertex")], []),
                        ("ReferenceInformationType", [("S", "IndexToDirect")], []),
                        ("UV", [("d", uv[:, :2])], []),
                        ("UVIndex", [("i", faces.ravel())], []),
                    ],
                )
            )
            layer_elems.append(
                (
                    "LayerElement",
                    [],
                    [("Type", [("S", "LayerElementUV")], []), ("TypedIndex", [("I", 0)], [])],
                )
            )
        geom_children += [
            (
                "LayerElementMaterial",
                [("I", 0)],
                [
                    ("Version", [("I", 101)], []),
                    ("Name", [("S", "")], []),
                    ("MappingInformationType", [("S", "AllSame")], []),
                    ("ReferenceInformationType", [("S", "IndexToDirect")], []),
                    ("Materials", [("i", [0])], []),
                ],
            ),
            ("Layer", [("I", 0)], [("Version", [("I", 100)], []), *layer_elems]),
        ]
        objects.append(
            (
                "Geometry",
                [("L", gid), ("S", f"{name}\x00\x01Geometry"), ("S", "Mesh")],
                geom_children,
            )
        )
        objects.append(
            (
                "Model",
                [("L", mid), ("S", f"{name}\x00\x01Model"), ("S", "Mesh")],
                [
                    ("Version", [("I", 232)], []),
                    (
                        "Properties70",
                        [],
                        [
                            _p70(
                                "Lcl Translation",
                                "Lcl Translation",
                                "",
                                "A",
                                ("D", 0.0),
                                ("D", 0.0),
                                ("D", 0.0),
                            ),
                            _p70("DefaultAttributeIndex", "int", "Integer", "", ("I", 0)),
                        ],
                    ),
                    ("MultiLayer", [("I", 0)], []),
                    ("MultiTake", [("I", 0)], []),
                    ("Shading", [("C", True)], []),
                    ("Culling", [("S", "CullingOff")], []),
                ],
            )
        )
        color = [("D", float(c)) for c in rgba[:3]]
        objects.append(
            (
                "Material",
                [("L", matid), ("S", f"{name}\x00\x01Material"), ("S", "")],
                [
                    ("Version", [("I", 102)], []),
                    ("ShadingModel", [("S", "phong")], []),
                    ("MultiLayer", [("I", 0)], []),
                    (
                        "Properties70",
                        [],
                        [
                            _p70("DiffuseColor", "Color", "", "A", *color),
                            _p70("DiffuseFactor", "Number", "", "A", ("D", 1.0)),
                            _p70("Opacity", "Number", "", "A", ("D", float(rgba[3]))),
                            _p70(
                                "Shininess",
                                "Number",
                                "",
                                "A",
                                ("D", float(2 / max(rough, 0.05) ** 4 - 2)),
                            ),
                            _p70("ReflectionFactor", "Number", "", "A", ("D", float(metal))),
                        ],
                    ),
                ],
            )
        )
        links += [
            ("C", [("S", "OO"), ("L", mid), ("L", 0)], []),
            ("C", [("S", "OO"), ("L", gid), ("L", mid)], []),
            ("C", [("S", "OO"), ("L", matid), ("L", mid)], []),
        ]
        counts["Model"] += 1
        counts["Geometry"] += 1
        counts["Material"] += 1
        if tex is not None and uv is not None:
            fname = f"{name}_basecolor.png"
            objects.append(
                (
                    "Video",
                    [("L", vid), ("S", f"{name}\x00\x01Video"), ("S", "Clip")],
                    [
                        ("Type", [("S", "Clip")], []),
                        (
                            "Properties70",
                            [],
                            [_p70("Path", "KString", "XRefUrl", "", ("S", fname))],
                        ),
                        ("UseMipMap", [("I", 0)], []),
                        ("Filename", [("S", fname)], []),
                        ("RelativeFilename", [("S", fname)], []),
                        ("Content", [("R", _png(tex))], []),
                    ],
                )
            )
            objects.append(
                (
                    "Texture",
                    [("L", tid), ("S", f"{name}\x00\x01Texture"), ("S", "")],
                    [
                        ("Type", [("S", "TextureVideoClip")], []),
                        ("Version", [("I", 202)], []),
                        ("TextureName", [("S", f"{name}\x00\x01Texture")], []),
                        ("Media", [("S", f"{name}\x00\x01Video")], []),
                        ("FileName", [("S", fname)], []),
                        ("RelativeFilename", [("S", fname)], []),
                        ("ModelUVTranslation", [("D", 0.0), ("D", 0.0)], []),
                        ("ModelUVScaling", [("D", 1.0), ("D", 1.0)], []),
                        ("Texture_Alpha_Source", [("S", "None")], []),
                        ("Cropping", [("I", 0), ("I", 0), ("I", 0), ("I", 0)], []),
                    ],
                )
            )
            links += [
                ("C", [("S", "OP"), ("L", tid), ("L", matid), ("S", "DiffuseColor")], []),
                ("C", [("S", "OO"), ("L", vid), ("L", tid)], []),
            ]
            counts["Texture"] += 1
            counts["Video"] += 1

    stamp = [
        ("Version", 1000),
        ("Year", 1970),
        ("Month", 1),
        ("Day", 1),
        ("Hour", 0),
        ("Minute", 0),
        ("Second", 0),
        ("Millisecond", 0),
    ]
    axes = [
        ("UpAxis", 1),
        ("UpAxisSign", 1),
        ("FrontAxis", 2),
        ("FrontAxisSign", 1),
        ("CoordAxis", 0),
        ("CoordAxisSign", 1),
        ("OriginalUpAxis", 1),
        ("OriginalUpAxisSign", 1),
    ]
    definitions: list[FbxNode] = [
        ("Version", [("I", 100)], []),
        ("Count", [("I", 1 + sum(counts.values()))], []),
        ("ObjectType", [("S", "GlobalSettings")], [("Count", [("I", 1)], [])]),
    ]
    definitions += [
        ("ObjectType", [("S", k)], [("Count", [("I", v)], [])]) for k, v in counts.items() if v
    ]
    nodes: list[FbxNode] = [
        (
            "FBXHeaderExtension",
            [],
            [
                ("FBXHeaderVersion", [("I", 1003)], []),
                ("FBXVersion", [("I", 7400)], []),
                ("EncryptionType", [("I", 0)], []),
                ("CreationTimeStamp", [], [(k, [("I", v)], []) for k, v in stamp]),
                ("Creator", [("S", "Studio Dashboard sandbox")], []),
            ],
        ),
        ("FileId", [("R", _FBX_FILE_ID)], []),
        ("CreationTime", [("S", "1970-01-01 00:00:00:000")], []),
        ("Creator", [("S", "Studio Dashboard sandbox")], []),
        (
            "GlobalSettings",
            [],
            [
                ("Version", [("I", 1000)], []),
                (
                    "Properties70",
                    [],
                    [
                        *[_p70(k, "int", "Integer", "", ("I", v)) for k, v in axes],
                        _p70("UnitScaleFactor", "double", "Number", "", ("D", 100.0)),
                        _p70("OriginalUnitScaleFactor", "double", "Number", "", ("D", 100.0)),
                    ],
                ),
            ],
        ),
        (
            "Documents",
            [],
            [
                ("Count", [("I", 1)], []),
                (
                    "Document",
                    [("L", 1), ("S", "Scene"), ("S", "Scene")],
                    [
                        ("RootNode", [("L", 0)], []),
                    ],
                ),
            ],
        ),
        ("References", [], []),
        ("Definitions", [], definitions),
        ("Objects", [], objects),
        ("Connections", [], links),
    ]
    return _fbx_document(nodes)


# Thumbnail ------------------------------------------------------------------------


_SPLAT_STEPS = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512])


def _splat(xy: np.ndarray, z: np.ndarray, canvas: int):
    """Sample points of every triangle, under 1 px apart: (pixel index, depth, triangle).

    Each triangle is swept as a fan from the vertex opposite its shortest edge, so a
    long sliver costs samples in proportion to its area, not to its longest edge squared.
    """
    lengths = np.linalg.norm(np.roll(xy, -1, axis=1) - np.roll(xy, 1, axis=1), axis=2)
    apex = np.argmin(lengths, axis=1)  # vertex opposite the shortest edge
    rows = np.arange(len(xy))[:, None]
    turn = (apex[:, None] + np.arange(3)[None, :]) % 3
    xy, z = xy[rows, turn], z[rows, turn]
    short = np.take_along_axis(lengths, apex[:, None], 1)[:, 0]
    long = lengths.max(axis=1)
    bucket = np.searchsorted(_SPLAT_STEPS, np.ceil(np.stack([short, long], 1) / 0.8))
    bucket = np.minimum(bucket, len(_SPLAT_STEPS) - 1)
    key = bucket[:, 0] * len(_SPLAT_STEPS) + bucket[:, 1]
    pix, depth, face = [], [], []
    for k in np.unique(key):
        idx = np.nonzero(key == k)[0]
        ns, nl = _SPLAT_STEPS[k // len(_SPLAT_STEPS)], _SPLAT_STEPS[k % len(_SPLAT_STEPS)]
        t, a = np.meshgrid(np.linspace(0, 1, nl + 1), np.linspace(0, 1, ns + 1), indexing="ij")
        t, a = t.ravel(), a.ravel()
        w = np.column_stack([1 - t, t * (1 - a), t * a])  # apex, then the short edge's ends
        pts = np.einsum("nc,tcd->tnd", w, xy[idx])
        dep = np.einsum("nc,tc->tn", w, z[idx])
        px = np.floor(pts).astype(np.int64)
        ok = (px[..., 0] >= 0) & (px[..., 0] < canvas) & (px[..., 1] >= 0) & (px[..., 1] < canvas)
        pix.append((px[..., 1] * canvas + px[..., 0])[ok])
        depth.append(dep[ok])
        face.append(np.broadcast_to(idx[:, None], ok.shape)[ok])
    return np.concatenate(pix), np.concatenate(depth), np.concatenate(face)


def thumbnail_png(scene: trimesh.Scene, size: int = 256) -> bytes:
    """A 3/4 view drawn with Pillow, flat-shaded under one key light (see render_image)."""
    return _png(render_image(scene, size))


def render_image(
    scene: trimesh.Scene,
    size: int = 256,
    *,
    yaw: float = -35.0,
    pitch: float = 25.0,
    transparent: bool = False,
    shadow: bool = True,
) -> Image.Image:
    """A view from `yaw` degrees around and `pitch` degrees above, z-buffered in software.

    Each face takes the material colour times the texel under its centroid, so a
    textured model shows its texture's tint and variation. With `transparent` the
    background (not the ground shadow) has alpha 0.
    """
    tris, colors = [], []
    for _, mesh in _world_meshes(scene):
        rgba, tex, _, _ = _material_info(getattr(mesh.visual, "material", None))
        col = np.repeat(rgba[None, :3] * 255, len(mesh.faces), 0)
        uv = getattr(mesh.visual, "uv", None)
        if tex is not None and uv is not None and len(uv) == len(mesh.vertices):
            arr = np.asarray(tex.convert("RGB"), dtype=np.float64)
            c = uv[mesh.faces].mean(axis=1) % 1.0
            px = np.clip((c[:, 0] * arr.shape[1]).astype(int), 0, arr.shape[1] - 1)
            py = np.clip(((1 - c[:, 1]) * arr.shape[0]).astype(int), 0, arr.shape[0] - 1)
            col = col * arr[py, px] / 255
        tris.append(mesh.vertices[mesh.faces])
        colors.append(col)
    scale = 2  # supersample, then downscale: cheap antialiasing
    canvas = size * scale
    grad = np.linspace(238, 196, canvas)[:, None, None] * np.ones((1, canvas, 3))
    img = Image.fromarray(grad.astype(np.uint8))
    if not tris:
        return img.resize((size, size), Image.Resampling.LANCZOS)
    tri = np.concatenate(tris)
    col = np.concatenate(colors)
    view = _rot((pitch, 0, 0)) @ _rot((0, yaw, 0))
    p = tri @ view.T
    lo, hi = p.reshape(-1, 3).min(axis=0), p.reshape(-1, 3).max(axis=0)
    extent = max(hi[0] - lo[0], hi[1] - lo[1], 1e-9)
    fit = 0.82 * canvas / extent
    centre = (lo + hi) / 2
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    area = np.linalg.norm(fn, axis=1)
    keep = (fn[:, 2] > 0) & (area > 1e-15)  # camera looks down -z: keep faces turned to it
    p, fn, col, area = p[keep], fn[keep], col[keep], area[keep]
    light = np.array([0.45, 0.75, 0.5])
    light /= np.linalg.norm(light)
    shade = 0.38 + 0.62 * np.clip(fn @ light / area, 0, 1)
    col = np.clip(col * shade[:, None], 0, 255).astype(np.uint8)
    xy = np.empty(p.shape[:2] + (2,))
    xy[..., 0] = canvas / 2 + (p[..., 0] - centre[0]) * fit
    xy[..., 1] = canvas / 2 - (p[..., 1] - centre[1]) * fit
    draw = ImageDraw.Draw(img)
    alpha = Image.new("L", img.size, 0)
    # ground shadow under the object
    base_y = canvas / 2 - (lo[1] - centre[1]) * fit
    ground = [canvas * 0.2, base_y - canvas * 0.04, canvas * 0.8, base_y + canvas * 0.04]
    if shadow:
        draw.ellipse(ground, fill=(178, 178, 182))
        ImageDraw.Draw(alpha).ellipse(ground, fill=110)
    # z-buffer by splatting: sample every triangle densely (< 1 px apart), keep the
    # nearest sample per pixel. Painter's sorting of whole triangles mis-orders large faces.
    frame = np.asarray(img).reshape(-1, 3).copy()
    pix, depth, face = _splat(xy, p[:, :, 2], canvas)
    order = np.lexsort((-depth, pix))
    first = order[np.unique(pix[order], return_index=True)[1]]
    frame[pix[first]] = col[face[first]]
    img = Image.fromarray(frame.reshape(canvas, canvas, 3))
    if transparent:
        covered = np.asarray(alpha).reshape(-1).copy()
        covered[pix[first]] = 255
        img.putalpha(Image.fromarray(covered.reshape(canvas, canvas)))
    return img.resize((size, size), Image.Resampling.LANCZOS)
