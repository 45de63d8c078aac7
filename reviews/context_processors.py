from functools import cache as memoize
from functools import cached_property

from django.core.cache import cache
from django.db import connection
from django.db.models import Func

# A change the fingerprint below cannot see (a deleted generation; a transition that
# commits after a later one was read) shows within this many seconds.
AWAITING_COUNT_TTL = 60
AWAITING_COUNT_KEY = "reviews:awaiting-count"


class NavCounts:
    """The review and notification counts for the navigation, computed only when shown.

    Fragments (htmx partials) never render the navigation, so they pay no query.
    """

    def __init__(self, user):
        self.user = user

    @cached_property
    def can_review(self):
        return self.user.has_perm("generations.review_generation")

    @cached_property
    def can_browse_library(self):
        return self.user.has_perm("generations.view_generation")

    @cached_property
    def queue_count(self):
        return awaiting_review_count() if self.can_review else 0

    @cached_property
    def unread(self):
        from .models import Notification

        return Notification.objects.unread_for(self.user).count()


def reviews(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"review_nav": NavCounts(user)}


def awaiting_review_count():
    """How many generations await review, in one query however many rows there are.

    Counting them anti-joins every finished generation with the reviews (14-24 ms on
    100k generations), once per full page of every reviewer. So the count is cached
    with a fingerprint of what changes it: the newest review (a decision) and the
    newest state change (a generation finished, or left FINISHED). One query reads
    the fingerprint, two index probes (reviews' pk, generation_state_changed_idx), and
    counts again only when it differs from the cached one: the count is in the CASE's
    ELSE branch, which the database evaluates only when taken. The fingerprint is in
    the database, so a decision or a finish in any process (web workers, Celery) is
    seen by all; AWAITING_COUNT_TTL bounds what it cannot see.
    """
    (review_sql, review_params), (change_sql, change_params), (count_sql, count_params) = (
        _awaiting_count_sql()
    )
    cached = cache.get(AWAITING_COUNT_KEY)
    if cached is None:
        sql = f"SELECT {review_sql}, ({change_sql}), ({count_sql})"
        params = (*review_params, *change_params, *count_params)
    else:
        newest_review, newest_change, count = cached
        sql = (
            f"SELECT {review_sql}, ({change_sql}), CASE WHEN {review_sql} = %s "
            f"AND ({change_sql}) = %s THEN %s ELSE ({count_sql}) END"
        )
        params = (
            *review_params,
            *change_params,
            *review_params,
            newest_review,
            *change_params,
            newest_change,
            count,
            *count_params,
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        newest_review, newest_change, count = cursor.fetchone()
    fresh = (newest_review, newest_change, count)
    # Saved only when counted: a hit must not extend the TTL. No generation at all
    # (no newest change) is nothing to save.
    if newest_change is not None and fresh != cached:
        cache.set(AWAITING_COUNT_KEY, fresh, AWAITING_COUNT_TTL)
    return count


@memoize
def _awaiting_count_sql():
    """The SQL of the fingerprint and of the count, compiled once per process."""
    from generations.models import Generation

    from .models import Review, awaiting_review

    newest_review = Review.objects.order_by("-id").values("id")[:1]
    newest_change = Generation.objects.order_by("-state_changed_at").values("state_changed_at")
    # COUNT as a plain function, not an aggregate: no GROUP BY, so the planner can
    # count from generation_finished_idx alone.
    count = awaiting_review().order_by().values(n=Func("pk", function="COUNT"))
    review_sql, review_params = newest_review.query.sql_with_params()
    change_sql, change_params = newest_change[:1].query.sql_with_params()
    count_sql, count_params = count.query.sql_with_params()
    # No decision yet is a fingerprint too.
    return (
        (f"COALESCE(({review_sql}), 0)", review_params),
        (change_sql, change_params),
        (count_sql, count_params),
    )
