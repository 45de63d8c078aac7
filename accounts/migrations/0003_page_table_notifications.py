"""Triggers for the tables full pages read (studio_dashboard/liverows.py): at commit,
``NOTIFY studio_row_changes`` with ``table:*`` when rows of them are inserted,
updated or deleted, and the bare table name on a truncation. A page's kept answer
is tagged with each table its figures (``pagecache.figures_tables``) and the
generation page's version (``views._final_page_tables``) read. Generations get
only an insert trigger here: their updates and deletions are notified by row
(0002), which drops the pages kept with the whole table too. PostgreSQL only.
"""

from django.db import migrations

CHANNEL = "studio_row_changes"  # liverows.CHANNEL, frozen here as migrations must be

TABLES = [
    "credits_budget",
    "credits_pricetable",
    "generations_alert",
    "generations_asset",
    "generations_conversion",
    "generations_ledgerentry",
    "generations_walletsnapshot",
    "reviews_notification",
    "reviews_review",
    "reviews_tag",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    statements = [
        "CREATE OR REPLACE FUNCTION studio_notify_rows() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME || ':*'); RETURN NULL; END $$",
        'CREATE TRIGGER studio_rows_inserted AFTER INSERT ON "generations_generation" '
        "FOR EACH STATEMENT EXECUTE FUNCTION studio_notify_rows()",
    ]
    for table in TABLES:
        statements += [
            f'CREATE TRIGGER studio_rows_changed AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION studio_notify_rows()",
            f'CREATE TRIGGER studio_table_changes AFTER TRUNCATE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION studio_notify_table()",
        ]
    for statement in statements:
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute('DROP TRIGGER IF EXISTS studio_rows_inserted ON "generations_generation"')
    for table in TABLES:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS studio_rows_changed ON "{table}"')
        schema_editor.execute(f'DROP TRIGGER IF EXISTS studio_table_changes ON "{table}"')
    schema_editor.execute("DROP FUNCTION IF EXISTS studio_notify_rows()")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_row_change_notifications"),
        ("credits", "0005_filtered_most_expensive_indexes"),
        ("reviews", "0003_grant_audit_log_to_admins"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
