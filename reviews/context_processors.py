from functools import cached_property

from django.core.cache import cache

from studio_dashboard import dataversion

from .models import Notification, awaiting_review


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
        return awaiting_review_count() if self.can_review else 0

    @cached_property
    def unread(self):
        return Notification.objects.unread_for(self.user).count()


def reviews(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"review_nav": NavCounts(request)}


def awaiting_review_count():
    """How many generations await review, the same for every reviewer: counted once per
    data version (studio_dashboard/dataversion.py), since counting anti-joins every
    finished generation with the reviews (14-24 ms on 100k generations)."""
    # The version is read before the count, so a change in between is counted again.
    key = f"reviews:awaiting-count:{dataversion.current()}"
    count = cache.get(key)
    if count is None:
        count = awaiting_review().count()
        cache.set(key, count, dataversion.FRAGMENT_TTL)
    return count
