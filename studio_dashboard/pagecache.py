"""Rendered page bodies kept in the cache, and the one query every page makes.

The history list and the library render two dozen cards each, and the spend
review a year of figures, which costs far more than reading them: most of a
request was the template engine. Their bodies depend on the rows, the query
string and a little of who is asking, and the rows change in ways a few index
probes can see. So a body is cached under a key made of what it shows (the
page, its query string, the asker's scope) and a fingerprint of the data:

- the newest generation id (a generation was created),
- the newest state change (a generation moved: finished, failed, ...),
- the newest review id (a decision),
- the newest tag id (a tag was added),
- the newest ledger entry and wallet snapshot (the spend review's figures).

Any of those moving makes a new key, in any process (the fingerprint lives in the
database, the bodies in the shared cache). What the fingerprint cannot see (a
tag removed, a username changed) shows within ``BODY_TTL`` seconds, when the
cached body expires.

The same statement returns the header's figures for the signed-in user (see
``header``), and on a full page the auth backend reads it with the user
(``figures_sql``), so a cached page costs one query in all.

Rendering the header and navigation around a cached body then took half of what
was left, so the whole page is cached too, per person: its key adds to the
body's everything the header shows (who is asking and what they may do, where
they are, their unread count). Pages whose header carries more (a budget or an
alert banner, flash messages) are rendered afresh. The CSRF token differs for
every browser, so the page is stored with a stand-in that each response replaces
with the asker's own token. Each process also keeps its last pages in memory
(``Recent``), in front of the shared cache.
"""

import hashlib
import secrets
import threading
import time
from collections import OrderedDict, namedtuple
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cache as memoize

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token
from django.template.loader import render_to_string
from django.utils.crypto import salted_hmac
from django.utils.safestring import mark_safe

BODY_TTL = 60


@memoize
def _request_sql():
    """One statement for the request: the data fingerprint, then the header's figures."""
    return "SELECT " + figures_sql()


def _figure_models():
    from credits.models import Budget
    from generations.models import Alert, Generation, LedgerEntry, WalletSnapshot
    from reviews.models import Notification, Review, Tag

    return Budget, Alert, Generation, LedgerEntry, WalletSnapshot, Notification, Review, Tag


@memoize
def figures_tables():
    """The tables ``figures_sql`` reads: a change to any of them changes the figures
    (``liverows`` keeps a page's query until one does)."""
    return tuple(model._meta.db_table for model in _figure_models())


@memoize
def figures_sql(user="%s"):
    """The select list of the data fingerprint, then the header's figures, for the
    signed-in user whose id is ``user`` (SQL: by default two parameters, each the id).
    The auth backend reads it with the user on full pages (see ``wants_figures``), so
    those pages make one query for both.

    The header's figures are the signed-in user's: unread notifications (as
    ``Notification.objects.unread_for``), whether a budget applies to them (as
    ``credits.budgets.applicable``; only then is its use read) and whether any
    alert is open (only then are alerts read, for those who may see them).
    """
    Budget, Alert, Generation, LedgerEntry, WalletSnapshot, Notification, Review, Tag = (
        _figure_models()
    )
    newest = {
        "generation": Generation.objects.order_by("-id").values("id"),
        "change": Generation.objects.order_by("-state_changed_at").values("state_changed_at"),
        "review": Review.objects.order_by("-id").values("id"),
        "tag": Tag.objects.order_by("-id").values("id"),
        "ledger_entry": LedgerEntry.objects.order_by("-id").values("id"),
        "wallet_snapshot": WalletSnapshot.objects.order_by("-id").values("id"),
    }
    assert tuple(newest) == Fingerprint._fields
    parts = []
    for queryset in newest.values():
        sql, sql_params = queryset[:1].query.sql_with_params()
        assert not sql_params, sql_params
        parts.append(f"({sql})")
    notifications = Notification._meta.db_table
    budgets = Budget._meta.db_table
    alerts = Alert._meta.db_table
    parts += [
        f'(SELECT COUNT(*) FROM "{notifications}" WHERE "recipient_id" = {user} '
        'AND "in_app" AND "read_at" IS NULL)',
        f'EXISTS(SELECT 1 FROM "{budgets}" WHERE ("user_id" = {user} OR "user_id" IS NULL) '
        "AND \"provider\" = '')",
        f'EXISTS(SELECT 1 FROM "{alerts}" WHERE "resolved_at" IS NULL)',
    ]
    return ", ".join(parts)


