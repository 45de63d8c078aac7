"""Create the Members, Reviewers and Admins groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Members": [
        "generations.add_generation",
        "generations.view_generation",
    ],
    "Reviewers": [
        "generations.view_generation",
        "generations.view_all_generations",
        "generations.review_generation",
    ],
    "Admins": [
        "generations.add_generation",
        "generations.view_generation",
        "generations.view_all_generations",
        "generations.review_generation",
        "generations.resolve_generation",
        "generations.view_spend",
        "generations.view_alert",
        "generations.view_ledgerentry",
        "generations.view_walletsnapshot",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
