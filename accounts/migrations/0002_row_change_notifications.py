"""Triggers that tell listening web processes which rows changed
(studio_dashboard/liverows.py): at commit, ``NOTIFY studio_row_changes`` with
``table:key`` for an updated or deleted session or generation, and the bare table
name for any change to the tables behind users and their permissions, and for a
truncation. PostgreSQL only; elsewhere nothing is kept, so nothing needs telling.
"""

from django.db import migrations

CHANNEL = "studio_row_changes"  # liverows.CHANNEL, frozen here as migrations must be

# (table, the column naming its row) for row-level notifications.
ROWS = [("generations_generation", "id"), ("accounts_session", "session_key")]
# Tables any change to which drops every kept row (inserting a user changes nothing kept).
TABLES = [
    ("auth_user", "UPDATE OR DELETE OR TRUNCATE"),
    ("auth_user_groups", "INSERT OR UPDATE OR DELETE OR TRUNCATE"),
    ("auth_user_user_permissions", "INSERT OR UPDATE OR DELETE OR TRUNCATE"),
    ("auth_group_permissions", "INSERT OR UPDATE OR DELETE OR TRUNCATE"),
    ("auth_permission", "UPDATE OR DELETE OR TRUNCATE"),
    ("django_content_type", "UPDATE OR DELETE OR TRUNCATE"),
]


def _row_function(table):
    return f"studio_notify_{table}"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    statements = [
        "CREATE OR REPLACE FUNCTION studio_notify_table() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
    ]
    for table, column in ROWS:
        statements += [
            f"CREATE OR REPLACE FUNCTION {_row_function(table)}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ':' || OLD.\"{column}\"); "
            "RETURN NULL; END $$",
            f'CREATE TRIGGER studio_row_changes AFTER UPDATE OR DELETE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION {_row_function(table)}()",
            f'CREATE TRIGGER studio_table_changes AFTER TRUNCATE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION studio_notify_table()",
        ]
    for table, events in TABLES:
        statements.append(
            f'CREATE TRIGGER studio_table_changes AFTER {events} ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION studio_notify_table()"
        )
    for statement in statements:
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _column in ROWS:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS studio_row_changes ON "{table}"')
        schema_editor.execute(f'DROP TRIGGER IF EXISTS studio_table_changes ON "{table}"')
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {_row_function(table)}()")
    for table, _events in TABLES:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS studio_table_changes ON "{table}"')
    schema_editor.execute("DROP FUNCTION IF EXISTS studio_notify_table()")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("generations", "0007_web_speed_indexes"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
