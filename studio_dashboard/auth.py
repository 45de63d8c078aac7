"""Authentication that reads a user and their permissions in one query.

Django's ModelBackend reads the user row, then on the first ``has_perm`` the
user's own permissions, then their groups' permissions: three queries on every
page, most of the cost of a small one like the progress fragment. On
PostgreSQL this backend reads the user row with both permission sets as arrays
in one query (its SQL written once per process) and fills ModelBackend's
per-request caches, so every ``has_perm`` of the request is answered from
memory. Nothing is kept across requests, so there is nothing to invalidate: a
role change or a deactivation shows on the user's next request.

Superusers (every permission) and other databases behave exactly like
ModelBackend.
"""

from functools import cache as memoize

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


@memoize
def _user_sql():
    """The SQL reading one user row with ``own_permissions`` and ``group_permissions``.

    Written out rather than built by the ORM: the ORM's version joins auth_group and
    sorts by the permissions' default ordering, and planning that took longer (0.7 ms)
    than running it.
    """
    user_model = get_user_model()
    user = user_model._meta
    pk = user.pk.column
    own = user_model.user_permissions.through._meta.db_table
    member_of = user_model.groups.through._meta.db_table
    grants = Permission.group_set.through._meta.db_table
    columns = ", ".join(f'u."{field.column}"' for field in user.concrete_fields)
    names = (
        'SELECT ct."app_label" || \'.\' || p."codename" '
        f'FROM "{Permission._meta.db_table}" p '
        f'JOIN "{ContentType._meta.db_table}" ct ON ct."id" = p."content_type_id"'
    )
    return (
        f"SELECT {columns}, "
        f'ARRAY({names} JOIN "{own}" up ON up."permission_id" = p."id" '
        f'WHERE up."user_id" = u."{pk}") AS own_permissions, '
        f'ARRAY({names} JOIN "{grants}" gp ON gp."permission_id" = p."id" '
        f'JOIN "{member_of}" ug ON ug."group_id" = gp."group_id" '
        f'WHERE ug."user_id" = u."{pk}") AS group_permissions '
        f'FROM "{user.db_table}" u WHERE u."{pk}" = %s'
    )


@memoize
def _attnames():
    """The user model's columns in ``_user_sql``'s order; its fields must need no conversion."""
    fields = get_user_model()._meta.concrete_fields
    converting = [field.name for field in fields if hasattr(field, "from_db_value")]
    assert not converting, f"fields whose values need converting: {converting}"
    return [field.attname for field in fields]


class Backend(ModelBackend):
    def get_user(self, user_id):
        if connection.vendor != "postgresql":
            return super().get_user(user_id)
        try:
            user_id = int(user_id)
        except (TypeError, ValueError):
            return None
        with connection.cursor() as cursor:
            cursor.execute(_user_sql(), [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        attnames = _attnames()
        *values, own_permissions, group_permissions = row
        # Loaded as the ORM loads a row (no field of the user model converts its value,
        # see _attnames), without a RawQuerySet's per-query set-up.
        user = get_user_model().from_db(connection.alias, attnames, values)
        if not self.user_can_authenticate(user):
            return None
        if not user.is_superuser:
            # The attributes ModelBackend._get_permissions and get_all_permissions
            # fill on first use.
            user._user_perm_cache = set(own_permissions)
            user._group_perm_cache = set(group_permissions)
            user._perm_cache = user._user_perm_cache | user._group_perm_cache
        return user
