"""Status progression, durations, results of the right kinds, and real files behind them."""

import io
import time
import urllib.parse
import zipfile

import pytest
import trimesh
from conftest import data_uri, image_bytes

JPEG = data_uri(image_bytes("JPEG", size=(160, 200), color=(30, 160, 90)), "image/jpeg")
PRO = "/v1/3d-models/tencent/generate/pro/"
RAPID = "/v1/3d-models/tencent/generate/rapid/"
TRELLIS = "/v1/3d-models/trellis2/generate/"


def extension(url):
    return urllib.parse.urlsplit(url).path.rsplit(".", 1)[-1]


def load_glb(data):
    assert data[:4] == b"glTF"
    scene = trimesh.load(io.BytesIO(data), file_type="glb", force="scene")
    assert len(scene.geometry) >= 1
    assert sum(len(g.faces) for g in scene.geometry.values()) > 10
    return scene


def load_obj_zip(data, tmp_path):
    assert data[:2] == b"PK"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path)
    assert any(n.endswith(".obj") for n in names)
    assert any(n.endswith(".mtl") for n in names)
    obj = next(n for n in names if n.endswith(".obj"))
    scene = trimesh.load(tmp_path / obj, force="scene")
    assert sum(len(g.faces) for g in scene.geometry.values()) > 10
    return names


