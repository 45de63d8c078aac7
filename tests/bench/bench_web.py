"""Benchmark the pages against a trivial Django view under gunicorn, with wrk.

    .venv/bin/python tests/bench/bench_web.py [--duration 10] [--connections 4]

Recreates the PostgreSQL database ``studio_wbench`` and seeds it (with COPY,
reusing ``bench_spend``'s seed) with 100k generations in mixed states (queued,
pending, generating, finished, failed, needing attention, canceled), a model
and a thumbnail for every finished one, decisions on 70% of those (the rest
await review), and 1M ledger entries whose rollups are checked against the
ledger. Then it starts gunicorn (2 workers, production settings: DJANGO_DEBUG=0)
with ``tests.bench.web_settings`` (the project's URLs plus a trivial view) and
measures each page with wrk from a second process, one after another: the
trivial view, the progress fragment (HX-Request), a generation page, the list,
the library and the spend page, and the trivial view again; then, under a second
gunicorn with PAGE_BODY_CACHE=0 and LIVE_ROW_CACHE=0, the rows "(not cached)": the
cost of the first view or poll after the data changed. It prints
p50/p95/p99, requests per second, the p95 ratio to the trivial view (the mean of
its two runs) against the design's targets, and each page's query count.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``), PostgreSQL on 127.0.0.1:5432
(trust auth) and nothing else: the pages need no Redis or Celery. All traffic
stays on loopback. The figures are noisy on a shared machine: the load generator
and both workers share its cores with whatever else runs.
"""

import argparse
import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DATABASE = "studio_wbench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
# The session row the bench writes is signed with this key; gunicorn must share it.
SECRET_KEY = "bench-web-" + secrets.token_urlsafe(48)
STATIC_ROOT = tempfile.mkdtemp(prefix="bench-web-static-")

os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["DJANGO_SECRET_KEY"] = SECRET_KEY
os.environ["BENCH_STATIC_ROOT"] = STATIC_ROOT
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.bench.web_settings"
# Nothing here talks to Redis, but keep clear of the databases other runs use.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("CELERY_BROKER_URL", os.environ["REDIS_URL"])


def fresh_database():
    """The benchmark owns its database: drop and create it, so every run starts alike."""
    import psycopg

    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def seeded_database():
    """Whether an earlier run left a seeded ``studio_wbench`` (its last step writes reviews)."""
    import psycopg

    try:
        with psycopg.connect(DATABASE_URL) as conn:
            return bool(
                conn.execute("SELECT EXISTS (SELECT 1 FROM reviews_reviewstatus)").fetchone()[0]
            )
    except psycopg.Error:
        return False


def bench_users():
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    return {False: users.get(username="bench-reviewer"), True: users.get(username="bench-admin")}


import django  # noqa: E402

