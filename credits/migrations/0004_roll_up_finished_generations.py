"""Count finished generations in the rollups, kept exact by triggers (PostgreSQL).

The spend review divides credits paid by the generations that finished in the
range. Counting them in ``generations_generation`` on each request reads every
finished row of the range (84k index entries for a year of the benchmark,
~20 ms). Instead the rollups carry them as kind ``finished`` (``entries`` the
count, ``amount`` 0), in the same eight rows per generation as a ledger entry:
its day and month of ``finished_at`` (UTC, like the ledger's rollups), by team,
owner, provider and edition, owner with provider and edition.

Generations enter and leave FINISHED through conditional ``UPDATE``s in several
modules (and raw SQL in benchmarks), so the count is kept by row triggers on
the generations table, in the writing transaction, rather than by each caller.
A trigger only does work when a row enters, leaves or moves within FINISHED.
Increments are upserts, as in ``credits.rollups.record``; decrements are plain
updates of rows that must exist (the rollups' ``entries >= 0`` check refuses a
negative insert), taken in the same order as the upsert's so that two writers
lock the shared rows in one order.

On SQLite (local development) there are no triggers and ``credits.spend``
counts the generations table instead.
"""

from django.db import migrations

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION credits_count_finished(
    owner integer, prov text, ed text, moment timestamptz, delta integer
) RETURNS void AS $$
DECLARE
    target record;
BEGIN
    prov := COALESCE(prov, '');
    ed := COALESCE(ed, '');
    FOR target IN
        SELECT g.grain, g.day, s.key, s.scope, s.user_id, s.provider, s.edition
        FROM (VALUES
                (1, 'd', CAST(moment AT TIME ZONE 'UTC' AS date)),
                (2, 'm', CAST(date_trunc('month', moment AT TIME ZONE 'UTC') AS date))
             ) AS g(n, grain, day),
             (VALUES
                (1, 't', 't', NULL::integer, '', ''),
                (2, 'u' || owner, 'u', owner, '', ''),
                (3, 'p|' || prov || '|' || ed, 'p', NULL, prov, ed),
                (4, 'u' || owner || '|' || prov || '|' || ed, 'up', owner, prov, ed)
             ) AS s(n, key, scope, user_id, provider, edition)
        ORDER BY g.n, s.n
    LOOP
        IF delta > 0 THEN
            INSERT INTO credits_spendrollup
                (grain, key, scope, day, kind, user_id, provider, edition, amount, entries)
            VALUES (target.grain, target.key, target.scope, target.day, 'finished',
                    target.user_id, target.provider, target.edition, 0, delta)
            ON CONFLICT (grain, key, day, kind) DO UPDATE
                SET entries = credits_spendrollup.entries + excluded.entries;
        ELSE
            UPDATE credits_spendrollup SET entries = entries + delta
            WHERE grain = target.grain AND key = target.key AND day = target.day
                AND kind = 'finished';
        END IF;
    END LOOP;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION credits_generation_finished() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state = 'finished'
            AND OLD.finished_at IS NOT NULL THEN
        PERFORM credits_count_finished(
            OLD.owner_id, OLD.provider, OLD.edition, OLD.finished_at, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.state = 'finished'
            AND NEW.finished_at IS NOT NULL THEN
        PERFORM credits_count_finished(
            NEW.owner_id, NEW.provider, NEW.edition, NEW.finished_at, 1);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credits_generation_finished_insert
    AFTER INSERT ON generations_generation FOR EACH ROW
    WHEN (NEW.state = 'finished')
    EXECUTE FUNCTION credits_generation_finished();
CREATE TRIGGER credits_generation_finished_update
    AFTER UPDATE ON generations_generation FOR EACH ROW
    WHEN ((OLD.state = 'finished' OR NEW.state = 'finished')
          AND (OLD.state, OLD.finished_at, OLD.owner_id, OLD.provider, OLD.edition)
              IS DISTINCT FROM
              (NEW.state, NEW.finished_at, NEW.owner_id, NEW.provider, NEW.edition))
    EXECUTE FUNCTION credits_generation_finished();
CREATE TRIGGER credits_generation_finished_delete
    AFTER DELETE ON generations_generation FOR EACH ROW
    WHEN (OLD.state = 'finished')
    EXECUTE FUNCTION credits_generation_finished();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS credits_generation_finished_insert ON generations_generation;
DROP TRIGGER IF EXISTS credits_generation_finished_update ON generations_generation;
DROP TRIGGER IF EXISTS credits_generation_finished_delete ON generations_generation;
DROP FUNCTION IF EXISTS credits_generation_finished();
DROP FUNCTION IF EXISTS credits_count_finished(integer, text, text, timestamptz, integer);
DELETE FROM credits_spendrollup WHERE kind = 'finished';
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The counts of generations that finished before the triggers existed were
        # backfilled here; credits 0010 deletes every such count, so a database migrating
        # through now skips the backfill.
        schema_editor.execute(FUNCTION_SQL, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0003_grant_admins_credit_permissions"),
        ("generations", "0007_web_speed_indexes"),
    ]

    operations = [migrations.RunPython(forward, backward)]
