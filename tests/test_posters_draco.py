"""Draco-compressed GLBs (the optimize step's output) get a poster: their primitives are
decoded with DracoPy; a Draco or meshopt GLB that still cannot be drawn gets none, the
reason is recorded, and the list shows its plain tile with nothing broken on it."""

import json

import DracoPy
import numpy as np
import pygltflib
import pytest
from django.urls import reverse

from generations import posters
from generations.models import Asset
from sandbox import draco
from tests.test_finishing_pipeline import inline_tasks  # noqa: F401 - a fixture
from tests.test_posters import chair_glb, dense_sphere_glb, draw, opaque  # noqa: F401
from tests.test_posters_pages import logged_in
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = pytest.mark.usefixtures("media")


def draco_box_glb(colour=(0.1, 0.8, 0.1)):
    """A unit box built here with pygltflib, its geometry encoded by Draco's own encoder:
    accessors with counts and bounds only, the extension naming Draco's attribute ids."""
    corners = np.array(
        [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], np.float32
    )
    faces = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],
        np.uint32,
    )  # fmt: skip
    encoded = DracoPy.encode(corners, faces)
    position_id = DracoPy.decode(encoded).get_attribute_by_type(0)["unique_id"]
    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(version="2.0"),
        extensionsUsed=[draco.EXTENSION],
        extensionsRequired=[draco.EXTENSION],
        buffers=[pygltflib.Buffer(byteLength=len(encoded))],
        bufferViews=[pygltflib.BufferView(buffer=0, byteOffset=0, byteLength=len(encoded))],
        accessors=[
            pygltflib.Accessor(componentType=5125, count=faces.size, type="SCALAR"),
            pygltflib.Accessor(
                componentType=5126, count=8, type="VEC3", min=[-0.5] * 3, max=[0.5] * 3
            ),
        ],
        materials=[
            pygltflib.Material(
                pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
                    baseColorFactor=[*colour, 1.0], metallicFactor=0.0
                )
            )
        ],
        meshes=[
            pygltflib.Mesh(
                primitives=[
                    pygltflib.Primitive(
                        attributes=pygltflib.Attributes(POSITION=1),
                        indices=0,
                        material=0,
                        extensions={
                            draco.EXTENSION: {
                                "bufferView": 0,
                                "attributes": {"POSITION": position_id},
                            }
                        },
                    )
                ]
            )
        ],
        nodes=[pygltflib.Node(mesh=0)],
        scenes=[pygltflib.Scene(nodes=[0])],
        scene=0,
    )
    gltf.set_binary_blob(encoded)
    return b"".join(gltf.save_to_bytes())


def rewrite(data, change):
    """The GLB with its JSON changed by ``change(document, binary)``."""
    document, binary = draco.read_glb(data)
    binary = change(document, binary) or binary
    return draco.write_glb(document, binary)


# --- the picture ---------------------------------------------------------------------------


def test_a_draco_box_built_with_pygltflib_is_drawn_in_its_colour(tmp_path):
    data = draco_box_glb()
    assert b"bufferView" not in json.dumps(draco.read_glb(data)[0]["accessors"]).encode()
    picture = draw(tmp_path, data, size=128)
    covered = opaque(picture)
    assert covered.sum() > 0.15 * covered.size
    red, green, blue = picture[covered][:, :3].mean(axis=0)
    assert green > 2 * red and green > 2 * blue


def test_a_textured_model_draws_the_same_compressed_or_not(tmp_path, chair_glb):  # noqa: F811
    compressed = draco.compress(chair_glb)
    gltf = pygltflib.GLTF2.load_from_bytes(compressed)  # a valid glTF for another reader too
    assert gltf.extensionsRequired == [draco.EXTENSION]
    assert all(
        draco.EXTENSION in p.extensions and p.attributes.TEXCOORD_0 is not None
        for m in gltf.meshes
        for p in m.primitives
    )
    plain = draw(tmp_path, chair_glb, size=256)
    decoded = draw(tmp_path, compressed, size=256)
    a, b = opaque(plain), opaque(decoded)
    assert (a & b).sum() / (a | b).sum() > 0.98  # the same silhouette
    both = a & b
    difference = np.abs(plain[both][:, :3].astype(int) - decoded[both][:, :3].astype(int))
    assert difference.mean() < 4  # the same texture, sampled at quantised UVs


def test_above_the_face_budget_a_draco_model_is_sampled_like_any(tmp_path):
    data = draco.compress(dense_sphere_glb())
    full = opaque(draw(tmp_path, data, size=128))
    sampled = opaque(draw(tmp_path, data, size=128, face_budget=8_000))
    assert (sampled & full).sum() > 0.97 * full.sum()