CHANGED = "(after a change)"
UNCHANGED_CARD = "status card (unchanged: 304)"
# (name, path, HX-Request?, as admin?, target: "3x" a ratio of p95 to the trivial view's,
# "60ms" a p95 in milliseconds, or None)
PAGES = [
    ("trivial view", "/bench/trivial/", False, False, None),
    (UNCHANGED_CARD, "/generations/{in_flight}/", True, False, "3x"),
    ("generation page", "/generations/{finished}/", False, False, "3x"),
    ("list", "/generations/", False, False, "3x"),
    ("library", "/library/", False, False, "3x"),
    ("spend page (this month)", "/credits/", False, True, "5x"),
    ("spend page (last 365 days)", "/credits/?start={year_ago}&end={today}", False, True, "5x"),
    ("trivial view (again)", "/bench/trivial/", False, False, None),
    # Served by a gunicorn that bumps the data version before every request.
    (f"status card {CHANGED}", "/generations/{in_flight}/", True, False, "5x"),
    (f"generation page {CHANGED}", "/generations/{finished}/", False, False, "60ms"),
    (f"list {CHANGED}", "/generations/", False, False, "60ms"),
    (f"library {CHANGED}", "/library/", False, False, "60ms"),
    (f"spend page (this month) {CHANGED}", "/credits/", False, True, None),
]
MIN_CARD_RPS = 1000

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per page")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database an earlier run seeded instead of seeding it again",
    )
    parser.add_argument(
        "--pages",
        default="",
        help="only the pages whose names contain one of these (comma-separated)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")

    if args.reuse and seeded_database():
        django.setup()
        users = bench_users()
        print("reusing the seeded database", DATABASE, flush=True)
    else:
        fresh_database()
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        users = seed(args.generations, args.entries)
        print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
    wanted = [word.strip() for word in args.pages.split(",") if word.strip()]
    if wanted:
        PAGES[:] = [
            p for p in PAGES if p[0].startswith("trivial") or any(w in p[0] for w in wanted)
        ]
    targets = pick_targets()
    cookies = {admin: session_cookie(user) for admin, user in users.items()}
    queries = count_queries(users, targets)
    collect_static()
    results = {}
    for changed in (False, True):
        pages = [page for page in PAGES if (CHANGED in page[0]) == changed]
        with gunicorn(args.workers, BENCH_BUMP_EVERY_REQUEST=str(int(changed))) as port:
            for name, path, htmx, admin, _target in pages:
                url = f"http://127.0.0.1:{port}{fill(path, targets, keep_random=True)}"
                headers = {"Cookie": cookies[admin]}
                if htmx:
                    headers["HX-Request"] = "true"
                answer = check(f"http://127.0.0.1:{port}{fill(path, targets)}", headers, name)
                if name == UNCHANGED_CARD:
                    headers["If-None-Match"] = answer.getheader("ETag")
                    check(url, headers, name, expect=304)
                wrk(url, headers, 2, args.connections)  # warm up: caches, connections
                results[name] = wrk(url, headers, args.duration, args.connections)
                print(f"  measured {name}", flush=True)
    shutil.rmtree(STATIC_ROOT, ignore_errors=True)
    report(results, queries, args)


# --- seed --------------------------------------------------------------------------------


