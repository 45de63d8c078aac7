"""Posters drawn on the CPU (generations/posters.py), their task and the backfill command."""

import io
import logging
import struct
import uuid

import numpy as np
import pytest
import trimesh
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image
from trimesh.visual.material import PBRMaterial

from generations import posters, tasks
from generations.models import Asset, State
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = pytest.mark.usefixtures("media")


@pytest.fixture(scope="module")
def chair_glb():
    """A real textured model from the sandbox: red wood legs and back, a blue seat."""
    from sandbox import meshes

    return meshes.glb_bytes(meshes.model_from_prompt("a red chair", 1))


def green_box_glb():
    """A box with a plain green base colour and no texture."""
    box = trimesh.creation.box(extents=(1, 1, 1))
    box.visual = trimesh.visual.TextureVisuals(
        material=PBRMaterial(baseColorFactor=[0.1, 0.8, 0.1, 1.0], metallicFactor=0.0)
    )
    return box.export(file_type="glb")


def draw(tmp_path, data, **kwargs):
    path = tmp_path / f"{uuid.uuid4().hex}.glb"
    path.write_bytes(data)
    return np.asarray(posters.render(path, **kwargs))


def opaque(picture):
    return picture[..., 3] > 250


# --- the picture ---------------------------------------------------------------------------


def test_it_draws_a_textured_model_on_a_transparent_square(tmp_path, chair_glb):
    picture = draw(tmp_path, chair_glb)
    assert picture.shape == (posters.SIZE, posters.SIZE, 4)
    assert picture[0, 0, 3] == picture[0, -1, 3] == 0  # the corners are transparent
    mask = opaque(picture)
    assert 0.05 < mask.mean() < 0.6
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - posters.SIZE / 2) < posters.SIZE / 6  # fitted and centred
    assert abs(cols.mean() - posters.SIZE / 2) < posters.SIZE / 6
    rgb = picture[mask][:, :3].astype(int)
    red = (rgb[:, 0] > rgb[:, 1] + 40) & (rgb[:, 0] > rgb[:, 2] + 40)
    blue = (rgb[:, 2] > rgb[:, 0] + 30) & (rgb[:, 2] > rgb[:, 1] + 10)
    assert red.sum() > 2000 and blue.sum() > 2000
    # The texture shows: the red wood is not one flat colour per face.
    assert len(np.unique(rgb[red] // 8, axis=0)) > 50


def test_without_a_texture_it_uses_the_base_colour_lit_from_one_side(tmp_path):
    picture = draw(tmp_path, green_box_glb())
    rgb = picture[opaque(picture)][:, :3].astype(int)
    assert len(rgb) > 10_000
    assert ((rgb[:, 1] > rgb[:, 0] + 60) & (rgb[:, 1] > rgb[:, 2] + 60)).mean() > 0.95
    # Three faces are seen, each lit differently (Lambert, not a flat silhouette).
    greens = np.bincount(rgb[:, 1] // 10)
    assert (greens > len(rgb) * 0.1).sum() >= 3


def dense_sphere_glb():
    """81,920 faces of one base colour."""
    sphere = trimesh.creation.icosphere(subdivisions=6)
    sphere.visual = trimesh.visual.TextureVisuals(
        material=PBRMaterial(baseColorFactor=[0.8, 0.5, 0.2, 1.0], metallicFactor=0.0)
    )
    return sphere.export(file_type="glb")


def test_above_the_face_budget_it_draws_every_kth_face_grown_to_cover_the_rest(tmp_path, caplog):
    # At 128 px each face is about a pixel, as each of 4M faces is on a 512-px poster.
    data = dense_sphere_glb()
    full = opaque(draw(tmp_path, data, size=128))
    with caplog.at_level(logging.INFO, logger="generations.posters"):
        sampled = opaque(draw(tmp_path, data, size=128, face_budget=8_000))
    assert "drawing every 11-th of 81920 faces" in caplog.text
    # The same disc, without holes: what the grown faces cover is what all faces cover.
    assert (sampled & full).sum() > 0.97 * full.sum()
    assert (sampled & ~full).sum() < 0.03 * full.sum()


def test_a_model_that_takes_too_long_gets_no_poster(tmp_path, chair_glb):
    with pytest.raises(posters.PosterUnavailable, match="time box"):
        draw(tmp_path, chair_glb, seconds=0)


def _with_index_past_the_vertices(data):
    """The GLB with its first index rewritten to point past every vertex."""
    import json

    json_len = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20 : 20 + json_len])
    accessor = gltf["accessors"][gltf["meshes"][0]["primitives"][0]["indices"]]
    view = gltf["bufferViews"][accessor["bufferView"]]
    at = 20 + json_len + 8 + view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    size = {5125: 4, 5123: 2, 5121: 1}[accessor["componentType"]]
    big = (1 << (8 * size)) - 1
    return data[:at] + big.to_bytes(size, "little") + data[at + size :]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"not a glb at all" * 10,
        lambda data: b"",
        _with_index_past_the_vertices,
    ],
    ids=["truncated", "not-glb", "empty", "index-past-vertices"],
)
def test_a_broken_model_gets_no_poster(tmp_path, spoil):
    with pytest.raises(posters.PosterUnavailable):
        draw(tmp_path, spoil(green_box_glb()))


