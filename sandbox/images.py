"""Pictures for the sandbox: generated and edited images, cut-outs, enhanced photos,
renders (the turntable video is sandbox/video.py). Deterministic: the same inputs and seed give
byte-identical files.

Generated pictures are a gradient sky, a ground and a few shapes whose colours and
layout come from the prompt's hash, with the prompt's first words written in a
corner, so two prompts give visibly different pictures.
"""

import hashlib
import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

# Reading: the nominal sizes (4K = 4096 px) would make every test download megabytes; the
# sandbox keeps the aspect ratio and caps the longest side at this.
MAX_SIDE = 2048
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def size_for(aspect_ratio, long_side):
    """(width, height) for "16:9"-style ratios ("auto" is square), longest side capped."""
    long_side = min(int(long_side), MAX_SIDE)
    if aspect_ratio in (None, "auto"):
        return long_side, long_side
    w, h = (float(x) for x in aspect_ratio.split(":"))
    if w >= h:
        return long_side, max(16, round(long_side * h / w))
    return max(16, round(long_side * w / h)), long_side


def encode(img, fmt="png"):
    out = io.BytesIO()
    kind = FORMATS[fmt]
    if kind == "JPEG":
        img = img.convert("RGB")
        img.save(out, kind, quality=88)
    elif kind == "WEBP":
        img.save(out, kind, quality=85, method=0)
    else:
        img.save(out, kind, compress_level=3)
    return out.getvalue()


def _rng(*key):
    digest = hashlib.sha256(repr(key).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def generate(prompt, seed, width, height):
    """A picture for a prompt: sky, ground, sun and a few shapes, laid out by its hash."""
    rng = _rng("picture", prompt, seed)
    top = np.array([rng.randrange(40, 200) for _ in range(3)], dtype=np.float64)
    bottom = np.array([rng.randrange(120, 255) for _ in range(3)], dtype=np.float64)
    t = np.linspace(0, 1, height)[:, None, None]
    sky = (top * (1 - t) + bottom * t) * np.ones((1, width, 1))
    img = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    horizon = int(height * rng.uniform(0.55, 0.75))
    ground = tuple(rng.randrange(30, 160) for _ in range(3))
    draw.rectangle((0, horizon, width, height), fill=ground)
    side = min(width, height)
    sun = side * rng.uniform(0.06, 0.12)
    sx, sy = width * rng.uniform(0.1, 0.9), height * rng.uniform(0.08, 0.3)
    draw.ellipse((sx - sun, sy - sun, sx + sun, sy + sun), fill=(255, 236, 170))
    for _ in range(rng.randint(2, 5)):
        colour = tuple(rng.randrange(0, 256) for _ in range(3))
        cx = width * rng.uniform(0.15, 0.85)
        r = side * rng.uniform(0.06, 0.18)
        box = (cx - r, horizon - 2 * r, cx + r, horizon)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour, outline=(20, 20, 20), width=max(1, side // 256))
        else:
            draw.rectangle(box, fill=colour, outline=(20, 20, 20), width=max(1, side // 256))
    words = " ".join(prompt.split()[:6])
    draw.text((side // 40 + 2, side // 40 + 2), words, fill=(10, 10, 10))
    draw.text((side // 40, side // 40), words, fill=(250, 250, 250))
    return img


def open_rgb(data, longest=None):
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    img = img.convert("RGBA")
    if longest and max(img.size) > longest:
        img.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return img


def edit(inputs, prompt, seed, width, height):
    """The first input, fitted to the size, tinted by the prompt, the others inset."""
    rng = _rng("edit", prompt, seed)
    base = ImageOps.fit(open_rgb(inputs[0]).convert("RGB"), (width, height))
    tint = Image.new("RGB", base.size, tuple(rng.randrange(0, 256) for _ in range(3)))
    img = Image.blend(base, tint, 0.25)
    inset = max(16, min(width, height) // 5)
    for index, extra in enumerate(inputs[1:4]):
        small = ImageOps.fit(open_rgb(extra).convert("RGB"), (inset, inset))
        img.paste(small, (width - (index + 1) * (inset + 8), height - inset - 8))
    return img


def _background_distance(rgb):
    """Per-pixel distance from the border's median colour, 0-1."""
    arr = np.asarray(rgb, dtype=np.float64)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    ref = np.median(border, axis=0)
    return np.clip(np.linalg.norm(arr - ref, axis=2) / 120.0, 0, 1)


def cutout(data, quality="medium", mask=False):
    """Remove the background (the border colour): an RGBA cut-out, or its grayscale mask."""
    img = open_rgb(data, longest={"low": 512, "medium": 1024, "high": 2048}[quality])
    alpha = Image.fromarray((_background_distance(img.convert("RGB")) * 255).astype(np.uint8))
    radius = {"low": 2, "medium": 1, "high": 0}[quality]
    if radius:
        alpha = alpha.filter(ImageFilter.GaussianBlur(radius))
    if mask:
        return alpha
    img.putalpha(alpha)
    return img


def enhance(data, mode="enhance"):
    """Upscale to at least 1024 px on the longest side, then sharpen (or denoise)."""
    img = open_rgb(data).convert("RGB")
    if max(img.size) < 1024:
        factor = 1024 / max(img.size)
        img = img.resize(
            (round(img.width * factor), round(img.height * factor)), Image.Resampling.LANCZOS
        )
    if mode == "restore":
        img = img.filter(ImageFilter.MedianFilter(3))
    else:
        img = img.filter(ImageFilter.UnsharpMask(radius=2, percent=80, threshold=2))
    return ImageOps.autocontrast(img, cutoff=1)


def styled(data, seed):
    """The miniature flow's 2D step: a posterised, outlined figurine look."""
    img = open_rgb(data, longest=1024).convert("RGB")
    flat = ImageOps.posterize(img.filter(ImageFilter.SMOOTH_MORE), 3)
    edges = ImageOps.invert(img.convert("L").filter(ImageFilter.FIND_EDGES)).point(
        lambda v: 255 if v > 200 else 60
    )
    out = Image.composite(flat, Image.new("RGB", img.size, (30, 30, 30)), edges)
    rng = _rng("styled", seed)
    tint = Image.new("RGB", img.size, tuple(rng.randrange(150, 256) for _ in range(3)))
    return Image.blend(out, tint, 0.12)