def seed(n_generations, n_entries):
    """Seed with bench_spend's COPY seed, then mix the states and add assets and reviews.

    Returns the users to request pages as: {False: a reviewer, True: an admin}.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from credits.management.commands.bench_spend import Command as SpendBench
    from credits.management.commands.bench_spend import copy_rows

    spend_bench = SpendBench()
    admin = spend_bench.cast(25)
    reviewer, _ = get_user_model().objects.get_or_create(username="bench-reviewer")
    reviewer.groups.add(Group.objects.get(name="Reviewers"))
    members = Group.objects.get(name="Members")
    for user in get_user_model().objects.filter(username__regex=r"^bench\d+$"):
        user.groups.add(members)
    # Finished and failed generations, their conversions and 1M ledger entries, rollups.
    spend_bench.seed(n_generations, n_entries, 25)

    with connection.cursor() as cursor:
        # bench_spend seeds every generation as a text one; TRELLIS.2 takes only images.
        cursor.execute(
            "UPDATE generations_generation SET mode = 'image' WHERE provider = 'trellis2'"
        )
        # 7% of the generations are not final yet, or need attention, or were canceled.
        # Their ledger entries stay as seeded, so the rollups still equal the ledger.
        cursor.execute(
            """
            UPDATE generations_generation SET
                upstream_done_at = CASE WHEN state = 'finished'
                    THEN finished_at - interval '10 seconds' END,
                state = CASE id % 100
                    WHEN 0 THEN 'queued' WHEN 1 THEN 'queued'
                    WHEN 2 THEN 'pending'
                    WHEN 3 THEN 'in_progress' WHEN 4 THEN 'in_progress'
                    WHEN 5 THEN 'needs_attention'
                    WHEN 6 THEN 'canceled'
                    ELSE state END
            """
        )
        cursor.execute(
            """
            UPDATE generations_generation SET
                finished_at = NULL, upstream_done_at = NULL,
                submitted_at = CASE WHEN state = 'queued' THEN NULL
                    ELSE now() - interval '60 seconds' END,
                progress = CASE state WHEN 'in_progress' THEN 40 ELSE 0 END,
                due_at = CASE WHEN state IN ('queued', 'pending', 'in_progress')
                    THEN now() + interval '1 day' END,
                attention_reason = CASE WHEN state = 'needs_attention'
                    THEN 'benchmark' ELSE '' END
            WHERE state NOT IN ('finished', 'failed')
            """
        )
        cursor.execute(
            "SELECT id, owner_id, finished_at FROM generations_generation "
            "WHERE state = 'finished' ORDER BY id"
        )
        finished = cursor.fetchall()
        pg = cursor.cursor  # psycopg's own cursor, for COPY

        def assets():
            for pk, _owner, done in finished:
                yield (pk, "model", f"assets/bench-{pk}.glb", "glb", "model.glb", 2_000_000, done)
                yield (pk, "thumbnail", f"assets/bench-{pk}.png", "png", "thumb.png", 40_000, done)

        copy_rows(
            pg,
            "generations_asset",
            ((*row[:6], "0" * 64, "{}", row[6]) for row in assets()),
            [
                "generation_id",
                "role",
                "file",
                "format",
                "original_name",
                "bytes",
                "sha256",
                "facts",
                "created_at",
            ],
        )
        # 70% decided (6 in 7 of those approved), 30% awaiting review.
        decided = [(pk, done) for pk, _owner, done in finished if pk % 10 < 7]
        copy_rows(
            pg,
            "reviews_review",
            (
                (pk, reviewer.pk, "approved" if pk % 10 < 6 else "rejected", "", done)
                for pk, done in decided
            ),
            ["generation_id", "reviewer_id", "decision", "comment", "created_at"],
        )
        cursor.execute(
            "INSERT INTO reviews_reviewstatus (generation_id, root_id, state, review_id, "
            "decided_at) SELECT generation_id, generation_id, decision, id, created_at "
            "FROM reviews_review"
        )
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT state, COUNT(*) FROM generations_generation GROUP BY 1 ORDER BY 1")
        print("generations by state:", dict(cursor.fetchall()))
        for table in ("generations_asset", "reviews_review", "generations_ledgerentry"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            print(f"{table}: {cursor.fetchone()[0]} rows")
    spend_bench.check_rollups()
    return {False: reviewer, True: admin}


def pick_targets():
    from django.utils import timezone

    from generations.models import Conversion, Generation, State

    today = timezone.localdate()
    return {
        # A generating one: its card keeps polling (a final one answers 286 and stops).
        "in_flight": Generation.objects.filter(state=State.IN_PROGRESS).order_by("-id")[0].pk,
        # A finished one with assets, a decision and conversions: the heaviest page.
        "finished": Conversion.objects.filter(generation__state=State.FINISHED)
        .order_by("-generation_id")[0]
        .generation_id,
        "today": today.isoformat(),
        "year_ago": (today.replace(year=today.year - 1)).isoformat(),
    }


def fill(path, targets, keep_random=False):
    """The path with its targets; ``{random:N}`` kept for wrk, or made page 7 for a check."""
    match = re.search(r"\{random:\d+\}", path)
    if match:
        path = path.replace(match.group(0), "RANDOM")
    path = path.format(**targets)
    if match:
        path = path.replace("RANDOM", match.group(0) if keep_random else "7")
    return path


def session_cookie(user):
    """A logged-in session row for ``user``, as the Cookie header a browser would send: the
    session and the CSRF cookie the login page gave it."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    from django.utils.crypto import get_random_string

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    csrf = get_random_string(CSRF_SECRET_LENGTH, CSRF_ALLOWED_CHARS)
    return (
        f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={csrf}"
    )


