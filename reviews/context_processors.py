from functools import cached_property


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
        from .models import awaiting_review

        return awaiting_review().count() if self.can_review else 0

    @cached_property
    def unread(self):
        from .models import Notification

        return Notification.objects.unread_for(self.user).count()


def reviews(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"review_nav": NavCounts(user)}
