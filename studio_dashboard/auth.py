"""Authentication that reads a user and their permissions in one query.

Django's ModelBackend reads the user row, then on the first ``has_perm`` the
user's own permissions, then their groups' permissions: three queries on every
page, most of the cost of a small one like the progress fragment. On
PostgreSQL this backend reads the user row with both permission sets as arrays
in one query (its SQL written once per process) and fills ModelBackend's
per-request caches, so every ``has_perm`` of the request is answered from
memory. Nothing is kept across requests, so there is nothing to invalidate: a
role change or a deactivation shows on the user's next request.

On a full page the same statement also reads the page's data fingerprint and
header figures (``pagecache.figures_sql``): Django calls ``get_user`` with an id
only, so ``CurrentRequestMiddleware`` makes the request known to it.

Superusers (every permission) and other databases behave exactly like
ModelBackend.
"""

from contextvars import ContextVar
from functools import cache as memoize

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from . import pagecache

# The request being answered, so that get_user (which Django calls with a user id
# only) can read a full page's figures in the same query as the user.
current_request = ContextVar("current_request")


class CurrentRequestMiddleware:
    """Makes the request known to ``Backend.get_user`` while it is answered."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


@memoize
def _user_sql(figures=False):
    """The SQL reading one user row with ``own_permissions`` and ``group_permissions``,
    and with ``figures`` the page's figures too (``pagecache.figures_sql``).

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
        f'WHERE ug."user_id" = u."{pk}") AS group_permissions'
        + (f", {pagecache.figures_sql()}" if figures else "")
        + f' FROM "{user.db_table}" u WHERE u."{pk}" = %s'
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
        request = current_request.get(None)
        figures = request is not None and pagecache.wants_figures(request)
        with connection.cursor() as cursor:
            cursor.execute(_user_sql(figures), [user_id] * (3 if figures else 1))
            row = cursor.fetchone()
        if row is None:
            return None
        attnames = _attnames()
        values = row[: len(attnames)]
        own_permissions, group_permissions = row[len(attnames) : len(attnames) + 2]
        if figures:
            pagecache.remember(request, user_id, row[len(attnames) + 2 :])
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
