"""State survives a restart; the command line starts and stops cleanly."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import requests
from conftest import KEY, Client, start_server

RAPID = "/v1/3d-models/tencent/generate/rapid/"
REPO = Path(__file__).resolve().parents[2]


def test_a_restart_keeps_tasks_wallet_and_urls(tmp_path):
    plan = {"durations": {"pending": 0, "hunyuan_rapid": 0.6}}
    first = Client(start_server(tmp_path, time_scale=1.0, balance=100, faults=plan))
    task_id = first.submit(RAPID, {"prompt": "a"})
    early = first.submit(RAPID, {"prompt": "b"})
    first.admin("PUT", "/_sandbox/faults", {"durations": {"pending": 0, "hunyuan_rapid": 0}})
    assert first.status(task_id).json()["status"] == "IN_PROGRESS"
    first.server.stop()

    # A new process would start with no fault plan argument: the stored plan is kept.
    second = Client(start_server(tmp_path, time_scale=1.0, balance=999, faults=None))
    try:
        assert second.balance() == "30.00"  # the stored wallet, not the new --balance
        answer = second.wait(task_id, timeout=5)
        assert answer["status"] == "FINISHED"
        url = answer["results"][0]["asset"]
        assert url.startswith(second.url)
        assert second.download(url).content[:2] == b"PK"
        assert {t["task_id"] for t in second.tasks()} == {task_id, early}
        polls = {t["task_id"]: t["polls"] for t in second.tasks()}
        assert polls[early] == 0 and polls[task_id] >= 2  # one before the restart
        assert second.admin("GET", "/_sandbox/faults")["durations"]["hunyuan_rapid"] == 0
    finally:
        second.server.stop()


def test_a_url_signed_before_a_restart_still_works_after_it(tmp_path):
    plan = {"durations": {"pending": 0, "hunyuan_rapid": 0}}
    first = Client(start_server(tmp_path, faults=plan))
    task_id = first.submit(RAPID, {"prompt": "a"})
    time.sleep(0.02)
    old_url = first.status(task_id).json()["results"][0]["asset"]
    first.server.stop()
    second = Client(start_server(tmp_path))
    try:
        parts = urllib.parse.urlsplit(old_url)
        moved = f"{second.url}{parts.path}?{parts.query}"
        assert second.download(moved).status_code == 200
    finally:
        second.server.stop()


def run_cli(tmp_path, *args, env=None):
    command = [sys.executable, "-m", "sandbox", "--port", "0", "--state", str(tmp_path / "s.db")]
    process = subprocess.Popen(
        command + list(args),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = process.stdout.readline()
    match = re.fullmatch(r"SANDBOX LISTENING (http://127\.0\.0\.1:(\d+))\n", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, match.group(1)


def test_the_command_line_serves_and_exits_cleanly_on_sigterm(tmp_path):
    plan = json.dumps({"latency_ms": 1})
    process, url = run_cli(
        tmp_path,
        "--api-key",
        KEY,
        "--api-key",
        "second-key",
        "--rate-limit",
        "5",
        "--balance",
        "250",
        "--faults",
        plan,
        "--quirks",
        "off",
        "--time-scale",
        "0.001",
    )
    try:
        headers = {"Authorization": f"Bearer {KEY}"}
        wallet = requests.get(url + "/account/user/wallet/", headers=headers, timeout=5)
        assert wallet.json() == {"balance": "250.00", "rate_limit": 5}
        other = requests.get(
            url + "/user/wallet/", headers={"Authorization": "Bearer second-key"}, timeout=5
        )
        assert other.status_code == 200
        assert requests.get(url + "/_sandbox/faults", timeout=5).json() == {"latency_ms": 1}
        assert (tmp_path / "s.db").exists()
        assert (tmp_path / "s-assets").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    assert process.stdout.read() == ""  # exactly one line on stdout


def test_the_command_line_reads_keys_and_faults_from_the_environment(tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"submit_5xx_next": 1}))
    env = {"SANDBOX_API_KEYS": "env-key-aaaa, env-key-bbbb", "SANDBOX_FAULTS": f"@{plan_file}"}
    process, url = run_cli(tmp_path, env=env)
    try:
        for key in ("env-key-aaaa", "env-key-bbbb"):
            response = requests.get(
                url + "/account/user/wallet/", headers={"Authorization": f"Bearer {key}"}, timeout=5
            )
            assert response.json() == {"balance": "1500.00", "rate_limit": 3}
        assert requests.get(url + "/_sandbox/faults", timeout=5).json() == {"submit_5xx_next": 1}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0


def test_the_command_line_refuses_a_bad_fault_plan(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--state",
            str(tmp_path / "s.db"),
            "--faults",
            '{"fail_rat": 1}',
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "fail_rat" in result.stderr
    assert result.stdout == ""
