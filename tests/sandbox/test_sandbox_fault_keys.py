"""The fault keys issue 16 builds on (echo_authorization, old_status_shape), and the fault
plan reaching the image, texturing, remeshing and tool endpoints."""

import io
import time
import urllib.parse

import pytest
import requests
from conftest import KEY, data_uri, image_bytes
from PIL import Image

RAPID = "/v1/3d-models/tencent/generate/rapid/"
PRO = "/v1/3d-models/tencent/generate/pro/"
IMAGE = "/v1/images/gemini/3/pro/generate/"
REMOVE_BG = "/v1/tools/remove-bg/"
VOLUME = "/v1/tools/calculate-volume/"
HEADER = f"Bearer {KEY}"
NOW = dict.fromkeys(
    ("pending", "hunyuan_rapid", "hunyuan_pro", "gemini_3_pro", "remove_bg", "calculate_volume"),
    0,
)


def quick(**plan):
    return {"durations": NOW, **plan}


def finished(sandbox, path, body):
    task_id = sandbox.submit(path, body)
    time.sleep(0.02)
    return task_id, sandbox.status(task_id).json()


# --- echo_authorization --------------------------------------------------------------------


def test_echo_puts_the_header_verbatim_into_a_failure_reason(make_sandbox):
    sandbox = make_sandbox(faults=quick(fail_rate=1.0, echo_authorization=True))
    _, answer = finished(sandbox, RAPID, {"prompt": "a"})
    assert answer["status"] == "FAILED"
    assert HEADER in answer["failure_reason"]
    assert answer["failure_reason"].startswith("The generation failed")


def test_echo_puts_the_header_into_error_messages(make_sandbox):
    sandbox = make_sandbox(faults={"echo_authorization": True})
    refused = sandbox.post(RAPID, {"prompt": ""})
    assert refused.status_code == 400
    assert HEADER in refused.json()["detail"]
    assert refused.json()["detail"].startswith("prompt: ")
    assert HEADER in refused.json()["message"]
    unknown = sandbox.status("5b0a4d7e-0000-4000-8000-000000000000")
    assert (unknown.status_code, HEADER in unknown.json()["detail"]) == (404, True)
    wrong_key = sandbox.post(RAPID, {"prompt": "a"}, key="not-a-key")
    assert wrong_key.status_code == 401
    assert "Bearer not-a-key" in wrong_key.json()["detail"]
    assert wrong_key.json()["code"] == "invalid_api_key"


def test_echo_reaches_5xx_and_429_answers(make_sandbox):
    sandbox = make_sandbox(
        faults={"echo_authorization": ["detail"], "submit_5xx_next": 1, "force_429_next": 1}
    )
    throttled = sandbox.post(RAPID, {"prompt": "a"})
    assert throttled.status_code == 429
    assert HEADER in throttled.json()["detail"]
    assert throttled.headers["Retry-After"]
    gateway = sandbox.post(RAPID, {"prompt": "a"})
    assert gateway.status_code == 503
    assert HEADER in gateway.text


def test_echo_leaves_successful_answers_and_unlisted_places_alone(make_sandbox):
    sandbox = make_sandbox(faults=quick(fail_rate=1.0, echo_authorization=["detail"]))
    response = sandbox.post(RAPID, {"prompt": "a"})
    assert KEY not in response.text
    answer = sandbox.status(response.json()["task_id"]).json()
    assert KEY not in answer["failure_reason"]
    assert answer["status"] == "FAILED"


def test_echo_into_the_status_word_makes_an_unknown_status(make_sandbox):
    sandbox = make_sandbox(faults=quick(echo_authorization=["status"]))
    _, answer = finished(sandbox, RAPID, {"prompt": "a"})
    assert answer["status"] == f"FINISHED: {HEADER}"
    assert answer["failure_reason"] is None
    assert all(r["asset"] for r in answer["results"])


def test_echo_needs_a_header_to_echo(make_sandbox):
    sandbox = make_sandbox(faults={"echo_authorization": True})
    response = requests.post(sandbox.url + RAPID, json={"prompt": "a"}, timeout=5)
    assert response.json() == {"detail": "Invalid API key.", "code": "invalid_api_key"}


# --- old_status_shape ----------------------------------------------------------------------


def test_the_old_shape_has_asset_url_and_a_downloadable_thumbnail_per_item(make_sandbox):
    sandbox = make_sandbox(faults=quick(old_status_shape=True))
    _, answer = finished(sandbox, PRO, {"model": "3.0", "prompt": "a red chair"})
    assert answer["status"] == "FINISHED"
    for item in answer["results"]:
        assert set(item) == {"asset_url", "asset_type", "thumbnail", "metadata"}
        assert item["asset_url"] != item["thumbnail"]
        model = sandbox.download(item["asset_url"])
        assert model.status_code == 200
        assert model.content[:2] in (b"PK", b"gl")
        thumbnail = sandbox.download(item["thumbnail"])
        assert thumbnail.status_code == 200
        assert thumbnail.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(thumbnail.content)).size == (256, 256)
    assert [i["asset_type"] for i in answer["results"]] == ["ARCHIVE", "3D_MODEL"]