# --- what still gets no poster, in words ----------------------------------------------------


def _spoil_draco_bytes(document, binary):
    return b"\x00" * len(binary)


def _no_position_id(document, binary):
    prim = document["meshes"][0]["primitives"][0]
    prim["extensions"][draco.EXTENSION]["attributes"] = {"POSITION": 7}


def _meshopt(document, binary):
    document["extensionsRequired"] = ["EXT_meshopt_compression"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_spoil_draco_bytes, "the Draco data could not be decoded"),
        (_no_position_id, "the Draco data has no POSITION"),
        (_meshopt, "compressed \\(EXT_meshopt_compression\\)"),
    ],
)
def test_a_compressed_model_that_cannot_be_decoded_gets_no_poster_and_says_why(
    tmp_path, change, words
):
    with pytest.raises(posters.PosterUnavailable, match=words):
        draw(tmp_path, rewrite(draco_box_glb(), change))


def test_without_dracopy_a_draco_model_gets_no_poster_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(posters, "_draco", lambda: None)
    with pytest.raises(posters.PosterUnavailable, match="DracoPy is missing"):
        draw(tmp_path, draco_box_glb())


def test_a_draco_primitive_too_big_to_decode_at_once_gets_no_poster(tmp_path, monkeypatch):
    monkeypatch.setattr(posters, "DRACO_MAX_POINTS", 7)
    with pytest.raises(posters.PosterUnavailable, match="8 vertices, over the 7"):
        draw(tmp_path, draco_box_glb())
    monkeypatch.setattr(posters, "DRACO_MAX_POINTS", 8)
    monkeypatch.setattr(posters, "DRACO_MAX_BYTES", 10)
    with pytest.raises(posters.PosterUnavailable, match="bytes, over the 10"):
        draw(tmp_path, draco_box_glb())


# --- a generation's poster -----------------------------------------------------------------


@pytest.mark.django_db
def test_an_optimized_version_gets_its_poster_in_the_list(member):
    generation = make_finished(member, "an optimized box", glb_bytes=draco_box_glb())
    poster = posters.make_poster(generation)
    assert poster is not None and poster.format == "png"
    page = logged_in(member).get(reverse("generations:list")).content.decode()
    assert reverse("generations:asset-view", args=[generation.pk, poster.pk]) in page


@pytest.mark.django_db
def test_a_draco_model_still_not_drawable_shows_its_plain_tile_and_nothing_broken(member):
    spoilt = rewrite(draco_box_glb(), _spoil_draco_bytes)
    generation = make_finished(member, "a spoilt box", glb_bytes=spoilt)
    assert posters.make_poster(generation) is None
    model = generation.assets.get(role=Asset.Role.MODEL)
    model.refresh_from_db()
    assert "Draco data could not be decoded" in model.facts[posters.FAILED]
    page = logged_in(member).get(reverse("generations:list")).content.decode()
    results = page.split('id="results"')[1].split("</ul>")[0]
    tile = results.split("a spoilt box")[0].rsplit('class="thumb', 1)[1]
    assert tile.startswith('-empty" aria-hidden="true">Text')
    for word in ("Draco", "decode", "error", "broken", "failed"):
        assert word not in results


@pytest.mark.django_db(transaction=True)
def test_an_optimize_step_answered_in_draco_gets_a_drawn_poster_through_the_pipeline(
    sandbox_server,
    inline_tasks,  # noqa: F811
    member,
    monkeypatch,
):
    from generations import tasks
    from generations.models import State
    from tests.sandbox_control import set_faults
    from tests.test_finishing_pipeline import ask, run
    from tests.test_pipeline import drive, queue

    monkeypatch.setattr(tasks.render_poster, "delay", tasks.render_poster)
    source = drive(queue(member, "a blue vase"))
    set_faults(sandbox_server, {"draco_optimize": True})  # as the upstream's optimize answers
    job = run(ask(source, "optimize", {"preset": "low"}))
    assert job.state == State.FINISHED, job.failure_reason
    model = job.result.glb_asset
    with model.file.open("rb") as fh:
        document, _ = draco.read_glb(fh.read())
    assert document["extensionsRequired"] == [draco.EXTENSION]
    assert model.facts["faces"] > 0 and posters.FAILED not in model.facts
    poster = job.result.assets.get(role=Asset.Role.THUMBNAIL)
    assert poster.original_name == posters.POSTER_NAME  # drawn here, not an upstream still
