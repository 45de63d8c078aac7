from django.db import migrations

from accounts.roles import grant_lockout_permissions


def forward(apps, schema_editor):
    grant_lockout_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_remove_session_and_row_change_notifications"),
        ("axes", "0010_accessattemptexpiration"),
        ("generations", "0002_create_roles"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
