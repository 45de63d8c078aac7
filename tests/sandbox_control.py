"""Talking to the sandbox's admin endpoints from tests (faults, the request log)."""

import requests


def set_faults(server, plan):
    response = requests.put(f"{server.url}/_sandbox/faults", json=plan, timeout=5)
    response.raise_for_status()


def request_log(server):
    response = requests.get(f"{server.url}/_sandbox/log", timeout=5)
    response.raise_for_status()
    data = response.json()
    return data["entries"] if isinstance(data, dict) else data


def upstream_calls(server, kind=None):
    """Counted API calls (submits and polls), optionally only one kind."""
    calls = []
    for entry in request_log(server):
        path = entry["path"]
        if path.startswith("/_sandbox/") or path.startswith("/storage/"):
            continue
        is_poll = "/status/" in path
        if kind == "submit" and (is_poll or entry["method"] != "POST"):
            continue
        if kind == "poll" and not is_poll:
            continue
        calls.append(entry)
    return calls