def count_queries(users, targets):
    """Each page's query count, through the test client on the seeded database."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from studio_dashboard import dataversion

    clients = {}
    for admin, user in users.items():
        clients[admin] = Client(HTTP_HOST="127.0.0.1")
        clients[admin].force_login(user)
    counts = {}
    for name, path, htmx, admin, _target in PAGES:
        headers = {"HX-Request": "true"} if htmx else {}
        # Warm the caches (the session, the fragments); the unchanged card sends its ETag.
        warm = clients[admin].get(fill(path, targets), headers=headers)
        if name == UNCHANGED_CARD:
            headers["If-None-Match"] = warm["ETag"]
        if CHANGED in name:
            dataversion.bump()
        with CaptureQueriesContext(connection) as captured:
            response = clients[admin].get(fill(path, targets), headers=headers)
        expected = 304 if name == UNCHANGED_CARD else 200
        assert response.status_code == expected, (name, response.status_code)
        # The session and user lookups of the login are in every count.
        counts[name] = len(captured.captured_queries)
    return counts


# --- serve and measure ---------------------------------------------------------------------


def production_env():
    env = dict(os.environ)
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        STUDIO_API_KEY="bench-key",
        EMAIL_HOST="smtp.example.invalid",
        # wrk speaks plain http; the secure cookie flags only matter to browsers.
        DJANGO_SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def collect_static():
    """DEBUG=0 serves static URLs from a manifest: collect into the bench's own directory."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=production_env(),
        check=True,
    )


class gunicorn:
    def __init__(self, workers, **env):
        self.workers = workers
        self.env = env

    def __enter__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "studio_dashboard.wsgi:application",
                "--workers",
                str(self.workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--chdir",
                str(ROOT),
            ],
            env={**production_env(), **self.env},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.port
            except OSError:
                if self.process.poll() is not None:
                    sys.exit("gunicorn exited")
                time.sleep(0.2)
        self.__exit__()
        sys.exit("gunicorn did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)


def check(url, headers, name, expect=200):
    """Each URL must answer as expected to the cookie: a redirect to the login page measures
    nothing. Returns the response (its headers)."""
    path = url.split(str(url.split("/")[2]), 1)[1]
    conn = http.client.HTTPConnection(url.split("/")[2], timeout=30)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != expect:
        sys.exit(f"{name}: {url} answered {response.status}, not {expect}")
    return response


def wrk(url, headers, duration, connections):
    lua = WRK_SCRIPT
    if "{random:" in url:
        # wrk asks this function for each request: the same path with a random number.
        url, pages = url.split("{random:")
        path = "/" + url.split("/", 3)[3]
        lua += (
            "request = function()\n"
            f'  return wrk.format(nil, "{path}" .. math.random(1, {int(pages.rstrip("}"))}))\n'
            "end\n"
        )
        url += "1"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    command += ["-s", script.name]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    requests, micros, p50, p95, p99, errors = map(int, line.split()[1:])
    if errors:
        sys.exit(f"{url}: {errors} errors or non-2xx/3xx answers\n{output}")
    return {
        "requests": requests,
        "rps": requests / (micros / 1e6),
        "p50": p50 / 1000,
        "p95": p95 / 1000,
        "p99": p99 / 1000,
    }


def report(results, queries, args):
    base = (results["trivial view"]["p95"] + results["trivial view (again)"]["p95"]) / 2
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s per page, gunicorn "
        f"{args.workers} sync workers, DJANGO_DEBUG=0, PostgreSQL, {os.cpu_count()} cores "
        f"(shared with wrk); baseline p95 = mean of the two trivial runs = {base:.2f} ms"
    )
    print(
        f"{'page':40s} {'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'req/s':>7s} "
        f"{'p95/trivial':>11s} {'target':>6s} {'queries':>7s}"
    )
    failed = []
    for name, _path, _htmx, _admin, target in PAGES:
        if name not in results:
            continue
        r = results[name]
        ratio = r["p95"] / base
        verdict = ""
        if target is not None:
            if target.endswith("ms"):
                ok = r["p95"] <= float(target[:-2])
            else:
                ok = ratio <= float(target[:-1])
            if name == UNCHANGED_CARD and r["rps"] < MIN_CARD_RPS:
                ok = False
            verdict = "ok" if ok else "MISSED"
            if not ok:
                failed.append(name)
        print(
            f"{name:40s} {r['p50']:7.2f} {r['p95']:7.2f} {r['p99']:7.2f} {r['rps']:7.0f} "
            f"{ratio:10.2f}x {target or '':>6s} {queries[name]:7d} {verdict}"
        )
    print("targets missed: " + (", ".join(failed) if failed else "none"))


if __name__ == "__main__":
    main()