def test_vertex_colours_paint_the_model(tmp_path):
    left, right = (trimesh.creation.box(extents=(1, 1, 1)) for _ in range(2))
    left.apply_translation((-0.6, 0, 0))
    right.apply_translation((0.6, 0, 0))
    both = trimesh.util.concatenate([left, right])
    colours = np.repeat([[220, 30, 30, 255], [30, 30, 220, 255]], len(left.vertices), axis=0)
    both.visual = trimesh.visual.ColorVisuals(both, vertex_colors=colours.astype(np.uint8))
    data = both.export(file_type="glb")
    assert b"COLOR_0" in data
    rgb = draw(tmp_path, data)
    rgb = rgb[opaque(rgb)][:, :3].astype(int)
    red = (rgb[:, 0] > rgb[:, 2] + 60).mean()
    blue = (rgb[:, 2] > rgb[:, 0] + 60).mean()
    assert red > 0.3 and blue > 0.3  # both boxes, each in its own colour


def test_compressed_geometry_gets_no_poster_and_says_why(tmp_path):
    import json

    data = green_box_glb()
    json_len = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20 : 20 + json_len])
    # Meshopt: no maintained Python decoder (Draco is decoded: tests/test_posters_draco.py).
    gltf["extensionsRequired"] = ["EXT_meshopt_compression"]
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + json_len :]
    header = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + len(rest))
    spoilt = header + struct.pack("<I4s", len(text), b"JSON") + text + rest
    with pytest.raises(posters.PosterUnavailable, match="compressed"):
        draw(tmp_path, spoilt)


def test_a_model_without_triangles_gets_no_poster(tmp_path):
    points = trimesh.PointCloud(np.random.default_rng(1).random((50, 3)))
    with pytest.raises(posters.PosterUnavailable, match="no triangles"):
        draw(tmp_path, trimesh.Scene(points).export(file_type="glb"))


def test_the_png_is_what_the_renderer_drew(tmp_path):
    path = tmp_path / "box.glb"
    path.write_bytes(green_box_glb())
    png = posters.render_png(path, size=128)
    with Image.open(io.BytesIO(png)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (128, 128))


