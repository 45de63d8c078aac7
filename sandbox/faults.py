"""The fault plan: which failures to inject, and the quirks the real service shows.

A plan is a JSON object; every key is optional. It comes from `--faults`, the
environment variable SANDBOX_FAULTS, or `PUT /_sandbox/faults`, and is stored in
the state file. Random choices are drawn from `random.Random` seeded with the
server seed plus a counter (the n-th submit, the n-th poll), so the same seed
and the same sequence of requests give the same faults.

Keys:
  fail_rate               probability a new task ends FAILED (replaces the quirk rate)
  submit_5xx_rate         probability a submit answers 503 (no task created)
  submit_5xx_next         the next N submits answer 503 (counts down)
  status_5xx_rate, status_5xx_next   the same for status polls
  force_429_next          the next N rate-limited requests answer 429
  latency_ms              added before answering every API request
  hang_submit_after_receive  seconds to wait after creating the task before answering;
                          -1 = never answer (the connection stays open until the client
                          gives up or the sandbox stops)
  hang_status             the same for status polls
  drop_after_receive      "submit", "status" or "all": close the connection without an
                          answer. A dropped submit HAS created and charged the task.
  malformed               "truncated_json", "html_200", "missing_task_id", "unknown_status",
                          "empty_results", or {"submit": ..., "status": ...}. A string
                          applies wherever it makes sense. A malformed submit answer comes
                          after the task was created and charged (damaged on the way back).
  corrupt_asset           true: downloads serve bytes that are not the declared format
  oversized_asset_mb      downloads stream this many MB (real file, then padding)
  asset_drip_kbps         downloads trickle at this many KiB per second (a slow drip)
  truncated_asset         true: Content-Length is the full size, half is sent, then close
  asset_host              base URL put into asset URLs instead of the sandbox's own
  retry_after_mode        "seconds" (default), "http_date", "none", "text_only"
  null_asset_polls        every new task answers FINISHED with a null asset for N polls
  asset_ttl_seconds       lifetime of pre-signed URLs (default 24 h, or --asset-ttl)
  durations               {"hunyuan_pro": 300, "pending": 2, ...} seconds before time scale
  quirks                  {"null_asset_rate": 0.15, ...} overrides single quirk rates
  echo_authorization      true, or a list of "failure_reason", "detail", "status": a proxy
                          that echoes the key. The incoming request's Authorization header
                          value is copied verbatim into upstream free text:
                            failure_reason  a task's failure_reason (when it has one)
                            detail          the message of every 4xx/5xx answer: JSON
                                            bodies get it in `detail` (appended) and in a
                                            `message` key; HTML and S3-style XML bodies in
                                            their text
                            status          the status word itself, which then is no known
                                            word: "<STATUS>: <header value>"
                          true means ["failure_reason", "detail"]. A request without the
                          header has nothing to echo.
  old_status_shape        true: FINISHED answers use the older docs' result shape: each item
                          is {"asset_url": <url>, "asset_type": ..., "thumbnail": <url>,
                          "metadata": ...} (no `asset` key); the thumbnail is a 256 px PNG
                          of that result, downloadable like the result (same signing and
                          expiry). An item without a file has asset_url and thumbnail null.
  draco_optimize          true: optimize answers a Draco-compressed GLB (sandbox/draco.py),
                          as the upstream's does; off by default, because the sandbox's own
                          tools read models with trimesh, which cannot decode Draco (a
                          render of the optimized version would fail). Fixed at submit.

Every fault that concerns tasks or files reaches every endpoint (3D generation, images,
texturing, remeshing, tools, the miniature flow): failed and refunded, FINISHED without
asset, null-asset polls, expired URLs, slow, truncated, corrupt and oversized files.

Task-level choices (FAILED or not, null-asset polls, durations) are fixed when the task
is submitted; transport and asset faults apply to each request as it arrives.
"""

import json

QUIRK_DEFAULTS = {
    # FINISHED with asset null (and no failure_reason) for 1-3 polls before the URL appears.
    "null_asset_rate": 0.15,
    # FINISHED with asset null and a failure_reason: a failure, refunded like FAILED.
    "finished_no_asset_rate": 0.02,
    # Plain FAILED tasks.
    "random_failed_rate": 0.03,
    # `progress` missing from early PENDING answers ("may be missing early").
    "missing_progress_rate": 0.5,
    # Tripo refuses PNGs with transparency (1 = always, 0 = accept them).
    "tripo_transparent_png": 1.0,
}
# Refusing transparent PNGs on Tripo is a validation rule seen upstream, not a random
# event, so `--quirks off` keeps it; the plan can still turn it off on its own.
QUIRKS_OFF = dict(dict.fromkeys(QUIRK_DEFAULTS, 0.0), tripo_transparent_png=1.0)

