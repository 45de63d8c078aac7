"""The data version: a number that changes after every change to what the pages show.

Pages cache their rendered fragments under it (``{% cache FRAGMENT_TTL "list" data_version
... %}``), the pattern of djangoproject.com's dashboard (``generation_key``): the writers
bump it when their transaction commits, so the next request in any process renders
afresh, and an unchanged page is served from the cache. What the version cannot see (a
bump lost while Redis was away, a row changed by hand in SQL) shows within
``FRAGMENT_TTL`` seconds, when the fragment expires.

Who bumps: every save and delete of a model of the dashboard's apps or of a user
(``bump_on_save``, connected in ``GenerationsConfig.ready``), and a generation's
conditional UPDATEs (``GenerationQuerySet.update``), which send no signal.

A view reads the version *before* the data it caches: a change committed in between
then lands under the next version, never stale data under the newest one.
"""

import secrets
from urllib.parse import urlencode

from django.core.cache import cache
from django.db import transaction
from django.utils.functional import SimpleLazyObject

KEY = "studio:data-version"
# Seconds a cached fragment lives: the bound on what the version cannot see.
FRAGMENT_TTL = 300
# The apps whose rows the pages show (and the user model's, for owners' names).
APPS = {"generations", "credits", "reviews", "auth"}


def current():
    """The version now; a new one if the cache lost it (None while the cache is away)."""
    version = cache.get(KEY)
    if version is None:
        # Never an earlier number: a random start far from any range of versions counted
        # before the key was lost (evicted, or Redis restarted empty).
        cache.add(KEY, _fresh(), timeout=None)
        version = cache.get(KEY)
    return version


def bump():
    """A new version now, and another once the current transaction commits.

    The one at commit is what other processes need: a page rendered between the two
    (with the change not yet visible to it) is cached under a version that the commit
    then leaves behind. The one now serves reads later in the same transaction (and
    tests, whose transactions never commit)."""
    _increment()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_increment, robust=True)


def _increment():
    try:
        if cache.incr(KEY) is not None:
            return
    except ValueError:
        pass  # the key is gone: start afresh above every earlier version
    cache.set(KEY, _fresh(), timeout=None)


def _fresh():
    return secrets.randbits(60)


def bump_on_save(sender, **kwargs):
    """post_save / post_delete / m2m_changed receiver for the models the pages show."""
    if sender._meta.app_label in APPS:
        bump()


def context(request):
    """Template context: ``data_version`` for the ``{% cache %}`` fragments' keys (read
    from the cache only when a fragment asks) and ``fragment_ttl``, their lifetime."""
    return {"data_version": SimpleLazyObject(current), "fragment_ttl": FRAGMENT_TTL}


def query_key(request, names):
    """The request's values of the parameters ``names`` (a form's fields), for a fragment's
    cache key: parameters the page does not read make no new keys."""
    return urlencode(
        sorted((name, request.GET.getlist(name)) for name in names if name in request.GET),
        doseq=True,
    )
