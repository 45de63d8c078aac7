"""What the Admins group may do with django-axes' lockouts: see them and clear them (used
by migration 0005 and by tests, whose transactional cases flush data migrations away)."""

LOCKOUT_PERMISSIONS = {
    "accessattempt": ["view", "delete"],  # a lockout is its attempts: deleting one clears it
    "accesslog": ["view"],
    "accessfailurelog": ["view"],
}


def grant_lockout_permissions(apps):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    admins, _ = Group.objects.get_or_create(name="Admins")
    for model, actions in LOCKOUT_PERMISSIONS.items():
        # The permissions may not exist yet: post_migrate makes them after every migration.
        content_type, _ = ContentType.objects.get_or_create(app_label="axes", model=model)
        for action in actions:
            permission, _ = Permission.objects.get_or_create(
                content_type=content_type,
                codename=f"{action}_{model}",
                defaults={"name": f"Can {action} {model}"},
            )
            admins.permissions.add(permission)
