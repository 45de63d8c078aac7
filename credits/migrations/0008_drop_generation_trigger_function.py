"""Drop ``credits_generation_finished()``: the generations app's own triggers
(generations 0009) now call ``credits_count_finished`` instead.

Migrating back recreates it exactly as 0004 made it, for the triggers that
generations 0009 puts back.
"""

import importlib

from django.db import migrations

FUNCTION = "credits_generation_finished"


def _function_sql():
    made = importlib.import_module("credits.migrations.0004_roll_up_finished_generations")
    sql = made.FUNCTION_SQL
    start = sql.index(f"CREATE OR REPLACE FUNCTION {FUNCTION}()")
    return sql[start : sql.index("CREATE TRIGGER", start)]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_function_sql(), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0007_ledger_permissions_belong_to_credits"),
        ("generations", "0009_count_finished_generations_by_own_triggers"),
    ]

    operations = [migrations.RunPython(forward, backward)]
