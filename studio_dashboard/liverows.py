"""Rows kept across requests until PostgreSQL says they changed.

The status card of a generation in flight is polled every 2 s, and each poll
asks the database the same question: this session, its user with their
permissions, and the generation's row (``auth.read_session``). Those rows change
seldom (the worker polls upstream a few times a minute), yet the round trip was
half of what the card cost over the trivial view. So the answer is kept, per
thread, and dropped when PostgreSQL says a row in it changed.

Full pages are kept the same way: their query reads the page's figures too, so
their answer is tagged with every table those come from (and the generation page
with those its version reads), and dropped when any row of them changes.

Triggers (accounts/migrations/0002 and 0003) ``NOTIFY`` on ``CHANNEL`` at commit:
``table:key`` when a session (by its key) or a generation (by its id) is updated
or deleted, ``table:*`` when rows of a table a page reads are inserted, updated or
deleted (generations inserted included), and the bare table name for any change
to the tables behind users and permissions, or a truncation. Each thread's database
connection listens; every lookup first reads what has arrived (a non-blocking
look at the socket, a few microseconds) and drops what it names, everything for
a bare table name. So a change shows as soon as its notification has reached
the connection: PostgreSQL hands it over when the listening connection is idle,
which between requests it is.

Rows are kept only:

- on PostgreSQL with ``LIVE_ROW_CACHE`` on (the default);
- outside a transaction: inside one, a request may read its own uncommitted
  writes, and PostgreSQL holds notifications back until it ends;
- on a connection that hears itself: on ``LISTEN`` it sends itself a
  notification, which must come back with the answer. Behind a
  transaction-pooling proxy (PgBouncer) a ``LISTEN`` does not hold, that check
  fails and nothing is kept;
- for at most ``TTL`` seconds and while the session has not expired;
- and only rows that were all found: a miss (no session, no user, no row) is
  asked again next time.

When the connection changes (Django reopens it after ``CONN_MAX_AGE``, or after
an error) everything kept is dropped and the new one listens, so no change can
fall between two connections.
"""

import logging
import secrets
import threading
import time
from collections import OrderedDict, defaultdict

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import Counter

logger = logging.getLogger(__name__)

CHANNEL = "studio_row_changes"
HELLO = "hello:"  # a listener's check that it hears itself; names no change
TTL = 30.0  # seconds; a safety net, not how changes are seen
SIZE = 2000  # rows per thread, the least recently used dropped first


# How each question that may be kept (a full page's or the polled card's) was answered:
# "kept" from memory, "read" from the database (then kept), "off" from the database with
# keeping off or impossible (a connection that does not hear itself). On /metrics.
ANSWERS = Counter(
    "studio_kept_rows_total",
    "Pages and polled cards answered from kept rows, read (then kept), or read with keeping off.",
    ["answer"],
    registry=None,
)
# Every series from the start, at zero; bound once (labels() looks the child up each time).
ANSWERED = {answer: ANSWERS.labels(answer) for answer in ("kept", "read", "off")}


def tag(model, key):
    """What the triggers notify when ``model``'s row ``key`` changes."""
    return f"{model._meta.db_table}:{key}"


class Kept:
    """One thread's rows, for the connection it listens on."""

    def __init__(self):
        self.raw = None  # the psycopg connection these rows were read on
        self.hears = False  # whether ``raw`` listens and hears itself
        self.rows = OrderedDict()  # key -> (row, tags, valid until, monotonic deadline)
        self.tagged = defaultdict(set)  # tag -> keys

    def get(self, key):
        """The row kept for ``key``, or None."""
        found = self.rows.get(key)
        if found is None:
            return None
        row, _tags, valid_until, deadline = found
        if deadline < time.monotonic() or (
            valid_until is not None and valid_until <= timezone.now()
        ):
            self._forget(key)
            return None
        self.rows.move_to_end(key)
        return row

    def put(self, key, row, tags, valid_until=None):
        """Keep ``row``, read on this connection since the lookup that missed it, until a
        notification names one of ``tags``, ``valid_until`` (a datetime) or TTL passes.

        Nothing is read from the socket here: a change committed after the row was read
        is still waiting there, and the next lookup drops the row for it."""
        if self.raw is not connection.connection or not self.hears:
            return
        self._forget(key)
        self.rows[key] = (row, tuple(tags), valid_until, time.monotonic() + TTL)
        for name in tags:
            self.tagged[name].add(key)
        while len(self.rows) > SIZE:
            self._forget(next(iter(self.rows)))

    def clear(self):
        self.rows.clear()
        self.tagged.clear()

    def changed(self, payload):
        """Drop what a notification names. ``table:key`` (a row) and ``table:*`` (some
        rows) drop the rows kept with that tag and those kept with the whole table's
        (``table``: read from any of its rows); a bare table name, or anything not
        understood, drops every row."""
        if payload.startswith(HELLO):
            return
        table, colon, _key = payload.partition(":")
        if not colon:
            self.clear()
            return
        for name in (payload, table):
            for key in list(self.tagged.get(name, ())):
                self._forget(key)

    def _forget(self, key):
        found = self.rows.pop(key, None)
        if found is None:
            return
        for name in found[1]:
            keys = self.tagged.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.tagged[name]


class _Local(threading.local):
    def __init__(self):
        self.kept = Kept()


_local = _Local()


def here():
    """This thread's kept rows, current with every notification that has arrived; None
    when rows may not be kept or read now (see the module's docstring)."""
    if (
        not settings.LIVE_ROW_CACHE
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
    ):
        return None
    kept = _local.kept
    try:
        connection.ensure_connection()
        raw = connection.connection
        if kept.raw is not raw:
            kept.clear()
            kept.raw, kept.hears = raw, False
            kept.hears = _listen(raw)
        if not kept.hears:
            return None
        for notify in raw.notifies(timeout=0):
            kept.changed(notify.payload)
    except (DatabaseError, psycopg.Error, OSError) as exc:  # notifies() raises psycopg's own
        _give_up(kept, exc)
        return None
    return kept


def _give_up(kept, exc):
    logger.warning("rows not kept on this connection: %s", exc)
    kept.clear()
    kept.raw, kept.hears = None, False


def _listen(raw):
    """Listen on ``raw`` and check that it hears its own notification."""
    hello = HELLO + secrets.token_hex(8)
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {CHANNEL}")
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, hello])
    # What arrived before the LISTEN was checked is dropped with everything kept.
    heard = [notify.payload for notify in raw.notifies(timeout=0)]
    if hello not in heard:
        logger.warning("rows not kept: the connection does not hear its own NOTIFY")
        return False
    return True


def forget():
    """Drop this thread's rows and its listening connection (for tests)."""
    _local.kept.clear()
    _local.kept.raw, _local.kept.hears = None, False