def test_the_old_shape_keeps_quirk_1_and_metadata(make_sandbox):
    sandbox = make_sandbox(faults=quick(old_status_shape=True, null_asset_polls=1))
    _, answer = finished(sandbox, RAPID, {"prompt": "a"})
    assert answer["results"] == [
        {"asset_url": None, "asset_type": "ARCHIVE", "thumbnail": None, "metadata": None}
    ]
    body = {"model_url": "https://e.com/a.glb", "target_height": 10}
    task_id, answer = finished(sandbox, VOLUME, body)
    assert answer["results"][0]["metadata"] is None  # quirk 1 hides the facts as well
    [item] = sandbox.status(task_id).json()["results"]
    assert (item["asset_url"], item["thumbnail"], item["asset_type"]) == (None, None, "METADATA")
    assert item["metadata"]["heights"][0]["height"] == 10.0


def test_old_shape_thumbnails_expire_with_their_asset(make_sandbox):
    sandbox = make_sandbox(faults=quick(old_status_shape=True, asset_ttl_seconds=0))
    _, answer = finished(sandbox, IMAGE, {"prompt": "a fox"})
    time.sleep(1.1)
    [item] = answer["results"]
    assert sandbox.download(item["thumbnail"]).status_code == 403


# --- the fault plan on the new endpoints ---------------------------------------------------

PHOTO = {"image_url": "https://example.com/a.jpg"}


@pytest.mark.parametrize(
    ("path", "body", "price"), [(IMAGE, {"prompt": "a"}, 50), (REMOVE_BG, PHOTO, 4)]
)
def test_new_endpoints_fail_and_refund(make_sandbox, path, body, price):
    sandbox = make_sandbox(balance=100, faults=quick(fail_rate=1.0))
    _, answer = finished(sandbox, path, body)
    assert answer["status"] == "FAILED"
    assert answer["failure_reason"]
    assert sandbox.balance() == "100.00"
    [task] = sandbox.tasks()
    assert (task["charged"], task["refunded"]) == (price, price)


def test_new_endpoints_finish_without_asset_and_refund(make_sandbox):
    plan = quick(fail_rate=0.0, quirks={"finished_no_asset_rate": 1.0})
    sandbox = make_sandbox(balance=100, faults=plan)
    _, answer = finished(sandbox, IMAGE, {"prompt": "a", "num_images": 2})
    assert answer["status"] == "FINISHED"
    assert answer["failure_reason"]
    assert answer["results"] == [{"asset": None, "asset_type": "IMAGE", "metadata": None}]
    assert sandbox.balance() == "100.00"


def test_new_endpoints_keep_the_null_asset_quirk(make_sandbox):
    sandbox = make_sandbox(faults=quick(null_asset_polls=2))
    task_id, answer = finished(sandbox, REMOVE_BG, PHOTO)
    assert answer["results"][0]["asset"] is None
    assert sandbox.status(task_id).json()["results"][0]["asset"] is None
    assert sandbox.status(task_id).json()["results"][0]["asset"]


def test_new_endpoints_urls_expire(make_sandbox):
    sandbox = make_sandbox(faults=quick(asset_ttl_seconds=0))
    _, answer = finished(sandbox, REMOVE_BG, PHOTO)
    time.sleep(1.1)
    expired = sandbox.download(answer["results"][0]["asset"])
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content


def test_new_endpoints_files_drip_and_truncate(make_sandbox):
    sandbox = make_sandbox(faults=quick(truncated_asset=True))
    _, answer = finished(sandbox, IMAGE, {"prompt": "a"})
    url = answer["results"][0]["asset"]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sandbox.download(url).content  # noqa: B018 - reading the body is the point
    sandbox.faults(quick(asset_drip_kbps=64))
    started = time.monotonic()
    data = sandbox.download(url).content
    assert time.monotonic() - started >= len(data) / (64 * 1024) * 0.8
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_new_endpoints_corrupt_files(make_sandbox):
    sandbox = make_sandbox(faults=quick(corrupt_asset=True))
    image = data_uri(image_bytes("JPEG"), "image/jpeg")
    _, answer = finished(
        sandbox, "/v1/images/gemini/2.5/flash/edit/", {"prompt": "a", "images": [image]}
    )
    data = sandbox.download(answer["results"][0]["asset"]).content
    assert not data.startswith(b"\x89PNG")


def test_new_providers_take_durations(make_sandbox):
    sandbox = make_sandbox(time_scale=1.0, faults={"durations": {"pending": 1, "remove_bg": 30}})
    sandbox.submit(REMOVE_BG, PHOTO)
    [task] = sandbox.tasks()
    assert task["finishes_at"] - task["started_at"] == pytest.approx(30)
    assert urllib.parse.urlsplit(sandbox.url).hostname == "127.0.0.1"
