"""The per-key sliding window: submits and polls count, downloads and the wallet do not."""

import email.utils
import time

import requests

RAPID = "/v1/3d-models/tencent/generate/rapid/"
QUICK = {"durations": {"pending": 0, "hunyuan_rapid": 0}}


def test_the_fourth_call_in_a_minute_is_429_with_retry_after(make_sandbox):
    sandbox = make_sandbox(rate_limit=3, rate_window=60)
    task_id = sandbox.submit(RAPID, {"prompt": "a"})
    assert sandbox.status(task_id).status_code == 200
    assert sandbox.status(task_id).status_code == 200
    throttled = sandbox.status(task_id)
    assert throttled.status_code == 429
    assert throttled.json() == {
        "detail": "Request was throttled. Expected available in 60 seconds.",
        "error_code": "RATE_LIMITED",
    }
    assert throttled.headers["Retry-After"] == "60"
    assert sandbox.post(RAPID, {"prompt": "a"}).status_code == 429
    assert len(sandbox.tasks()) == 1
    counted = [(e["kind"], e["status"], e["counted"]) for e in sandbox.log()]
    assert counted == [
        ("submit", 200, True),
        ("status", 200, True),
        ("status", 200, True),
        ("status", 429, False),
        ("submit", 429, False),
    ]


def test_the_window_slides_and_a_429_does_not_use_up_budget(make_sandbox):
    sandbox = make_sandbox(rate_limit=2, rate_window=1)
    submitted = time.time()
    task_id = sandbox.submit(RAPID, {"prompt": "a"})
    time.sleep(0.5)
    assert sandbox.status(task_id).status_code == 200
    for _ in range(5):
        response = sandbox.status(task_id)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
    time.sleep(max(0, submitted + 1.1 - time.time()))
    # The submit left the window, the poll has not; had the 429s counted, this would fail.
    assert sandbox.status(task_id).status_code == 200
    assert sandbox.status(task_id).status_code == 429


def test_each_key_has_its_own_budget(make_sandbox):
    sandbox = make_sandbox(rate_limit=1, rate_window=60, api_keys=["key-one-1111", "key-two-2222"])
    assert sandbox.post(RAPID, {"prompt": "a"}, key="key-one-1111").status_code == 200
    assert sandbox.post(RAPID, {"prompt": "a"}, key="key-one-1111").status_code == 429
    assert sandbox.post(RAPID, {"prompt": "a"}, key="key-two-2222").status_code == 200


def test_downloads_and_the_wallet_do_not_count(make_sandbox):
    sandbox = make_sandbox(rate_limit=2, rate_window=60, faults=QUICK)
    task_id = sandbox.submit(RAPID, {"prompt": "a"})
    time.sleep(0.05)
    answer = sandbox.status(task_id).json()
    assert answer["status"] == "FINISHED"
    assert sandbox.status(task_id).status_code == 429
    url = answer["results"][0]["asset"]
    for _ in range(4):
        assert sandbox.download(url).status_code == 200
        assert sandbox.get("/account/user/wallet/").status_code == 200
    kinds = {(e["kind"], e["counted"]) for e in sandbox.log()}
    assert ("download", False) in kinds
    assert ("wallet", False) in kinds
    assert all(e["download"] == (e["kind"] == "download") for e in sandbox.log())


def test_retry_after_as_an_http_date(make_sandbox):
    sandbox = make_sandbox(rate_limit=1, rate_window=30, faults={"retry_after_mode": "http_date"})
    sandbox.submit(RAPID, {"prompt": "a"})
    response = sandbox.post(RAPID, {"prompt": "a"})
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
    assert time.time() + 29 <= when <= time.time() + 32
    assert "available in 30 seconds" in response.json()["detail"]


def test_retry_after_only_in_the_text(make_sandbox):
    sandbox = make_sandbox(rate_limit=1, rate_window=30, faults={"retry_after_mode": "text_only"})
    sandbox.submit(RAPID, {"prompt": "a"})
    response = sandbox.post(RAPID, {"prompt": "a"})
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.json()["detail"] == "Request was throttled. Expected available in 30 seconds."


def test_no_retry_hint_at_all(make_sandbox):
    sandbox = make_sandbox(rate_limit=1, rate_window=30, faults={"retry_after_mode": "none"})
    sandbox.submit(RAPID, {"prompt": "a"})
    response = sandbox.post(RAPID, {"prompt": "a"})
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.json() == {"detail": "Request was throttled.", "error_code": "RATE_LIMITED"}


def test_force_429_next_throttles_exactly_that_many_calls(make_sandbox):
    sandbox = make_sandbox(rate_limit=1000, rate_window=60, faults={"force_429_next": 2})
    codes = [sandbox.post(RAPID, {"prompt": "a"}).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    assert sandbox.admin("GET", "/_sandbox/faults")["force_429_next"] == 0
    assert len(sandbox.tasks()) == 1


def test_the_wallet_reports_the_limit_an_admin_sets(make_sandbox):
    sandbox = make_sandbox(rate_limit=3)
    sandbox.admin("PUT", "/_sandbox/wallet", {"rate_limit": 1})
    assert sandbox.get("/user/wallet/").json()["rate_limit"] == 1
    sandbox.submit(RAPID, {"prompt": "a"})
    assert sandbox.post(RAPID, {"prompt": "a"}).status_code == 429


def test_401_is_answered_before_the_throttle(make_sandbox):
    sandbox = make_sandbox(rate_limit=1)
    for _ in range(3):
        response = requests.post(sandbox.url + RAPID, json={"prompt": "a"}, timeout=5)
        assert response.status_code == 401
    assert sandbox.post(RAPID, {"prompt": "a"}).status_code == 200
