"""The credits permissions the Admins group holds (used by migration 0003 and by tests,
whose transactional cases flush the data migrations away)."""

from django.contrib.auth.management import create_permissions

ADMIN_PERMISSIONS = [
    "view_spend",
    "view_ledgerentry",
    "view_walletsnapshot",
    "manage_prices",
    "manage_budgets",
    "make_adjustment",
    "view_pricetable",
    "add_pricetable",
    "view_budget",
    "add_budget",
    "change_budget",
    "delete_budget",
]


def grant_admin_permissions(apps):
    app_config = apps.get_app_config("credits")
    if getattr(app_config, "models_module", None) is None:
        # Inside a migration the app registry is historical: make the permissions exist now.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    else:
        create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admins, _ = Group.objects.get_or_create(name="Admins")
    admins.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="credits", codename__in=ADMIN_PERMISSIONS
        )
    )
