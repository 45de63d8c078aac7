"""Keep ``SpendRollup`` exactly equal to sums of the ledger.

``record(entry)`` is called by ``LedgerEntry.save`` right after the insert, in
the same transaction: either both the entry and its rollup rows are committed,
or neither is. One statement upserts all eight rows (four groups, by day and by
month), with an increment (not a read-modify-write), so concurrent inserts
cannot lose an addition. The same SQL runs on PostgreSQL and SQLite (both know
``ON CONFLICT ... DO UPDATE`` and ``excluded``).
"""

from django.db import connection
from django.utils import timezone

from .models import SpendRollup

Scope = SpendRollup.Scope
Grain = SpendRollup.Grain


def day_of(moment):
    """The calendar day (in the site's time zone, UTC) an entry is counted in."""
    return timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()


def buckets(moment):
    """[(grain, day)] an entry made at ``moment`` is counted in."""
    day = day_of(moment)
    return [(Grain.DAY, day), (Grain.MONTH, day.replace(day=1))]


def group_rows(user_id, provider, edition):
    """(key, scope, user_id, provider, edition) of the four groups an entry belongs to."""
    provider = provider or ""
    edition = edition or ""
    return [
        ("t", Scope.TEAM, None, "", ""),
        (f"u{user_id}", Scope.USER, user_id, "", ""),
        (f"p|{provider}|{edition}", Scope.PROVIDER, None, provider, edition),
        (f"u{user_id}|{provider}|{edition}", Scope.USER_PROVIDER, user_id, provider, edition),
    ]


def edition_of(entry):
    """The group's second key: a generation's edition; for an upstream conversion or
    finishing step, what it was (its kind, "remesh", or a conversion's format, "fbx"), so
    the spend review tells them apart under the one "convert" provider."""
    # The `_ledger` methods pass the generation or conversion object: read from memory.
    if entry.conversion_id is not None:
        job = entry.conversion
        return job.output_format if job.kind == "convert" else job.kind
    if entry.generation_id is None:
        return ""
    return entry.generation.edition or ""


def record(entry):
    table = SpendRollup._meta.db_table
    groups = group_rows(entry.user_id, entry.provider, edition_of(entry))
    params = []
    for grain, day in buckets(entry.created_at):
        for key, scope, user_id, provider, edition in groups:
            params += [grain, key, scope, day, entry.kind, user_id, provider, edition]
            params += [entry.amount, 1]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * (len(params) // 10))
    sql = (
        f"INSERT INTO {table} "
        f"(grain, key, scope, day, kind, user_id, provider, edition, amount, entries) "
        f"VALUES {values} "
        f"ON CONFLICT (grain, key, day, kind) DO UPDATE SET "
        f"amount = {table}.amount + excluded.amount, "
        f"entries = {table}.entries + excluded.entries"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


REBUILD_SQL = """
INSERT INTO credits_spendrollup
    (grain, key, scope, day, kind, user_id, provider, edition, amount, entries)
SELECT '{grain}', {key}, '{scope}', day, kind, {user}, {provider}, {edition},
       SUM(amount), COUNT(*)
FROM ({source}) AS entries
GROUP BY day, kind{group}
"""

# What is rolled up: every ledger entry, one row each, with ``{day}`` its day (or month).
SOURCE = """
    SELECT {day} AS day, e.kind, e.user_id, e.provider,
           COALESCE(
               CASE WHEN c.kind = 'convert' THEN c.output_format ELSE c.kind END,
               g.edition,
               ''
           ) AS edition,
           e.amount
    FROM generations_ledgerentry e
    LEFT JOIN generations_generation g ON g.id = e.generation_id
    LEFT JOIN generations_conversion c ON c.id = e.conversion_id
"""

DAY_SQL = {
    Grain.DAY: "CAST(e.{moment} AT TIME ZONE 'UTC' AS date)",
    Grain.MONTH: "CAST(date_trunc('month', e.{moment} AT TIME ZONE 'UTC') AS date)",
}


def rebuild_postgresql(cursor):
    """Recompute every rollup from the ledger (PostgreSQL; the benchmark's seeding).

    Produces the same rows ``record`` would have built one row at a time (the site's
    time zone is UTC).
    """
    cursor.execute("DELETE FROM credits_spendrollup")
    scopes = [
        ("'t'", Scope.TEAM, "NULL", "''", "''", ""),
        ("'u' || user_id", Scope.USER, "user_id", "''", "''", ", user_id"),
        (
            "'p|' || provider || '|' || edition",
            Scope.PROVIDER,
            "NULL",
            "provider",
            "edition",
            ", provider, edition",
        ),
        (
            "'u' || user_id || '|' || provider || '|' || edition",
            Scope.USER_PROVIDER,
            "user_id",
            "provider",
            "edition",
            ", user_id, provider, edition",
        ),
    ]
    for grain, day in DAY_SQL.items():
        for key, scope, user, provider, edition, group in scopes:
            cursor.execute(
                REBUILD_SQL.format(
                    source=SOURCE.format(day=day.format(moment="created_at")),
                    grain=grain.value,
                    key=key,
                    scope=scope.value,
                    user=user,
                    provider=provider,
                    edition=edition,
                    group=group,
                )
            )
