"""The index on (state, finished_at) was made by credits 0002 on this app's table, as
``credits_generation_final_idx``. This app now declares it itself (``Generation.Meta``)
as ``generation_final_idx``: renamed where it exists (PostgreSQL), made anew elsewhere.
"""

from django.db import migrations, models

OLD, NEW = "credits_generation_final_idx", "generation_final_idx"
COLUMNS = "generations_generation (state, finished_at)"


def _rename(schema_editor, old, new):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX IF EXISTS {old} RENAME TO {new}")
    else:
        schema_editor.execute(f"DROP INDEX IF EXISTS {old}")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {new} ON {COLUMNS}")


def take_over(apps, schema_editor):
    _rename(schema_editor, OLD, NEW)


def give_back(apps, schema_editor):
    _rename(schema_editor, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0009_count_finished_generations_by_own_triggers"),
        ("credits", "0002_ledger_append_only_and_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="generation",
                    index=models.Index(fields=["state", "finished_at"], name=NEW),
                )
            ],
            database_operations=[migrations.RunPython(take_over, give_back)],
        )
    ]
