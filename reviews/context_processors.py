from functools import cache as memoize
from functools import cached_property

from django.core.cache import cache
from django.db import connection
from django.db.models import Func

from studio_dashboard import pagecache

# A change the fingerprint below cannot see (a deleted generation; a transition that
# commits after a later one was read) shows within this many seconds.
AWAITING_COUNT_TTL = 60
AWAITING_COUNT_KEY = "reviews:awaiting-count"


class NavCounts:
    """The review and notification counts for the navigation, computed only when shown.

    Fragments (htmx partials) never render the navigation, so they pay no query.
    """

    def __init__(self, request):
        self.request = request
        self.user = request.user

    @cached_property
    def can_review(self):
        return self.user.has_perm("generations.review_generation")

    @cached_property
    def can_browse_library(self):
        return self.user.has_perm("generations.view_generation")

    @cached_property
    def queue_count(self):
        return awaiting_review_count(self.request) if self.can_review else 0

    @cached_property
    def unread(self):
        # Notification.objects.unread_for(user).count(), read with the page's fingerprint.
        return pagecache.header(self.request).unread


def reviews(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"review_nav": NavCounts(request)}


def awaiting_review_count(request):
    """How many generations await review, counted only when that number may have changed.

    Counting them anti-joins every finished generation with the reviews (14-24 ms on
    100k generations), once per full page of every reviewer. So the count is cached
    with the two parts of the request's data fingerprint (studio_dashboard/pagecache.py,
    one query of index probes shared with the cached page bodies) that change it: the
    newest review (a decision) and the newest state change (a generation finished, or
    left FINISHED). The fingerprint is in the database, so a decision or a finish in any
    process (web workers, Celery) is seen by all; AWAITING_COUNT_TTL bounds what it
    cannot see.
    """
    newest = pagecache.fingerprint(request)
    seen = (newest.review, newest.change)
    cached = cache.get(AWAITING_COUNT_KEY)
    if cached is not None and tuple(cached[:2]) == seen:
        return cached[2]
    sql, params = _awaiting_count_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (count,) = cursor.fetchone()
    # Saved only when counted (a hit must not extend the TTL), under the fingerprint
    # read before counting: a change in between makes the next request count again.
    if newest.change is not None:
        cache.set(AWAITING_COUNT_KEY, (*seen, count), AWAITING_COUNT_TTL)
    return count


@memoize
def _awaiting_count_sql():
    """The SQL of the count, compiled once per process."""
    from .models import awaiting_review

    # COUNT as a plain function, not an aggregate: no GROUP BY, so the planner can
    # count from generation_finished_idx alone.
    count = awaiting_review().order_by().values(n=Func("pk", function="COUNT"))
    return count.query.sql_with_params()
