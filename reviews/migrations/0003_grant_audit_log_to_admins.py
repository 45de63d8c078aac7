"""Admins may read the audit log (the admin-only audit page checks this permission)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    app_config = apps.get_app_config("reviews")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admins, _ = Group.objects.get_or_create(name="Admins")
    admins.permissions.add(
        Permission.objects.get(content_type__app_label="reviews", codename="view_auditlog")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0002_make_audit_log_append_only"),
        ("generations", "0002_create_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
