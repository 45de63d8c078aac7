"""Benchmark the spend review against a trivial view, on a big ledger in PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio_bench \\
        .venv/bin/python manage.py bench_spend

Seeds (with COPY) 100k generations over the last year and 1M ledger entries
(hold, release and charge of every generation, a refund for the failed ones,
and convert-tool conversions making up the rest), builds the rollups from the
ledger and the finished generations in SQL and checks they equal the ledger's
sums and the count, then requests the spend page and a trivial view alternately
through Django's test client (the whole middleware stack, in one process, same
database) and prints p50/p95 of each and
their ratio. The target (the design): spend page p95 <= 5x the trivial view's.

Everything in the ledger, generation, conversion and rollup tables of the
target database is replaced: never point it at a database you care about.
"""

import io
import random
import statistics
import time
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render
from django.test import Client, override_settings
from django.urls import include, path, reverse
from django.utils import timezone

from credits.rollups import rebuild_postgresql
from generations.catalogue import PROVIDERS


def trivial(request):
    """The baseline: a view that does nothing (the request still crosses every middleware)."""
    return HttpResponse("ok")


@login_required
def trivial_page(request):
    """A second baseline: an empty page in the site's layout (header, banners, context
    processors of every app), which the spend page pays for too."""
    return render(request, "credits/bench_empty.html")


# The bench's URLconf: the project's URLs plus the trivial views.
urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("bench/trivial-page/", trivial_page, name="bench-trivial-page"),
    path("", include("studio_dashboard.urls")),
]

# (provider, edition, price) choices the seed draws from.
CHOICES = [
    ("hunyuan_pro", "3.0", 60),
    ("hunyuan_pro", "3.1", 80),
    ("hunyuan_rapid", "", 35),
    ("hunyuan_rapid", "", 55),
    ("trellis2", "", 30),
    ("tripo_v3", "3.0", 60),
    ("tripo_v3", "3.1", 100),
    ("tripo_p1", "", 80),
]
CONVERT_FORMATS = ["fbx", "usdz", "fbx_zip"]