# The newest of each: a change to any of them makes new keys.
Fingerprint = namedtuple(
    "Fingerprint", ["generation", "change", "review", "tag", "ledger_entry", "wallet_snapshot"]
)


@dataclass(frozen=True)
class Header:
    unread: int
    budgeted: bool
    alerting: bool


def _read(request):
    """(fingerprint, Header), read in one query the first time a request asks."""
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    cached = getattr(request, "_studio_figures", None)
    if cached is None or cached[0] != user_id:
        with connection.cursor() as cursor:
            cursor.execute(_request_sql(), [user_id, user_id])
            row = tuple(cursor.fetchone())
        remember(request, user_id, row)
        cached = request._studio_figures
    return cached[1:]


def wants_figures(request):
    """Whether this request will read the figures: a full page (a GET that is not htmx's)."""
    # META rather than request.headers, which is built from every header on first use.
    return request.method == "GET" and "HTTP_HX_REQUEST" not in request.META


# How many columns ``figures_sql`` selects: the fingerprint's, then the header's.
FIGURES_COLUMNS = len(Fingerprint._fields) + len(fields(Header))


def remember(request, user_id, row):
    """Keep the figures ``figures_sql`` read for ``user_id`` (at the start of ``row``) for
    the request, and return the rest of the row. They are read again if the request
    turns out to be someone else's (a stale session)."""
    size = len(Fingerprint._fields)
    end = FIGURES_COLUMNS
    request._studio_figures = (user_id, Fingerprint(*row[:size]), Header(*row[size:end]))
    return row[end:]


def fingerprint(request):
    """The fingerprint of the data the cached bodies show, read once per request."""
    return _read(request)[0]


def header(request):
    """The signed-in user's header figures (see ``_request_sql``), from the same query."""
    return _read(request)[1]


def query(request, names):
    """The request's values of the parameters ``names`` (a form's fields), as a key part:
    parameters the page does not read cannot make new keys (and fill the cache)."""
    return [(name, request.GET.getlist(name)) for name in sorted(names) if name in request.GET]


def page(request, template, parts, context, htmx_partial=None):
    """The response of a page whose body is cached: ``template`` renders ``{{ body }}`` in
    its content block and defines the body as the partial ``body``.

    ``parts`` name what the body depends on besides the fingerprinted data (see
    ``body``); ``context()`` builds the body's context on a miss. Under htmx, only
    ``htmx_partial`` (a partial inside the body) is rendered and answered.
    """
    partial = htmx_partial if htmx_partial and request.htmx else "body"
    parts = (template, partial, *parts)

    def build():
        return body(
            request, parts, lambda: render_to_string(f"{template}#{partial}", context(), request)
        )

    if partial != "body":
        return HttpResponse(build())
    return whole(request, parts, lambda: render_to_string(template, {"body": build()}, request))


def whole(request, parts, build, fresh=None):
    """The whole page ``build()`` renders, from the cache while nothing it shows has changed.

    ``parts`` name what the page shows besides the fingerprinted data and the header
    (None: the page is built every time).
    ``build`` renders with the context processors' values and a stand-in for the
    CSRF token (``stand_in("csrf")``, set here); ``fresh`` maps other stand-ins
    ``build`` put in to functions giving each response its own value (a form's
    one-time token). Pages whose header shows more than the key holds are built
    every time (see ``_asker``), still through the stand-ins.
    """
    replacements = {stand_in("csrf"): lambda: csrf_token(request), **(fresh or {})}
    asker = None if parts is None else _asker(request)
    with _csrf_stand_in(request):
        if asker is None:
            html = build()
        else:
            key = "page:" + _digest((parts, fingerprint(request), asker))
            html = recent.get(key)
            if html is None:
                html = cache.get(key)
                if html is None:
                    html = build()
                    cache.set(key, html, BODY_TTL)
                recent.set(key, html)
    for placeholder, value in replacements.items():
        html = html.replace(placeholder, value())
    return HttpResponse(html)


