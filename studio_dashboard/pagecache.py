"""Rendered page bodies kept in the cache, keyed by what they show and a fingerprint.

The history list and the library render two dozen cards each, and the spend
review a year of figures, which costs far more than reading them: most of a
request was the template engine. Their bodies
depend on the rows, the query string and a little of who is asking, and the rows
change in ways a few index probes can see. So a body is cached under a key made
of what it shows (the page, its query string, the asker's scope) and a
fingerprint of the data read in one query:

- the newest generation id (a generation was created),
- the newest state change (a generation moved: finished, failed, ...),
- the newest review id (a decision),
- the newest tag id (a tag was added),
- the newest ledger entry and wallet snapshot (the spend review's figures).

Any of those moving makes a new key, in any process (the fingerprint lives in the
database, the bodies in the shared cache). What the fingerprint cannot see (a
tag removed, a username changed) shows within ``BODY_TTL`` seconds, when the
cached body expires.
"""

import hashlib
from functools import cache as memoize

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils.safestring import mark_safe

BODY_TTL = 60


@memoize
def _fingerprint_sql():
    from generations.models import Generation, LedgerEntry, WalletSnapshot
    from reviews.models import Review, Tag

    parts = []
    params = []
    for queryset in (
        Generation.objects.order_by("-id").values("id"),
        Generation.objects.order_by("-state_changed_at").values("state_changed_at"),
        Review.objects.order_by("-id").values("id"),
        Tag.objects.order_by("-id").values("id"),
        LedgerEntry.objects.order_by("-id").values("id"),
        WalletSnapshot.objects.order_by("-id").values("id"),
    ):
        sql, sql_params = queryset[:1].query.sql_with_params()
        parts.append(f"({sql})")
        params += sql_params
    return "SELECT " + ", ".join(parts), tuple(params)


def fingerprint(request):
    """The fingerprint of the data the cached bodies show, read once per request."""
    cached = getattr(request, "_studio_fingerprint", None)
    if cached is None:
        sql, params = _fingerprint_sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cached = tuple(cursor.fetchone())
        request._studio_fingerprint = cached
    return cached


def query(request, names):
    """The request's values of the parameters ``names`` (a form's fields), as a key part:
    parameters the page does not read cannot make new keys (and fill the cache)."""
    return [(name, request.GET.getlist(name)) for name in sorted(names) if name in request.GET]


def body(request, parts, render):
    """The HTML ``render()`` returns for ``parts``, from the cache while the data is unchanged.

    ``parts`` must name everything the body depends on besides the fingerprinted
    data: the view and partial, the query string, the asker's scope and permissions.
    """
    if not settings.PAGE_BODY_CACHE:
        return mark_safe(str(render()))
    digest = hashlib.sha256(repr((parts, fingerprint(request))).encode()).hexdigest()
    key = f"body:{digest}"
    html = cache.get(key)
    if html is None:
        html = str(render())
        cache.set(key, html, BODY_TTL)
    return mark_safe(html)