# --- a generation's poster ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_finished_generation_without_a_picture_gets_a_rendered_thumbnail(member, chair_glb):
    generation = make_finished(member, glb_bytes=chair_glb)
    asset = posters.make_poster(generation)
    assert asset.role == Asset.Role.THUMBNAIL
    assert (asset.format, asset.original_name) == ("png", posters.POSTER_NAME)
    with asset.file.open("rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    # Once: a second run (a redelivery, the backfill) makes nothing more.
    generation = type(generation).objects.prefetch_related("assets").get(pk=generation.pk)
    assert posters.make_poster(generation) is None
    assert generation.assets.filter(role=Asset.Role.THUMBNAIL).count() == 1


@pytest.mark.django_db
def test_a_generation_with_the_upstreams_thumbnail_gets_no_poster(member, chair_glb):
    generation = make_finished(member, glb_bytes=chair_glb)
    Asset.objects.create(
        generation=generation,
        role=Asset.Role.THUMBNAIL,
        file=ContentFile(b"\x89PNG\r\n\x1a\n", name="t.png"),
        format="png",
        original_name="1:png:thumb.png",
        bytes=8,
        sha256="0" * 64,
    )
    assert posters.make_poster(generation) is None
    assert generation.assets.filter(role=Asset.Role.THUMBNAIL).count() == 1


@pytest.mark.django_db
def test_a_still_from_the_render_tool_is_the_picture_without_drawing(member, monkeypatch):
    generation = make_finished(member, glb_bytes=green_box_glb())
    still = Asset.objects.create(
        generation=generation,
        role="render",
        file=ContentFile(b"\x89PNG\r\n\x1a\n", name="front.png"),
        format="png",
        original_name="0:render:front.png",
        bytes=8,
        sha256="1" * 64,
    )

    def never(*args, **kwargs):
        raise AssertionError("drew a poster where the render tool made one")

    monkeypatch.setattr(posters, "render_png", never)
    generation = type(generation).objects.prefetch_related("assets").get(pk=generation.pk)
    poster = posters.make_poster(generation)
    assert poster.role == Asset.Role.THUMBNAIL
    assert (poster.file.name, poster.format, poster.sha256) == (still.file.name, "png", "1" * 64)


@pytest.mark.django_db
def test_an_unfinished_generation_gets_no_poster(member, chair_glb):
    generation = make_finished(member, glb_bytes=chair_glb, state=State.INGESTING)
    assert posters.make_poster(generation) is None
    assert not generation.assets.filter(role=Asset.Role.THUMBNAIL).exists()


@pytest.mark.django_db
def test_an_unreadable_model_leaves_the_generation_as_it_was(member, caplog):
    generation = make_finished(member)  # a GLB header and nothing else
    with caplog.at_level(logging.WARNING, logger="generations.posters"):
        assert posters.make_poster(generation) is None
    assert "no poster" in caplog.text
    generation.refresh_from_db()
    assert generation.state == State.FINISHED
    assert not generation.assets.filter(role=Asset.Role.THUMBNAIL).exists()


@pytest.mark.django_db
def test_the_poster_task_draws_it_and_ignores_a_generation_that_is_gone(member, chair_glb):
    generation = make_finished(member, glb_bytes=chair_glb)
    tasks.render_poster(generation.pk)
    assert generation.assets.filter(original_name=posters.POSTER_NAME).count() == 1
    tasks.render_poster(10**9)  # returns quietly


# --- the backfill command -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_backfill_draws_posters_only_where_none_is(member, chair_glb):
    box = green_box_glb()
    bare = [make_finished(member, f"bare {i}", glb_bytes=box) for i in range(2)]
    pictured = make_finished(member, "pictured", glb_bytes=box)
    posters.make_poster(pictured)
    failed = make_finished(member, "failed", glb_bytes=box, state=State.FAILED)
    out = io.StringIO()
    call_command("backfill_posters", stdout=out)
    assert "Drew 2 posters; 0 without one." in out.getvalue()
    for generation in bare:
        assert generation.assets.filter(original_name=posters.POSTER_NAME).exists()
    assert pictured.assets.filter(role=Asset.Role.THUMBNAIL).count() == 1
    assert not failed.assets.filter(role=Asset.Role.THUMBNAIL).exists()
    out = io.StringIO()
    call_command("backfill_posters", stdout=out)
    assert "Drew 0 posters" in out.getvalue()


@pytest.mark.django_db
def test_the_backfill_can_leave_the_drawing_to_the_workers(member, monkeypatch):
    generation = make_finished(member, glb_bytes=green_box_glb())
    queued = []
    monkeypatch.setattr(tasks.render_poster, "delay", queued.append)
    out = io.StringIO()
    call_command("backfill_posters", "--queue", stdout=out)
    assert queued == [generation.pk]
    assert "Queued 1 poster." in out.getvalue()


# --- turntables ---------------------------------------------------------------------------


def test_the_newest_moving_render_is_the_turntable():
    def asset(pk, role, fmt):
        return Asset(pk=pk, role=role, format=fmt)

    assets = [
        asset(1, Asset.Role.MODEL, "glb"),
        asset(2, "render", "png"),  # a still
        asset(3, "render", "gif"),
        asset(4, "render", "mp4"),
        asset(5, Asset.Role.THUMBNAIL, "gif"),  # not a render
    ]
    assert posters.turntable(assets).pk == 4
    assert posters.turntable(assets[:3]).pk == 3
    assert posters.turntable(assets[:2]) is None


# --- at ingest ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_generation_finished_by_the_pipeline_gets_its_poster_after_commit(
    sandbox_server, member, monkeypatch
):
    from tests.test_pipeline import drive, queue

    drawn = []
    for task in (tasks.submit_generation, tasks.poll_generation, tasks.ingest_generation):
        monkeypatch.setattr(task, "delay", task)
    monkeypatch.setattr(
        tasks.render_poster, "delay", lambda pk: drawn.append(pk) or tasks.render_poster(pk)
    )
    generation = drive(queue(member, "a blue vase"))
    assert generation.state == State.FINISHED, generation.attention_reason
    assert drawn == [generation.pk]
    poster = generation.assets.get(role=Asset.Role.THUMBNAIL)
    assert poster.original_name == posters.POSTER_NAME