class Recent:
    """What this process used last, by key: at most ``size`` values, each for ``ttl``
    seconds, the least recently used dropped first. Thread-safe.

    ``recent`` (below) holds the pages this process served last, in front of the
    shared cache: a hit there costs no round trip to Redis. Their keys hold the data
    fingerprint, read from the database on every request, so a page kept here is
    served only while what it shows is unchanged, exactly as from the shared cache.
    What the fingerprint cannot see shows within BODY_TTL plus ``ttl`` seconds. The
    status cards, the planner's profiles and decoded sessions are kept in others.
    """

    def __init__(self, size=200, ttl=20.0):
        self.size = size
        self.ttl = ttl
        self.pages = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            found = self.pages.get(key)
            if found is None:
                return None
            html, expires = found
            if expires < time.monotonic():
                del self.pages[key]
                return None
            self.pages.move_to_end(key)
            return html

    def set(self, key, html):
        with self.lock:
            self.pages[key] = (html, time.monotonic() + self.ttl)
            self.pages.move_to_end(key)
            while len(self.pages) > self.size:
                self.pages.popitem(last=False)

    def clear(self):
        with self.lock:
            self.pages.clear()


recent = Recent()  # 200 pages of about 25 kB


def csrf_token(request):
    """``django.middleware.csrf.get_token``, with the mask drawn in one call to the system's
    random source instead of one per character (a tenth of a millisecond less per page).

    As Django's: the browser's secret (from its CSRF cookie, which is then renewed)
    masked anew for each response, so no two pages carry the same token; without a
    cookie Django's own makes one.
    """
    secret = request.META.get("CSRF_COOKIE")
    if secret is None or len(secret) != CSRF_SECRET_LENGTH:
        return get_token(request)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    chars = CSRF_ALLOWED_CHARS
    size = len(chars)
    # Bytes at or above the largest multiple of the alphabet's size are dropped: unbiased.
    limit = 256 - 256 % size
    mask = []
    while len(mask) < CSRF_SECRET_LENGTH:
        mask += [b % size for b in secrets.token_bytes(2 * CSRF_SECRET_LENGTH) if b < limit]
    mask = mask[:CSRF_SECRET_LENGTH]
    cipher = (chars[(chars.index(c) + m) % size] for c, m in zip(secret, mask, strict=True))
    return "".join(chars[m] for m in mask) + "".join(cipher)


@contextmanager
def _csrf_stand_in(request):
    """While a page is built, templates see the CSRF stand-in as ``csrf_token``."""
    request._studio_csrf_stand_in = True
    try:
        yield
    finally:
        del request._studio_csrf_stand_in


def csrf_stand_in(request):
    """Context processor: ``csrf_token`` is the stand-in while ``whole`` builds a page."""
    if getattr(request, "_studio_csrf_stand_in", False):
        return {"csrf_token": stand_in("csrf")}
    return {}


def _asker(request):
    """What the header of a page shows besides the data fingerprinted: who is asking, what
    they may do, where they are and their unread count; None when it shows more (see above).
    """
    if not settings.PAGE_BODY_CACHE:
        return None
    user = request.user
    figures = header(request)
    if figures.budgeted or figures.alerting or messages.get_messages(request):
        return None
    if user.is_superuser:
        permissions = ("every permission",)
    else:
        permissions = tuple(sorted(user.get_all_permissions()))
    where = request.resolver_match
    return (
        user.pk,
        user.get_username(),
        user.is_staff,
        permissions,
        (where.app_name, where.url_name, where.view_name),
        figures.unread,
        settings.SANDBOX_MODE,
    )


@memoize
def stand_in(name):
    """Put in a cached page where a per-response value goes (``whole`` replaces it). Derived
    from the secret key: the same in every process, and not something a prompt could hold."""
    return (
        f"stand-in-{name}-"
        + salted_hmac("studio.pagecache.stand-in", name, algorithm="sha256").hexdigest()
    )


def _digest(value):
    return hashlib.sha256(repr(value).encode()).hexdigest()


def body(request, parts, build):
    """The HTML ``build()`` returns for ``parts``, from the cache while the data is unchanged.

    ``parts`` must name everything the body depends on besides the fingerprinted
    data: the view and partial, the query string, the asker's scope and permissions.
    """
    if not settings.PAGE_BODY_CACHE:
        return mark_safe(str(build()))
    key = "body:" + _digest((parts, fingerprint(request)))
    html = cache.get(key)
    if html is None:
        html = str(build())
        cache.set(key, html, BODY_TTL)
    return mark_safe(html)
