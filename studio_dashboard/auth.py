"""Authentication that reads a user and their permissions in one query.

Django's ModelBackend reads the user row, then on the first ``has_perm`` the
user's own permissions, then their groups' permissions: three queries on every
page, most of the cost of a small one like the progress fragment. On
PostgreSQL this backend reads the user row with both permission sets as arrays
in one query (its SQL compiled once per process) and fills ModelBackend's
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
from django.db import connection
from django.db.models import F, OuterRef, Value
from django.db.models.functions import Concat

# Stands in for the user id while the query is compiled; replaced per request.
_PLACEHOLDER = -7301


def _names(queryset):
    """A subquery of "app_label.codename" names, as ModelBackend spells permissions."""
    return queryset.annotate(
        dotted=Concat(F("content_type__app_label"), Value("."), F("codename"))
    ).values("dotted")


@memoize
def _user_query():
    """(sql, params) reading one user with ``own_permissions`` and ``group_permissions``."""
    from django.contrib.postgres.expressions import ArraySubquery

    queryset = (
        get_user_model()
        ._default_manager.annotate(
            own_permissions=ArraySubquery(_names(Permission.objects.filter(user=OuterRef("pk")))),
            group_permissions=ArraySubquery(
                _names(Permission.objects.filter(group__user=OuterRef("pk")))
            ),
        )
        .filter(pk=_PLACEHOLDER)
    )
    sql, params = queryset.query.sql_with_params()
    assert params.count(_PLACEHOLDER) == 1, params
    return sql, params


class Backend(ModelBackend):
    def get_user(self, user_id):
        if connection.vendor != "postgresql":
            return super().get_user(user_id)
        sql, params = _user_query()
        try:
            user_id = int(user_id)
        except (TypeError, ValueError):
            return None
        params = [user_id if p == _PLACEHOLDER else p for p in params]
        users = list(get_user_model()._default_manager.raw(sql, params))
        if not users or not self.user_can_authenticate(users[0]):
            return None
        user = users[0]
        if not user.is_superuser:
            # The attributes ModelBackend._get_permissions and get_all_permissions
            # fill on first use.
            user._user_perm_cache = set(user.own_permissions)
            user._group_perm_cache = set(user.group_permissions)
            user._perm_cache = user._user_perm_cache | user._group_perm_cache
        return user
