"""Give the Admins group the credits app's permissions (prices, budgets, adjustments)."""

from django.db import migrations


def grant(apps, schema_editor):
    from credits.roles import grant_admin_permissions

    grant_admin_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0002_ledger_append_only_and_indexes"),
        ("generations", "0002_create_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