PROVIDERS = ("hunyuan_pro", "hunyuan_rapid", "trellis2", "tripo", "tripo_p1", "convert")
PROVIDERS += ("gemini_3_pro", "gemini_31_flash", "gemini_25_flash", "seedream")
PROVIDERS += ("tencent_texture_edit", "tripo_texture")
PROVIDERS += ("tencent_topology", "tripo_convert_model", "tripo_segmentation")
PROVIDERS += ("render", "repair", "optimize", "bake_texture", "calculate_volume")
PROVIDERS += ("remove_bg", "image_enhance", "miniature")
ECHO_FIELDS = ("failure_reason", "detail", "status")
MALFORMED_SUBMIT = ("truncated_json", "html_200", "missing_task_id")
MALFORMED_STATUS = ("truncated_json", "html_200", "unknown_status", "empty_results")
RETRY_AFTER_MODES = ("seconds", "http_date", "none", "text_only")

_NUMBERS = {
    "fail_rate",
    "submit_5xx_rate",
    "status_5xx_rate",
    "latency_ms",
    "hang_submit_after_receive",
    "hang_status",
    "oversized_asset_mb",
    "asset_ttl_seconds",
    "asset_drip_kbps",
}
_COUNTS = {"submit_5xx_next", "status_5xx_next", "force_429_next", "null_asset_polls"}
_FLAGS = {"corrupt_asset", "truncated_asset", "old_status_shape", "draco_optimize"}
KNOWN = _NUMBERS | _COUNTS | _FLAGS
KNOWN |= {"drop_after_receive", "malformed", "asset_host", "retry_after_mode", "durations"}
KNOWN |= {"quirks", "echo_authorization"}


class BadPlan(ValueError):
    pass


def parse(text):
    """Parse a plan from JSON text or "@path/to/file.json"."""
    if text is None or text == "":
        return {}
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadPlan(f"fault plan is not JSON: {exc}") from None
    return check(plan)


def check(plan):
    """Refuse unknown keys and wrong types: a typo must not silently disable a fault."""
    if not isinstance(plan, dict):
        raise BadPlan("fault plan must be a JSON object")
    unknown = sorted(set(plan) - KNOWN)
    if unknown:
        raise BadPlan(f"unknown fault keys: {', '.join(unknown)}")
    for name, value in plan.items():
        if value is None:
            continue
        if name in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadPlan(f"{name} must be a number")
        if name in _COUNTS and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadPlan(f"{name} must be an integer")
        if name in _FLAGS and not isinstance(value, bool):
            raise BadPlan(f"{name} must be true or false")
    drop = plan.get("drop_after_receive")
    if drop not in (None, False, "submit", "status", "all"):
        raise BadPlan('drop_after_receive must be "submit", "status" or "all"')
    malformed = plan.get("malformed")
    if isinstance(malformed, str):
        if malformed not in set(MALFORMED_SUBMIT) | set(MALFORMED_STATUS):
            raise BadPlan(f"unknown malformed kind {malformed!r}")
    elif isinstance(malformed, dict):
        for target, kind in malformed.items():
            allowed = {"submit": MALFORMED_SUBMIT, "status": MALFORMED_STATUS}.get(target)
            if allowed is None or (kind is not None and kind not in allowed):
                raise BadPlan(f"bad malformed entry {target!r}: {kind!r}")
    elif malformed not in (None, False):
        raise BadPlan("malformed must be a string or an object")
    if plan.get("retry_after_mode") not in (None, *RETRY_AFTER_MODES):
        raise BadPlan(f"retry_after_mode must be one of {', '.join(RETRY_AFTER_MODES)}")
    if plan.get("asset_host") is not None and not isinstance(plan["asset_host"], str):
        raise BadPlan("asset_host must be a base URL string")
    echo = plan.get("echo_authorization")
    if not (echo is None or isinstance(echo, bool)):
        if not isinstance(echo, list) or any(f not in ECHO_FIELDS for f in echo):
            raise BadPlan(f"echo_authorization must be true or a list of {', '.join(ECHO_FIELDS)}")
    durations = plan.get("durations") or {}
    if not isinstance(durations, dict):
        raise BadPlan("durations must be an object")
    for name, value in durations.items():
        if name not in (*PROVIDERS, "pending"):
            raise BadPlan(f"unknown duration key {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise BadPlan(f"durations.{name} must be a number >= 0")
    quirks = plan.get("quirks") or {}
    if not isinstance(quirks, dict):
        raise BadPlan("quirks must be an object of rates")
    for name, value in quirks.items():
        if name not in QUIRK_DEFAULTS:
            raise BadPlan(f"unknown quirk {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadPlan(f"quirks.{name} must be a number")
    return plan


def malformed_for(plan, target):
    value = plan.get("malformed")
    if isinstance(value, dict):
        return value.get(target)
    allowed = MALFORMED_SUBMIT if target == "submit" else MALFORMED_STATUS
    return value if value in allowed else None


def drops(plan, target):
    return plan.get("drop_after_receive") in (target, "all")


def echo_fields(plan):
    """Where `echo_authorization` puts the Authorization header: a set of ECHO_FIELDS."""
    echo = plan.get("echo_authorization")
    if echo is True:
        return {"failure_reason", "detail"}
    return set(echo) if isinstance(echo, list) else set()
