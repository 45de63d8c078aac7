"""This app's own triggers tell the credits app when a generation enters or leaves FINISHED.

The spend review's count of finished generations is kept in the credits app's
rollups (credits 0004) by row triggers on the generations table. Those triggers
were installed by the credits app, on a table it does not own. They are
replaced here, in one transaction (no change of state can slip between), by
triggers of this app that call the credits app's ``credits_count_finished``
with plain values: generations calls credits, as it does to hold and charge.
Credits 0008 then drops its old trigger function.

PostgreSQL only; on SQLite ``credits.spend`` counts the generations table.
"""

from django.db import migrations

CREDITS_TRIGGERS = ["insert", "update", "delete"]

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION generations_count_finished() RETURNS trigger AS $$
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
"""

# Which rows each trigger fires for: only a change into, out of or within FINISHED.
WHEN = {
    "insert": "AFTER INSERT ON generations_generation FOR EACH ROW WHEN (NEW.state = 'finished')",
    "update": """AFTER UPDATE ON generations_generation FOR EACH ROW
    WHEN ((OLD.state = 'finished' OR NEW.state = 'finished')
          AND (OLD.state, OLD.finished_at, OLD.owner_id, OLD.provider, OLD.edition)
              IS DISTINCT FROM
              (NEW.state, NEW.finished_at, NEW.owner_id, NEW.provider, NEW.edition))""",
    "delete": "AFTER DELETE ON generations_generation FOR EACH ROW WHEN (OLD.state = 'finished')",
}


def _swap(schema_editor, old_prefix, new_prefix, function):
    for event in CREDITS_TRIGGERS:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {old_prefix}_{event} ON generations_generation"
        )
    for event in CREDITS_TRIGGERS:
        schema_editor.execute(
            f"CREATE TRIGGER {new_prefix}_{event} {WHEN[event]} EXECUTE FUNCTION {function}()"
        )


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION_SQL, params=None)
        _swap(
            schema_editor,
            "credits_generation_finished",
            "generations_finished",
            "generations_count_finished",
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _swap(
            schema_editor,
            "generations_finished",
            "credits_generation_finished",
            "credits_generation_finished",
        )
        schema_editor.execute("DROP FUNCTION IF EXISTS generations_count_finished()")


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0008_ledger_and_wallet_snapshots_moved_to_credits"),
        # credits_count_finished, and the triggers replaced here.
        ("credits", "0004_roll_up_finished_generations"),
    ]

    operations = [migrations.RunPython(forward, backward)]