def columns(cursor, table):
    cursor.execute(
        "SELECT column_name, is_nullable, data_type FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    return cursor.fetchall()


def filler(data_type):
    """A value for a NOT NULL column the seed does not care about (fields other apps add)."""
    if data_type in ("integer", "smallint", "bigint", "numeric", "double precision"):
        return "0"
    if data_type == "boolean":
        return "f"
    if data_type == "jsonb":
        return "{}"
    if data_type.startswith("timestamp"):
        return timezone.now().isoformat()
    if data_type == "date":
        return timezone.localdate().isoformat()
    if data_type == "uuid":
        return None  # replaced per row
    return ""


def copy_rows(cursor, table, rows, given):
    """COPY ``rows`` (tuples in the order of ``given``) into ``table``, filling other columns."""
    described = [c for c in columns(cursor, table) if c[0] != "id"]
    names = [name for name, _, _ in described]
    extra = [(name, nullable, kind) for name, nullable, kind in described if name not in given]
    with cursor.copy(f"COPY {table} ({', '.join(given + [e[0] for e in extra])}) FROM STDIN") as cp:
        for row in rows:
            fill = []
            for _name, nullable, kind in extra:
                if nullable == "YES":
                    fill.append(None)
                elif kind == "uuid":
                    fill.append(str(uuid.uuid4()))
                else:
                    fill.append(filler(kind))
            cp.write_row(list(row) + fill)
    return names


class Command(BaseCommand):
    help = "Seed 100k generations and 1M ledger entries, then time the spend page (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--generations", type=int, default=100_000)
        parser.add_argument("--entries", type=int, default=1_000_000)
        parser.add_argument("--requests", type=int, default=300)
        parser.add_argument("--users", type=int, default=25)
        parser.add_argument(
            "--reuse", action="store_true", help="keep the seeded data of an earlier run"
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" or not connection.settings_dict["NAME"].startswith(
            "studio_bench"
        ):
            raise CommandError(
                "The benchmark replaces the ledger: set DATABASE_URL to a PostgreSQL database "
                "named studio_bench*."
            )
        call_command("migrate", verbosity=0)
        admin = self.cast(options["users"])
        if not options["reuse"]:
            self.seed(options["generations"], options["entries"], options["users"])
        self.check_rollups()
        self.measure(admin, options["requests"])

    # --- seed ---------------------------------------------------------------------------
    def cast(self, count):
        User = get_user_model()
        for i in range(count):
            User.objects.get_or_create(username=f"bench{i:02d}")
        admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True})
        admins = Group.objects.get(name="Admins")
        admin.groups.add(admins)
        return admin

    def seed(self, n_generations, n_entries, n_users):
        started = time.perf_counter()
        rng = random.Random(6)
        User = get_user_model()
        users = list(
            User.objects.filter(username__startswith="bench")
            .exclude(username="bench-admin")
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        year = 365 * 24 * 3600
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE credits_spendrollup, generations_ledgerentry, generations_conversion, "
                "generations_asset, generations_referenceimage, generations_generation CASCADE"
            )
            pg = cursor.cursor  # psycopg's own cursor, for COPY

            generations = []
            for _ in range(n_generations):
                provider, edition, price = rng.choice(CHOICES)
                created = now - timedelta(seconds=rng.randrange(year))
                failed = rng.random() < 0.1
                generations.append((rng.choice(users), provider, edition, price, created, failed))
            gen_cols = [
                "owner_id",
                "provider",
                "edition",
                "mode",
                "prompt",
                "options",
                "form_token",
                "state",
                "progress",
                "credit_estimate",
                "price_breakdown",
                "created_at",
                "submitted_at",
                "finished_at",
                "state_changed_at",
            ]
            # The finished counts are rebuilt with the rest below: counting each COPYed
            # row in the triggers (credits/migrations/0004) would take minutes for nothing.
            cursor.execute("ALTER TABLE generations_generation DISABLE TRIGGER USER")
            copy_rows(
                pg,
                "generations_generation",
                (
                    (
                        owner,
                        provider,
                        edition,
                        "text",
                        "a benchmark chair",
                        "{}",
                        str(uuid.uuid4()),
                        "failed" if failed else "finished",
                        100,
                        price,
                        f'[["Base", {price}]]',
                        created,
                        created + timedelta(seconds=5),
                        created + timedelta(seconds=150),
                        created + timedelta(seconds=150),
                    )
                    for owner, provider, edition, price, created, failed in generations
                ),
                gen_cols,
            )
            cursor.execute("ALTER TABLE generations_generation ENABLE TRIGGER USER")
            pg.execute("SELECT id FROM generations_generation ORDER BY id")
            ids = [row[0] for row in pg.fetchall()]

            per_generation = sum(4 if g[5] else 3 for g in generations)
            finished = [i for i, g in enumerate(generations) if not g[5]]
            # One conversion per format and generation (a unique constraint).
            n_conversions = min(
                max(0, (n_entries - per_generation) // 3), len(finished) * len(CONVERT_FORMATS)
            )
            conversions = []
            for c in range(n_conversions):
                index = finished[c % len(finished)]
                fmt = CONVERT_FORMATS[c // len(finished)]
                created = generations[index][4] + timedelta(minutes=5)
                conversions.append((index, fmt, created))
            copy_rows(
                pg,
                "generations_conversion",
                (
                    (
                        ids[index],
                        generations[index][0],
                        fmt,
                        "upstream",
                        "finished",
                        100,
                        10,
                        created,
                        created + timedelta(seconds=60),
                    )
                    for index, fmt, created in conversions
                ),
                [
                    "generation_id",
                    "requested_by_id",
                    "output_format",
                    "via",
                    "state",
                    "progress",
                    "credit_estimate",
                    "created_at",
                    "finished_at",
                ],
            )
            pg.execute("SELECT id FROM generations_conversion ORDER BY id")
            conversion_ids = [row[0] for row in pg.fetchall()]

            def entries():
                for pk, (owner, provider, _e, price, created, failed) in zip(
                    ids, generations, strict=True
                ):
                    yield ("hold", owner, pk, None, -price, provider, "held", created)
                    submitted = created + timedelta(seconds=5)
                    yield ("release", owner, pk, None, price, provider, "charged", submitted)
                    yield ("charge", owner, pk, None, -price, provider, "task", submitted)
                    if failed:
                        done = created + timedelta(seconds=150)
                        yield ("refund", owner, pk, None, price, provider, "FAILED", done)
                for pk, (index, _fmt, created) in zip(conversion_ids, conversions, strict=True):
                    owner = generations[index][0]
                    yield ("hold", owner, None, pk, -10, "convert", "held", created)
                    later = created + timedelta(seconds=3)
                    yield ("release", owner, None, pk, 10, "convert", "charged", later)
                    yield ("charge", owner, None, pk, -10, "convert", "task", later)

            copy_rows(
                pg,
                "generations_ledgerentry",
                entries(),
                [
                    "kind",
                    "user_id",
                    "generation_id",
                    "conversion_id",
                    "amount",
                    "provider",
                    "note",
                    "created_at",
                ],
            )
            rebuild_postgresql(cursor)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM generations_ledgerentry")
            total_entries = cursor.fetchone()[0]
            cursor.execute("SELECT COUNT(*) FROM generations_generation")
            total_generations = cursor.fetchone()[0]
            cursor.execute("SELECT COUNT(*) FROM credits_spendrollup")
            total_rollups = cursor.fetchone()[0]
        # VACUUM cannot run inside a transaction block; Django runs in autocommit here.
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM ANALYZE generations_ledgerentry, generations_generation, "
                "generations_conversion, credits_spendrollup"
            )
        self.stdout.write(
            f"seeded {total_generations} generations, {total_entries} ledger entries, "
            f"{total_rollups} rollup rows in {time.perf_counter() - started:.1f} s"
        )

    def check_rollups(self):
        """The day and the month rollups must each equal the ledger's sums by kind."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT kind, SUM(amount), COUNT(*) FROM generations_ledgerentry GROUP BY kind "
                "ORDER BY kind"
            )
            ledger = cursor.fetchall()
            for grain in ("d", "m"):
                cursor.execute(
                    "SELECT kind, SUM(amount), SUM(entries) FROM credits_spendrollup "
                    "WHERE scope = 't' AND grain = %s GROUP BY kind ORDER BY kind",
                    [grain],
                )
                rolled = cursor.fetchall()
                if [tuple(map(str, r)) for r in ledger] != [tuple(map(str, r)) for r in rolled]:
                    raise CommandError(f"{grain} rollups differ from the ledger: {rolled}")
            cursor.execute(
                "SELECT COUNT(*) FROM generations_generation "
                "WHERE state = 'finished' AND finished_at IS NOT NULL"
            )
            finished = cursor.fetchone()[0]
        self.stdout.write(f"rollups equal the ledger's sums: {ledger}; {finished} finished")

    # --- measure ------------------------------------------------------------------------
    def measure(self, admin, n):
        client = Client(HTTP_HOST="localhost")
        client.force_login(admin)
        today = timezone.localdate()
        pages = {
            "trivial view": (reverse("bench-trivial", urlconf=__name__), {}),
            "trivial page (base.html)": (reverse("bench-trivial-page", urlconf=__name__), {}),
            "spend page (this month)": (reverse("credits:spend"), {}),
            "spend page (last 365 days)": (
                reverse("credits:spend"),
                {"start": (today - timedelta(days=365)).isoformat(), "end": today.isoformat()},
            ),
        }
        timings = {name: [] for name in pages}
        with override_settings(ROOT_URLCONF=__name__, DEBUG=False):
            for name, (url, query) in pages.items():  # warm up caches and connections
                for _ in range(10):
                    assert client.get(url, query).status_code == 200, name
            for _ in range(n):
                for name, (url, query) in pages.items():
                    started = time.perf_counter()
                    response = client.get(url, query)
                    timings[name].append(time.perf_counter() - started)
                    assert response.status_code == 200
            queries = self.count_queries(client, pages)
        out = io.StringIO()
        base = statistics.quantiles(timings["trivial view"], n=100)
        out.write(f"{n} requests each, Django test client, PostgreSQL\n")
        for name, samples in timings.items():
            q = statistics.quantiles(samples, n=100)
            p50, p95 = q[49] * 1000, q[94] * 1000
            out.write(
                f"{name:27s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  "
                f"p95 ratio {q[94] / base[94]:5.2f}x  queries {queries[name]}\n"
            )
        self.stdout.write(out.getvalue())

    def count_queries(self, client, pages):
        from django.db import reset_queries
        from django.test.utils import CaptureQueriesContext

        reset_queries()
        counts = {}
        for name, (url, query) in pages.items():
            with CaptureQueriesContext(connection) as captured:
                client.get(url, query)
            counts[name] = len(captured.captured_queries)
        return counts


# A provider key the seed uses must exist in the catalogue (a renamed key fails loudly).
assert all(provider in PROVIDERS for provider, _, _ in CHOICES)
