"""SQLite state of the sandbox: wallet, keys, tasks, request log, fault plan.

One connection guarded by one lock: the sandbox serves a handful of requests a
second, and a single lock makes check-and-charge and the rate window atomic
(twenty concurrent submits against a 60-credit wallet: exactly one wins).
"""

import json
import secrets
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    provider TEXT NOT NULL,
    job TEXT NOT NULL,              -- JSON: prompt, mesh options, results, options
    seed INTEGER NOT NULL,          -- seed for the meshes of this task
    charged INTEGER NOT NULL,       -- credits
    refunded INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL NOT NULL,
    finishes_at REAL NOT NULL,      -- when it becomes FINISHED or FAILED upstream
    outcome TEXT NOT NULL,          -- ok, failed, finished_no_asset
    failure_reason TEXT,
    null_polls_left INTEGER NOT NULL DEFAULT 0,
    hide_progress INTEGER NOT NULL DEFAULT 0,
    polls INTEGER NOT NULL DEFAULT 0
);
-- Only failures are ever refunded: the sweep in settle() reads this small index.
CREATE INDEX IF NOT EXISTS tasks_unsettled ON tasks (finishes_at)
    WHERE refunded = 0 AND outcome != 'ok';
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    key TEXT,                       -- redacted: last 4 characters only
    key_hash TEXT,                  -- to count the rate window per key without storing it
    kind TEXT NOT NULL,             -- submit, status, wallet, download, other
    counted INTEGER NOT NULL DEFAULT 0,
    status INTEGER,                 -- null while running, or when the connection was dropped
    note TEXT
);
CREATE INDEX IF NOT EXISTS log_window ON log (key_hash, time) WHERE counted = 1;
"""


class Store:
    def __init__(self, path):
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self):
        with self.lock:
            self.db.close()

    # --- meta ----------------------------------------------------------------------------

    def get(self, name, default=None):
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row["value"]) if row else default

    def put(self, name, value):
        with self.lock:
            self.db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )

    def setdefault(self, name, value):
        with self.lock:
            current = self.get(name)
            if current is None:
                self.put(name, value)
                return value
            return current

    def next_counter(self, name):
        with self.lock:
            value = self.get(name, 0) + 1
            self.put(name, value)
            return value

    def secret(self):
        # The signing secret survives restarts so URLs handed out earlier keep working.
        return self.setdefault("signing_secret", secrets.token_hex(32))

    # --- keys ----------------------------------------------------------------------------

    def key_state(self, key):
        with self.lock:
            row = self.db.execute("SELECT state FROM keys WHERE key = ?", (key,)).fetchone()
        return row["state"] if row else None

    def set_key(self, key, state):
        with self.lock:
            self.db.execute(
                "INSERT INTO keys (key, state) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
                (key, state),
            )

    def add_key_if_missing(self, key):
        with self.lock:
            self.db.execute("INSERT OR IGNORE INTO keys (key, state) VALUES (?, 'active')", (key,))

    def reset_keys(self, keys):
        with self.lock:
            self.db.execute("DELETE FROM keys")
            for key in keys:
                self.set_key(key, "active")

    # --- wallet (balance kept in hundredths so an admin may set "12.50") -------------------

    def balance_cents(self):
        return self.get("balance_cents", 0)

    def try_charge(self, credits):
        """Charge `credits` if the balance covers it. Returns (ok, balance_cents_before)."""
        with self.lock:
            before = self.balance_cents()
            if before < credits * 100:
                return False, before
            self.put("balance_cents", before - credits * 100)
            return True, before

    # --- log -----------------------------------------------------------------------------

    def log_start(self, now, method, path, key_redacted, key_hash, kind):
        with self.lock:
            cursor = self.db.execute(
                "INSERT INTO log (time, method, path, key, key_hash, kind) VALUES (?,?,?,?,?,?)",
                (now, method, path, key_redacted, key_hash, kind),
            )
            return cursor.lastrowid

    def log_finish(self, log_id, status, note=None):
        with self.lock:
            self.db.execute(
                "UPDATE log SET status = ?, note = COALESCE(?, note) WHERE id = ?",
                (status, note, log_id),
            )

    def log_since(self, since):
        with self.lock:
            rows = self.db.execute(
                "SELECT id, time, method, path, key, kind, counted, status, note FROM log "
                "WHERE id > ? ORDER BY id",
                (since,),
            ).fetchall()
        return [
            {
                "id": r["id"],
                "time": r["time"],
                "method": r["method"],
                "path": r["path"],
                "key": r["key"],
                "kind": r["kind"],
                "download": r["kind"] == "download",
                "counted": bool(r["counted"]),
                "status": r["status"],
                "note": r["note"],
            }
            for r in rows
        ]

    def throttle(self, log_id, key_hash, now, limit, window):
        """Sliding window: admit and count this request, or return seconds until a slot frees.

        Only admitted requests are counted, so a 429 does not consume budget."""
        with self.lock:
            rows = self.db.execute(
                "SELECT time FROM log WHERE counted = 1 AND key_hash = ? AND time > ? "
                "ORDER BY time",
                (key_hash, now - window),
            ).fetchall()
            if len(rows) >= limit:
                # The slot frees when the oldest request that keeps us at the limit leaves.
                oldest = rows[len(rows) - limit]["time"] if limit > 0 else now
                return max(oldest + window - now, 0.001)
            self.db.execute("UPDATE log SET counted = 1 WHERE id = ?", (log_id,))
            return 0

    # --- tasks ---------------------------------------------------------------------------

    def insert_task(self, row):
        with self.lock:
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            self.db.execute(f"INSERT INTO tasks ({names}) VALUES ({marks})", tuple(row.values()))

    def task(self, task_id):
        with self.lock:
            return self.db.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()

    def tasks(self):
        with self.lock:
            return self.db.execute("SELECT * FROM tasks ORDER BY seq").fetchall()

    def count_poll(self, task_id, finished):
        """Count one status poll; while FINISHED, use up one null-asset poll if any are left.

        Returns True when this poll must still show a null asset."""
        with self.lock:
            self.db.execute("UPDATE tasks SET polls = polls + 1 WHERE task_id = ?", (task_id,))
            if not finished:
                return False
            cursor = self.db.execute(
                "UPDATE tasks SET null_polls_left = null_polls_left - 1 "
                "WHERE task_id = ? AND null_polls_left > 0",
                (task_id,),
            )
            return cursor.rowcount == 1

    def settle(self, now):
        """Refund every task that has failed upstream by `now`, exactly once each.

        The conditional UPDATE is the guard: a second caller finds refunded = 1."""
        with self.lock:
            rows = self.db.execute(
                "SELECT task_id, charged FROM tasks "
                "WHERE refunded = 0 AND outcome != 'ok' AND finishes_at <= ?",
                (now,),
            ).fetchall()
            for row in rows:
                cursor = self.db.execute(
                    "UPDATE tasks SET refunded = 1 WHERE task_id = ? AND refunded = 0",
                    (row["task_id"],),
                )
                if cursor.rowcount == 1:
                    self.put("balance_cents", self.balance_cents() + row["charged"] * 100)

    def clear(self):
        with self.lock:
            self.db.execute("DELETE FROM tasks")
            self.db.execute("DELETE FROM log")
