"""Structured logs: a context (the generation id) on every line, the API key on none.

``log_context(generation_id=...)`` (or the ``with_generation_id`` task decorator)
sets fields in a contextvar; ``ContextFilter`` copies them onto each record, so
every line a pipeline task writes carries the generation it works on, whichever
module wrote it. ``RedactFilter`` replaces the configured API key in the
formatted message, the traceback and the stack; both filters sit on the handler,
so they see records propagated from every logger. ``JsonFormatter`` writes one
JSON object per line (production); development keeps the plain format.
"""

import contextvars
import functools
import json
import logging
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings

_context = contextvars.ContextVar("ops_log_context", default=None)

REDACTED = "[redacted]"
# Shorter values would redact ordinary words; no real key is this short.
_MIN_SECRET_LENGTH = 6


@contextmanager
def log_context(**fields):
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def with_generation_id(task_function):
    """Run a task whose first argument is a generation id inside log_context."""

    @functools.wraps(task_function)
    def wrapper(generation_id, *args, **kwargs):
        with log_context(generation_id=generation_id):
            return task_function(generation_id, *args, **kwargs)

    return wrapper


def current_context():
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Adds the log context's fields to the record, and ``context`` for plain formats."""

    def filter(self, record):
        fields = _context.get() or {}
        record.log_context = dict(fields)
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        record.context = "".join(f" [{name}={value}]" for name, value in fields.items())
        return True


def _secrets(extra=()):
    values = {
        getattr(settings, "UPSTREAM_API_KEY", ""),
        getattr(settings, "STUDIO_API_KEY", ""),
        *extra,
    }
    # Longest first: a key that contains another is replaced whole.
    return sorted((v for v in values if v and len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text, extra=()):
    """``text`` without the configured API keys (and any ``extra`` secrets)."""
    for secret in _secrets(extra):
        text = text.replace(secret, REDACTED)
    return text


def redact_strings(value, extra=()):
    """A parsed JSON value with the keys removed from every string in it, keys of
    objects included: what an upstream answer becomes before anything reads it."""
    if isinstance(value, str):
        return redact(value, extra)
    if isinstance(value, list):
        return [redact_strings(item, extra) for item in value]
    if isinstance(value, dict):
        return {
            redact_strings(name, extra): redact_strings(item, extra) for name, item in value.items()
        }
    return value


class RedactFilter(logging.Filter):
    """Replaces the API key anywhere in the message, its arguments, traceback and stack.

    The message is formatted here (args merged in), so a key passed as an
    argument, or inside the repr of one, is caught too.
    """

    def filter(self, record):
        secrets = _secrets()
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string still must not leak
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class PlainFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record):
        if not hasattr(record, "context"):
            record.context = ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, traceback."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in getattr(record, "log_context", {}).items():
            entry.setdefault(name, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # default=str: a context value that is not JSON (a UUID) is written as text.
        return json.dumps(entry, default=str)
