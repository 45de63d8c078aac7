"""Authentication that reads a user and their permissions in one query.

Django's ModelBackend reads the user row, then on the first ``has_perm`` the
user's own permissions, then their groups' permissions: three queries on every
page, most of the cost of a small one like the progress fragment. On
PostgreSQL this backend reads the user row with both permission sets as arrays
in one query (its SQL written once per process) and fills ModelBackend's
per-request caches, so every ``has_perm`` of the request is answered from
memory. A role change or a deactivation shows on the user's next request.

On a full page the same statement also reads the page's data fingerprint and
header figures (``pagecache.figures_sql``): Django calls ``get_user`` with an id
only, so ``CurrentRequestMiddleware`` makes the request known to it. A view can
have one more row read in it too (``read_with_user``): the generation page and its
polled status card read their generation so. And the session itself is read in
that statement (``read_session``, called by accounts/sessions.py, whose rows name
their user): one query for the whole request. The answer to that query, for a
full page or the polled status card, is kept until PostgreSQL notifies that a row
it was read from changed (``liverows``): no query at all while nothing did.

Superusers (every permission) and other databases behave exactly like
ModelBackend.
"""

from contextvars import ContextVar
from functools import cache as memoize
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from . import liverows, pagecache

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


# What ``ridden`` answers when the view's row was not read with the user.
NOT_READ = object()


def read_with_user(rider):
    """View decorator, outside ``login_required``: ``rider(request, *args, **kwargs)`` gives
    a statement selecting at most one row, whose first column is never NULL, and its
    parameters (or None: nothing to read). The backend reads that row in the user's own
    query; the view takes it with ``ridden(request)``.

    A third item, the ``liverows.tag`` of every row the statement reads, lets that
    query's answer be kept across requests until one of them, the session or the user's
    permissions change (``liverows``); without it the query runs every time."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            request._studio_rider = rider(request, *args, **kwargs)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def ridden(request):
    """The row the view's rider selected, read with the signed-in user: its values, or None
    if it found none; ``NOT_READ`` if it was not read so (no rider, not PostgreSQL, or the
    user was read before the view ran), and the view reads it itself."""
    return getattr(request, "_studio_ridden", NOT_READ)


@memoize
def _user_sql(figures=False, rider=""):
    """The SQL reading one user row (by id) with ``own_permissions`` and
    ``group_permissions``, with ``figures`` the page's figures too
    (``pagecache.figures_sql``), and with a ``rider`` statement the columns of the row
    it selects (NULLs if none). Its parameters: the rider's, then the user's id.
    """
    user = get_user_model()._meta
    return (
        f'SELECT {_user_select(figures, rider)} FROM "{user.db_table}" u'
        + (f" LEFT JOIN LATERAL ({rider}) ridden ON TRUE" if rider else "")
        + f' WHERE u."{user.pk.column}" = %s'
    )


@memoize
def _session_sql(table, figures=False, rider=""):
    """The SQL reading an unexpired session row of ``table`` (by key) with ``_user_sql``'s
    columns of the user it names (NULLs if none): its ``session_data`` and
    ``expire_date``, then those.
    Its parameters: the rider's, the session key, the time now."""
    user = get_user_model()._meta
    return (
        f'SELECT s."session_data", s."expire_date", {_user_select(figures, rider)} '
        f'FROM "{table}" s '
        f'LEFT JOIN "{user.db_table}" u ON u."{user.pk.column}" = s."user_id"'
        + (f" LEFT JOIN LATERAL ({rider}) ridden ON TRUE" if rider else "")
        + ' WHERE s."session_key" = %s AND s."expire_date" > %s'
    )


