"""Structured logs: JSON lines in production, the generation id on pipeline lines, no API key."""

import io
import json
import logging

import pytest

from ops.logs import JsonFormatter, PlainFormatter, log_context, with_generation_id

SENTINEL = "sk-live-sentinel-key-5d1c9e"


@pytest.fixture
def console():
    """The configured console handler (with its filters), writing into a buffer."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    old_stream, old_formatter = handler.setStream(buffer), handler.formatter
    handler.setFormatter(JsonFormatter())
    yield buffer
    handler.setStream(old_stream)
    handler.setFormatter(old_formatter)


def lines(buffer):
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_event_is_one_json_object_per_line(console):
    log = logging.getLogger("generations.tasks")
    log.info("first")
    log.warning("second\nspans two lines")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("third")
    entries = lines(console)
    assert [e["message"] for e in entries] == ["first", "second\nspans two lines", "third"]
    assert entries[0]["level"] == "INFO"
    assert entries[0]["logger"] == "generations.tasks"
    assert "ValueError: boom" in entries[2]["exc"]
    assert "generation_id" not in entries[0]


def test_a_pipeline_task_stamps_its_generation_id_on_every_line(console):
    @with_generation_id
    def task(generation_id, claim=None):
        logging.getLogger("generations.ingest").info("downloading")
        logging.getLogger("urllib3.anything").warning("a library speaks")

    task(42, claim="abc")
    logging.getLogger("generations.tasks").info("after the task")
    entries = lines(console)
    assert [(e["message"], e.get("generation_id")) for e in entries] == [
        ("downloading", 42),
        ("a library speaks", 42),
        ("after the task", None),
    ]


def test_the_real_tasks_carry_the_decorator():
    from generations import tasks

    for task in (tasks.submit_generation, tasks.poll_generation, tasks.ingest_generation):
        assert task.run.__wrapped__, task.name


def test_the_plain_format_shows_the_context():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.context = " [generation_id=7]"
    assert PlainFormatter().format(record).endswith("INFO x [generation_id=7] hello")


def test_log_context_nests_and_restores(console):
    with log_context(generation_id=1):
        with log_context(conversion_id=2):
            logging.getLogger("t").info("inner")
        logging.getLogger("t").info("outer")
    entries = lines(console)
    assert entries[0]["generation_id"] == 1 and entries[0]["conversion_id"] == 2
    assert "conversion_id" not in entries[1]


def test_the_api_key_is_redacted_even_when_logged_on_purpose(console, settings):
    settings.UPSTREAM_API_KEY = settings.STUDIO_API_KEY = SENTINEL
    log = logging.getLogger("generations.upstream")
    log.info("key is " + SENTINEL)
    log.info("key is %s", SENTINEL)
    log.info("headers %r", {"Authorization": f"Bearer {SENTINEL}"})
    log.info("key %(key)s", {"key": SENTINEL})
    try:
        raise RuntimeError(f"refused {SENTINEL}")
    except RuntimeError:
        log.exception("failed")
    log.info("stack", stack_info=True, extra={"unused": SENTINEL})
    output = console.getvalue()
    assert SENTINEL not in output
    assert output.count("[redacted]") >= 5
    assert len(lines(console)) == 6


def test_plain_output_is_redacted_too(settings):
    settings.UPSTREAM_API_KEY = SENTINEL
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    old_formatter = handler.formatter
    handler.setFormatter(PlainFormatter())
    try:
        logging.getLogger("x").error("oops %s", SENTINEL)
    finally:
        handler.setStream(old_stream)
        handler.setFormatter(old_formatter)
    assert SENTINEL not in buffer.getvalue()
    assert "oops [redacted]" in buffer.getvalue()


def test_production_settings_choose_json(settings):
    import subprocess
    import sys

    code = (
        "import django, logging; django.setup(); "
        "from django.conf import settings; print(settings.LOGGING['handlers']['console']['formatter'])"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "studio_dashboard.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "EMAIL_HOST": "127.0.0.1",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "json"
