"""Stop counting finished generations in the credits app's rollups by trigger.

The triggers of 0009 ran on PostgreSQL only, so the spend review read the count from
the rollups there and counted this table on SQLite: two code paths for one page. The
review now counts this table in both (an index-only scan of ``generation_final_idx``:
1 ms for a month, 18 ms for a year of 84k finished generations, on a cache miss only,
since the page is a cached fragment). Credits 0010 then deletes the rows and function.
"""

import importlib

from django.db import migrations

EVENTS = ["insert", "update", "delete"]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for event in EVENTS:
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS generations_finished_{event} ON generations_generation"
            )
        schema_editor.execute("DROP FUNCTION IF EXISTS generations_count_finished()")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        made = importlib.import_module(
            "generations.migrations.0009_count_finished_generations_by_own_triggers"
        )
        schema_editor.execute(made.FUNCTION_SQL, params=None)
        for event in EVENTS:
            schema_editor.execute(
                f"CREATE TRIGGER generations_finished_{event} {made.WHEN[event]} "
                "EXECUTE FUNCTION generations_count_finished()"
            )


class Migration(migrations.Migration):
    dependencies = [("generations", "0011_batches")]

    operations = [migrations.RunPython(forward, backward)]