def _user_select(figures, rider):
    """The select list of ``_user_sql`` and ``_session_sql``, on the user table ``u``.

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
        f"{columns}, "
        f'ARRAY({names} JOIN "{own}" up ON up."permission_id" = p."id" '
        f'WHERE up."user_id" = u."{pk}") AS own_permissions, '
        f'ARRAY({names} JOIN "{grants}" gp ON gp."permission_id" = p."id" '
        f'JOIN "{member_of}" ug ON ug."group_id" = gp."group_id" '
        f'WHERE ug."user_id" = u."{pk}") AS group_permissions'
        + (f", {pagecache.figures_sql(f'u."{pk}"')}" if figures else "")
        + (", ridden.*" if rider else "")
    )


def _wants(request):
    """What this request reads with its user: (figures?, the rider's SQL, its parameters,
    the tags of the rows it reads or None)."""
    if request is None:
        return False, "", [], None
    rider = getattr(request, "_studio_rider", None) or ("", [])
    rider_sql, rider_params, tags = (*rider, None)[:3]
    return pagecache.wants_figures(request), rider_sql, list(rider_params), tags


def read_session(request, session_key, model):
    """The data of ``request``'s own session (None if it has no such unexpired session),
    read in one query with its user, their permissions and what the request reads
    with them (``Backend.get_user`` takes those from here).

    The answer is kept until a row it was read from changes (``liverows``) when the
    request reads a full page's figures or a rider that says what it reads (tags);
    other requests read it every time."""
    figures, rider_sql, rider_params, tags = _wants(request)
    table = model._meta.db_table
    sql = _session_sql(table, figures, rider_sql)
    keep_tags = _keep_tags(f"{table}:{session_key}", figures, rider_sql, tags)
    kept = liverows.here() if keep_tags else None
    key = (sql, session_key, *rider_params)
    row = kept.get(key) if kept is not None else None
    if row is not None:
        liverows.ANSWERED["kept"].inc()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [*rider_params, session_key, timezone.now()])
            row = cursor.fetchone()
        if keep_tags:
            liverows.ANSWERED["off" if kept is None else "read"].inc()
        if kept is not None and _found_all(row, figures, rider_sql):
            kept.put(key, row, keep_tags, valid_until=row[1])
    if row is None:
        return None
    if row[2] is not None:  # the user's id: the session names a user who exists
        request._studio_user_row = (row[2], figures, rider_sql, row[2:])
    return row[0]


def _keep_tags(session_tag, figures, rider_sql, tags):
    """What a kept answer depends on besides users and permissions (whose tables drop
    every kept answer): its session, the rider's rows and the figures' tables; None if
    it is not to be kept (a rider that does not say what it reads, or nothing read but
    the session and the user)."""
    if (rider_sql and tags is None) or not (rider_sql or figures):
        return None
    return [session_tag, *(tags or ()), *(pagecache.figures_tables() if figures else ())]


def _found_all(row, figures, rider_sql):
    """Whether ``_session_sql``'s row has a session, its user and, with a rider, the
    rider's row (its first column is never NULL): a miss is not kept."""
    if row is None or row[2] is None:
        return False
    if not rider_sql:
        return True
    return row[2 + len(_attnames()) + 2 + (pagecache.FIGURES_COLUMNS if figures else 0)] is not None


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
        figures, rider_sql, rider_params, _tags = _wants(request)
        row = None
        read = getattr(request, "_studio_user_row", None)
        if read is not None:
            del request._studio_user_row  # once: a later call reads the user again
            if read[:3] == (user_id, figures, rider_sql):
                row = read[3]
        if row is None:
            with connection.cursor() as cursor:
                cursor.execute(_user_sql(figures, rider_sql), [*rider_params, user_id])
                row = cursor.fetchone()
        if row is None:
            return None
        attnames = _attnames()
        values = row[: len(attnames)]
        own_permissions, group_permissions = row[len(attnames) : len(attnames) + 2]
        rest = row[len(attnames) + 2 :]
        if figures:
            rest = pagecache.remember(request, user_id, rest)
        if rider_sql:
            request._studio_ridden = rest if rest[0] is not None else None
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
