"""Back to Django's own sessions (django.contrib.sessions, cached_db): drop the sessions
table this app kept (everyone signs in once more after the upgrade), and the NOTIFY
triggers and functions that earlier versions of 0002 and 0003 installed on PostgreSQL.
Every statement is IF EXISTS, so a database that never had them migrates the same way.
"""

from django.db import migrations

# (table, trigger) pairs the old 0002 and 0003 created.
TRIGGERS = [
    ("generations_generation", "studio_row_changes"),
    ("generations_generation", "studio_table_changes"),
    ("generations_generation", "studio_rows_inserted"),
    ("accounts_session", "studio_row_changes"),
    ("accounts_session", "studio_table_changes"),
    *[
        (table, "studio_table_changes")
        for table in (
            "auth_user",
            "auth_user_groups",
            "auth_user_user_permissions",
            "auth_group_permissions",
            "auth_permission",
            "django_content_type",
        )
    ],
    *[
        (table, trigger)
        for table in (
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
        )
        for trigger in ("studio_rows_changed", "studio_table_changes")
    ],
]
FUNCTIONS = [
    "studio_notify_generations_generation",
    "studio_notify_accounts_session",
    "studio_notify_table",
    "studio_notify_rows",
]


def drop_notifications(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # the triggers were PostgreSQL's only
    existing = set(schema_editor.connection.introspection.table_names())
    for table, trigger in TRIGGERS:
        if table in existing:
            schema_editor.execute(f'DROP TRIGGER IF EXISTS {trigger} ON "{table}"')
    for function in FUNCTIONS:
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_page_table_notifications")]

    operations = [
        migrations.RunPython(drop_notifications, migrations.RunPython.noop, elidable=False),
        migrations.DeleteModel(name="Session"),
    ]
