"""Transport, auth, error shapes and the wallet: the parts every endpoint shares."""

import re
import socket

import requests
from conftest import KEY

RAPID = "/v1/3d-models/tencent/generate/rapid/"


def test_a_submit_answers_task_id_and_created_at_at_top_level(sandbox):
    response = sandbox.post(RAPID, {"prompt": "a red chair"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task_id", "created_at"}
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", body["task_id"]
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["created_at"])


def test_it_refuses_a_missing_key(sandbox):
    response = requests.post(sandbox.url + RAPID, json={"prompt": "x"}, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key.", "code": "invalid_api_key"}


def test_it_refuses_an_unknown_key(sandbox):
    response = sandbox.post(RAPID, {"prompt": "x"}, key="not-a-key")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_it_refuses_a_key_with_trailing_whitespace(sandbox):
    # requests refuses a newline in a header, so send the raw bytes ourselves.
    with socket.create_connection((sandbox.server.host, sandbox.server.port), timeout=5) as conn:
        conn.sendall(
            b"GET /account/user/wallet/ HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + KEY.encode() + b" \t\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"invalid_api_key" in answer


def test_it_refuses_a_non_bearer_scheme(sandbox):
    response = requests.get(
        sandbox.url + "/account/user/wallet/", headers={"Authorization": f"Token {KEY}"}, timeout=5
    )
    assert response.status_code == 401


def test_expired_and_revoked_keys_have_their_own_codes(sandbox):
    sandbox.admin("PUT", "/_sandbox/keys", {"old-key-1234": "expired", "bad-key-5678": "revoked"})
    expired = sandbox.post(RAPID, {"prompt": "x"}, key="old-key-1234")
    revoked = sandbox.get("/account/user/wallet/", key="bad-key-5678")
    assert (expired.status_code, expired.json()["code"]) == (401, "api_key_expired")
    assert (revoked.status_code, revoked.json()["code"]) == (401, "api_key_revoked")
    sandbox.admin("PUT", "/_sandbox/keys", {"old-key-1234": "active"})
    assert sandbox.post(RAPID, {"prompt": "x"}, key="old-key-1234").status_code == 200


def test_the_wallet_answers_on_both_paths(sandbox):
    for path in ("/account/user/wallet/", "/user/wallet/"):
        response = sandbox.get(path)
        assert response.status_code == 200
        assert response.json() == {"balance": "100000.00", "rate_limit": 1000}


def test_the_wallet_balance_is_a_two_place_decimal_string(sandbox):
    sandbox.admin("PUT", "/_sandbox/wallet", {"balance": "12.5", "rate_limit": 7})
    assert sandbox.get("/account/user/wallet/").json() == {"balance": "12.50", "rate_limit": 7}


def test_a_path_without_its_trailing_slash_is_not_found(sandbox):
    response = sandbox.post(RAPID.rstrip("/"), {"prompt": "x"})
    assert response.status_code == 404
    assert sandbox.get("/account/user/wallet").status_code == 404
    assert sandbox.tasks() == []


def test_an_unknown_task_is_404_with_the_drf_message(sandbox):
    response = sandbox.status("5b0a4d7e-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"detail": "No PublicAPIGenerationRequest matches the given query."}


def test_wrong_methods_are_405(sandbox):
    assert sandbox.get(RAPID).status_code == 405
    assert sandbox.post("/account/user/wallet/", {}).status_code == 405


def test_unknown_fields_are_ignored(sandbox):
    response = sandbox.post(RAPID, {"prompt": "a lamp", "colour": "blue", "style": {"x": 1}})
    assert response.status_code == 200


def test_a_body_that_is_not_json_is_a_400(sandbox):
    response = sandbox.http.post(
        sandbox.url + RAPID,
        data=b"{not json",
        headers={**sandbox.headers(), "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert response.json()["detail"].startswith("JSON parse error")


def test_a_json_list_body_is_a_400(sandbox):
    response = sandbox.post(RAPID, [{"prompt": "x"}])
    assert response.status_code == 400
    assert "Expected a dictionary" in response.json()["detail"]


def test_a_body_in_an_encoding_drf_does_not_parse_is_415(sandbox):
    response = sandbox.http.post(
        sandbox.url + RAPID,
        data=b"prompt=x",
        headers={**sandbox.headers(), "Content-Type": "text/plain"},
        timeout=5,
    )
    assert response.status_code == 415
    assert sandbox.tasks() == []


def test_insufficient_credits_is_402_and_charges_nothing(make_sandbox):
    sandbox = make_sandbox(balance=50)
    response = sandbox.post("/v1/3d-models/tencent/generate/pro/", {"model": "3.0", "prompt": "x"})
    assert response.status_code == 402
    assert response.json() == {
        "detail": "Insufficient credits: this request costs 60, balance is 50.00.",
        "code": "insufficient_credits",
    }
    assert sandbox.balance() == "50.00"
    assert sandbox.tasks() == []


def test_a_submit_that_exactly_empties_the_wallet_is_accepted(make_sandbox):
    sandbox = make_sandbox(balance=35)
    assert sandbox.post(RAPID, {"prompt": "x"}).status_code == 200
    assert sandbox.balance() == "0.00"
    assert sandbox.post(RAPID, {"prompt": "x"}).status_code == 402


def test_concurrent_submits_never_overdraw_the_wallet(make_sandbox):
    from concurrent.futures import ThreadPoolExecutor

    sandbox = make_sandbox(balance=60)
    body = {"model": "3.0", "prompt": "a vase"}
    with ThreadPoolExecutor(20) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    requests.post(
                        sandbox.url + "/v1/3d-models/tencent/generate/pro/",
                        json=body,
                        headers=sandbox.headers(),
                        timeout=10,
                    ).status_code
                ),
                range(20),
            )
        )
    assert sorted(codes) == [200] + [402] * 19
    assert sandbox.balance() == "0.00"


def test_admin_endpoints_answer(sandbox):
    assert sandbox.admin("GET", "/_sandbox/health") == {"ok": True}
    assert sandbox.admin("GET", "/_sandbox/faults") == {}
    response = requests.put(sandbox.url + "/_sandbox/faults", json={"fail_rat": 1}, timeout=5)
    assert response.status_code == 400
    assert "fail_rat" in response.json()["detail"]


def test_reset_clears_tasks_and_log_and_restores_the_wallet(sandbox):
    sandbox.submit(RAPID, {"prompt": "x"})
    assert sandbox.balance() == "99965.00"
    sandbox.admin("POST", "/_sandbox/reset")
    assert sandbox.tasks() == []
    assert sandbox.balance() == "100000.00"
    assert [e["path"] for e in sandbox.log()] == ["/account/user/wallet/"]


def test_the_log_records_every_request_with_a_redacted_key(sandbox):
    task_id = sandbox.submit(RAPID, {"prompt": "x"})
    sandbox.status(task_id)
    sandbox.get("/account/user/wallet/")
    requests.get(sandbox.url + "/account/user/wallet/", timeout=5)
    entries = sandbox.log()
    assert [(e["method"], e["kind"], e["status"]) for e in entries] == [
        ("POST", "submit", 200),
        ("GET", "status", 200),
        ("GET", "wallet", 200),
        ("GET", "wallet", 401),
    ]
    assert entries[0]["key"] == "***0001"
    assert entries[3]["key"] is None
    assert all(KEY not in str(e) for e in entries)
    assert sandbox.log(since=entries[1]["id"])[0]["id"] == entries[2]["id"]