@pytest.mark.django_db(transaction=True)
def test_a_poster_that_fails_leaves_the_finished_generation_alone(
    sandbox_server, member, monkeypatch
):
    from tests.test_pipeline import drive, queue

    for task in (tasks.submit_generation, tasks.poll_generation, tasks.ingest_generation):
        monkeypatch.setattr(task, "delay", task)

    def broken(*args, **kwargs):
        raise posters.PosterUnavailable("drawing it took longer than its time box")

    monkeypatch.setattr(posters, "render_png", broken)
    monkeypatch.setattr(tasks.render_poster, "delay", tasks.render_poster)
    generation = drive(queue(member, "a blue vase"))
    assert generation.state == State.FINISHED
    assert not generation.assets.filter(role=Asset.Role.THUMBNAIL).exists()


def test_a_large_model_is_drawn_within_the_memory_budget(tmp_path):
    """A 2.9M-face, 80 MB GLB read in slices: the arrays stay far below its size (loaded
    whole, its buffer alone would be over the budget)."""
    import tracemalloc

    from tests.bench.bench_memory import write_real_glb

    path = write_real_glb(tmp_path / "big.glb", size_mb=80)
    tracemalloc.start()
    try:
        image = posters.render(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
    assert opaque(np.asarray(image)).mean() > 0.1  # and it drew the model, without holes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "kind, options, picture",
    [
        ("optimize", {"preset": "low"}, "drawn"),
        ("render", {"output": "image", "angle": "3/4", "resolution": 256}, "the render's still"),
    ],
)
def test_a_finishing_steps_new_version_gets_its_picture(
    sandbox_server, member, monkeypatch, kind, options, picture
):
    from tests.test_finishing_pipeline import ask, run
    from tests.test_pipeline import drive, queue

    for task in (
        tasks.submit_generation,
        tasks.poll_generation,
        tasks.ingest_generation,
        tasks.submit_conversion,
        tasks.poll_conversion,
        tasks.render_poster,
    ):
        monkeypatch.setattr(task, "delay", task)
    source = drive(queue(member, "a blue vase"))
    job = run(ask(source, kind, options))
    assert job.state == State.FINISHED, job.failure_reason
    poster = job.result.assets.get(role=Asset.Role.THUMBNAIL)
    still = job.result.assets.filter(role=Asset.Role.RENDER).first()
    if picture == "drawn":
        assert still is None and poster.file.name != source.assets.get(role="thumbnail").file.name
    else:
        assert poster.file.name == still.file.name
