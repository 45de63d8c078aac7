"""Drop the rollups' counts of finished generations and the function that kept them.

The spend review counts finished generations in the generations table itself, on
PostgreSQL and SQLite alike (generations 0012 removed the triggers that called
``credits_count_finished``). Migrating back recreates the function; the counts of
generations that finished meanwhile are not rebuilt.
"""

import importlib

from django.db import migrations


def forward(apps, schema_editor):
    apps.get_model("credits", "SpendRollup").objects.filter(kind="finished").delete()
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS credits_count_finished(integer, text, text, timestamptz, integer)"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        made = importlib.import_module("credits.migrations.0004_roll_up_finished_generations")
        sql = made.FUNCTION_SQL
        start = sql.index("CREATE OR REPLACE FUNCTION credits_count_finished(")
        end = sql.index("CREATE OR REPLACE FUNCTION credits_generation_finished()")
        schema_editor.execute(sql[start:end], params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0009_drift_attribution_and_narrowing"),
        ("generations", "0012_stop_counting_finished_generations_in_rollups"),
    ]

    operations = [migrations.RunPython(forward, backward)]
