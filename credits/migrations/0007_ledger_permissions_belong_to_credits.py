"""The ledger's and the wallet's permissions, and "view_spend", now belong to this app.

Django names a permission by its model's content type. When the ledger and the
wallet snapshots moved here (0006), their content types still said
``generations``, and "view_spend" hung on ``generations.Generation``. This
relabels those rows instead of creating new ones, so every grant to a group
(Admins and any other) or to a user stays as it was: ``credits.view_spend``,
``credits.view_ledgerentry`` and so on are the same permission rows as before.

Where the new label already exists too (``migrate`` ran its post-migrate step
between 0006 and this), the grants of the old rows are added to the new ones
and the old rows go.
"""

from django.db import migrations

MOVED_MODELS = ["ledgerentry", "walletsnapshot"]
# (codename, model that held it before, model that holds it now)
MOVED_PERMISSIONS = [("view_spend", ("generations", "generation"), ("credits", "ledgerentry"))]


def _move_permission(Permission, permission, content_type):
    """Give ``permission`` to ``content_type``, keeping who holds it."""
    twin = Permission.objects.filter(
        content_type=content_type, codename=permission.codename
    ).first()
    if twin is None:
        permission.content_type = content_type
        permission.save(update_fields=["content_type"])
        return
    for group in permission.group_set.all():
        group.permissions.add(twin)
    for user in permission.user_set.all():
        user.user_permissions.add(twin)
    permission.delete()


def _relabel_models(apps, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for model in MOVED_MODELS:
        old = ContentType.objects.filter(app_label=source, model=model).first()
        if old is None:
            continue  # a database made before permissions existed for it: nothing to keep
        new = ContentType.objects.filter(app_label=target, model=model).first()
        if new is None:
            old.app_label = target
            old.save(update_fields=["app_label"])
            continue
        for permission in Permission.objects.filter(content_type=old):
            _move_permission(Permission, permission, new)
        old.delete()


def _move_permissions(apps, moves):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for codename, before, after in moves:
        holder = ContentType.objects.filter(app_label=before[0], model=before[1]).first()
        permission = Permission.objects.filter(content_type=holder, codename=codename).first()
        if permission is None:
            continue
        new_holder, _ = ContentType.objects.get_or_create(app_label=after[0], model=after[1])
        _move_permission(Permission, permission, new_holder)


def _forget_labels():
    """Later lookups in this process (the permissions ``migrate`` makes at its end) must
    not find the old labels in Django's cache of content types."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


def forward(apps, schema_editor):
    _relabel_models(apps, "generations", "credits")
    _move_permissions(apps, MOVED_PERMISSIONS)
    _forget_labels()


def backward(apps, schema_editor):
    # The reverse order: "view_spend" leaves the ledger's label before that goes back.
    _move_permissions(apps, [(code, after, before) for code, before, after in MOVED_PERMISSIONS])
    _relabel_models(apps, "credits", "generations")
    _forget_labels()


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0006_ledger_and_wallet_snapshots_move_here"),
        ("generations", "0008_ledger_and_wallet_snapshots_moved_to_credits"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forward, backward)]