def test_status_goes_pending_then_in_progress_then_finished_with_rising_progress(make_sandbox):
    sandbox = make_sandbox(
        time_scale=0.01, faults={"durations": {"pending": 20, "hunyuan_rapid": 40}}
    )
    task_id = sandbox.submit(RAPID, {"prompt": "a blue mug"})
    seen = []
    deadline = time.time() + 5
    while time.time() < deadline:
        answer = sandbox.status(task_id).json()
        seen.append((answer["status"], answer.get("progress")))
        if answer["status"] == "FINISHED":
            break
        time.sleep(0.02)
    statuses = [s for s, _ in seen]
    assert statuses[0] == "PENDING"
    assert "IN_PROGRESS" in statuses
    assert statuses[-1] == "FINISHED"
    order = {"PENDING": 0, "IN_PROGRESS": 1, "FINISHED": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
    progress = [p for s, p in seen if s == "IN_PROGRESS"]
    assert progress == sorted(progress)
    assert all(0 <= p <= 99 for p in progress)
    assert progress[-1] > progress[0]
    assert seen[-1][1] == 100
    assert {s: p for s, p in seen if s == "PENDING"} in ({"PENDING": 0}, {"PENDING": None}, {})
    # Not earlier than stored: 0.2 s pending plus 0.4 s running.
    task = sandbox.tasks()[0]
    assert task["finishes_at"] - task["created_at"] == pytest.approx(0.6, abs=0.01)
    assert task["polls"] == len(seen)


def test_a_pending_task_may_omit_progress_when_the_quirk_is_on(make_sandbox):
    sandbox = make_sandbox(
        time_scale=1,
        faults={"quirks": {"missing_progress_rate": 1.0}, "durations": {"pending": 30}},
    )
    task_id = sandbox.submit(RAPID, {"prompt": "a"})
    answer = sandbox.status(task_id).json()
    assert answer == {"status": "PENDING", "failure_reason": None, "results": []}


DURATIONS = [
    # (endpoint, body, provider, low, high) in seconds at time scale 1, from "Typical durations"
    (RAPID, {"prompt": "a"}, 120, 180),
    (PRO, {"model": "3.0", "prompt": "a"}, 180, 360),
    (TRELLIS, {"image": JPEG, "resolution": "512"}, 16, 24 + 30),
    (TRELLIS, {"image": JPEG, "resolution": "1536", "textures": True}, 96, 144 + 30),
    ("/v1/3d-models/tripo/text-to-3d/", {"prompt": "a"}, 80, 120),
    ("/v1/3d-models/tripo/text-to-3d/p1/", {"prompt": "a"}, 80, 120),
]


@pytest.mark.parametrize(("path", "body", "low", "high"), DURATIONS, ids=lambda v: None)
def test_durations_follow_the_typical_ranges(make_sandbox, path, body, low, high):
    sandbox = make_sandbox(time_scale=1.0)
    for _ in range(5):
        sandbox.submit(path, body)
    for task in sandbox.tasks():
        assert 1 <= task["started_at"] - task["created_at"] <= 6
        assert low <= task["finishes_at"] - task["started_at"] <= high
        assert task["status"] == "PENDING"


def test_the_time_scale_multiplies_every_duration(make_sandbox):
    sandbox = make_sandbox(time_scale=0.5, faults={"durations": {"pending": 4, "tripo": 100}})
    sandbox.submit("/v1/3d-models/tripo/text-to-3d/3.1/", {"prompt": "a"})
    task = sandbox.tasks()[0]
    assert task["started_at"] - task["created_at"] == pytest.approx(2)
    assert task["finishes_at"] - task["started_at"] == pytest.approx(50)


def test_the_same_seed_tells_the_same_story(make_sandbox, tmp_path):
    def story(seed, name):
        sandbox = make_sandbox(
            seed=seed, time_scale=1, state_path=tmp_path / f"{name}.sqlite3", quirks=True
        )
        for _ in range(6):
            sandbox.submit(PRO, {"model": "3.0", "prompt": "a"})
        return [
            (round(t["finishes_at"] - t["created_at"], 6), t["status"]) for t in sandbox.tasks()
        ]

    assert story(7, "a") == story(7, "b")
    assert story(7, "a") != story(8, "c")


def test_hunyuan_pro_gives_a_glb_and_a_zip(sandbox, tmp_path):
    answer = sandbox.wait(sandbox.submit(PRO, {"model": "3.0", "prompt": "a red chair"}))
    assert answer["status"] == "FINISHED"
    assert answer["failure_reason"] is None
    kinds = [(r["asset_type"], extension(r["asset"]), r["metadata"]) for r in answer["results"]]
    # The observed order: the ZIP first, then the GLB.
    assert kinds == [("ARCHIVE", "zip", None), ("3D_MODEL", "glb", None)]
    glb = sandbox.download(answer["results"][1]["asset"])
    assert glb.status_code == 200
    assert glb.headers["Content-Length"] == str(len(glb.content))
    load_glb(glb.content)
    load_obj_zip(sandbox.download(answer["results"][0]["asset"]).content, tmp_path)


def test_hunyuan_pro_multi_view_and_image_give_models_too(sandbox):
    views = [{"view_type": v, "view_image": JPEG} for v in ("front", "back")]
    for body in ({"model": "3.1", "multi_view_images": views}, {"model": "3.0", "image": JPEG}):
        answer = sandbox.wait(sandbox.submit(PRO, body))
        load_glb(sandbox.download(answer["results"][1]["asset"]).content)


def test_hunyuan_rapid_gives_a_zip_of_obj_mtl_and_texture(sandbox, tmp_path):
    answer = sandbox.wait(sandbox.submit(RAPID, {"prompt": "a wooden barrel"}))
    [result] = answer["results"]
    assert (result["asset_type"], extension(result["asset"])) == ("ARCHIVE", "zip")
    names = load_obj_zip(sandbox.download(result["asset"]).content, tmp_path)
    assert any(n.endswith(".png") for n in names)


def test_trellis_gives_a_glb_and_a_thumbnail_when_asked(sandbox):
    plain = sandbox.wait(sandbox.submit(TRELLIS, {"image": JPEG}))
    assert [r["asset_type"] for r in plain["results"]] == ["3D_MODEL"]
    answer = sandbox.wait(
        sandbox.submit(TRELLIS, {"image": JPEG, "textures": True, "generate_thumbnail": True})
    )
    model, thumb = answer["results"]
    assert (model["asset_type"], extension(model["asset"])) == ("3D_MODEL", "glb")
    assert (thumb["asset_type"], extension(thumb["asset"])) == ("IMAGE", "png")
    load_glb(sandbox.download(model["asset"]).content)
    assert sandbox.download(thumb["asset"]).content[:8] == b"\x89PNG\r\n\x1a\n"


def test_tripo_gives_a_glb_and_an_fbx_with_quad(sandbox):
    answer = sandbox.wait(
        sandbox.submit("/v1/3d-models/tripo/text-to-3d/3.1/", {"prompt": "a robot", "quad": True})
    )
    glb, fbx = answer["results"]
    assert [glb["asset_type"], fbx["asset_type"]] == ["3D_MODEL", "3D_MODEL"]
    assert [extension(glb["asset"]), extension(fbx["asset"])] == ["glb", "fbx"]
    load_glb(sandbox.download(glb["asset"]).content)
    assert sandbox.download(fbx["asset"]).content.startswith(b"Kaydara FBX Binary  \x00")
    plain = sandbox.wait(sandbox.submit("/v1/3d-models/tripo/image-to-3d/p1/", {"image": JPEG}))
    assert [extension(r["asset"]) for r in plain["results"]] == ["glb"]


def test_tripo_multiview_gives_a_glb(sandbox):
    body = {"images": [{"image": JPEG}, {"image_url": "https://example.com/left.jpg"}]}
    answer = sandbox.wait(sandbox.submit("/v1/3d-models/tripo/multiview-to-3d/3.0/", body))
    load_glb(sandbox.download(answer["results"][0]["asset"]).content)


CONVERSIONS = [
    ("glb", "glb", "3D_MODEL", b"glTF"),
    ("obj", "obj", "3D_MODEL", b""),
    ("obj_zip", "zip", "ARCHIVE", b"PK"),
    ("stl", "stl", "3D_MODEL", b""),
    ("ply", "ply", "3D_MODEL", b"ply"),
    ("fbx", "fbx", "3D_MODEL", b"Kaydara FBX Binary"),
    ("fbx_zip", "zip", "ARCHIVE", b"PK"),
    ("usdz", "usdz", "3D_MODEL", b"PK"),
    ("3mf", "3mf", "3D_MODEL", b"PK"),
]


def test_the_convert_tool_writes_every_format(sandbox, tmp_path):
    source = sandbox.wait(sandbox.submit(PRO, {"model": "3.0", "prompt": "a lamp"}))
    model_url = source["results"][1]["asset"]
    tasks = {
        fmt: sandbox.submit("/v1/tools/convert/", {"model_url": model_url, "output_format": fmt})
        for fmt, *_ in CONVERSIONS
    }
    for fmt, ext, kind, magic in CONVERSIONS:
        [result] = sandbox.wait(tasks[fmt])["results"]
        assert (result["asset_type"], extension(result["asset"])) == (kind, ext), fmt
        data = sandbox.download(result["asset"]).content
        assert data.startswith(magic), fmt
        if fmt in ("obj", "stl", "ply"):
            mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
            assert len(mesh.faces) > 10, fmt
        if fmt == "usdz":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                info = archive.infolist()[0]
                assert info.compress_type == zipfile.ZIP_STORED
                # USD readers need the member's data 64-byte aligned.
                assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0
                assert archive.read(info).startswith(b"#usda 1.0")
        if fmt == "3mf":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                assert b"<triangle " in archive.read("3D/3dmodel.model")


def test_convert_of_an_outside_url_uses_a_placeholder_and_opens_no_socket(sandbox):
    body = {"model_url": "https://files.example.invalid/a.glb", "output_format": "glb"}
    answer = sandbox.wait(sandbox.submit("/v1/tools/convert/", body))
    load_glb(sandbox.download(answer["results"][0]["asset"]).content)


def test_results_are_deterministic_for_a_seed(make_sandbox, tmp_path):
    digests = []
    for name in ("one", "two"):
        sandbox = make_sandbox(seed=3, state_path=tmp_path / f"{name}.sqlite3")
        answer = sandbox.wait(sandbox.submit(PRO, {"model": "3.0", "prompt": "a red chair"}))
        digests.append(sandbox.download(answer["results"][1]["asset"]).content)
    assert digests[0] == digests[1]
