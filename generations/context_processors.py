from django.conf import settings
from django.core.cache import cache
from django.utils.functional import SimpleLazyObject

from studio_dashboard import dataversion


def _open_alerts():
    from .models import Alert

    return list(Alert.objects.filter(resolved_at__isnull=True)[:3])


def needs_attention_count():
    """How many generations, conversions and finishing steps, and concept jobs wait for a
    person, the same for every admin: counted once per data version (every transition
    of the three bumps it), as the reviews' awaiting count is."""
    from .models import needs_attention_count as count_now

    # The version is read before the count, so a change in between is counted again.
    key = f"generations:attention-count:{dataversion.current()}"
    count = cache.get(key)
    if count is None:
        count = count_now()
        cache.set(key, count, dataversion.FRAGMENT_TTL)
    return count


def studio(request):
    """The sandbox badge; for those who may see them, up to three open alerts; for those
    who resolve them, how many rows need attention (the navigation's count).

    Both are lazy: fragments, which have no banner and no navigation, read nothing for them.
    """
    context = {"sandbox_mode": settings.SANDBOX_MODE, "open_alerts": (), "attention_count": 0}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return context
    if user.has_perm("generations.view_alert"):
        context["open_alerts"] = SimpleLazyObject(_open_alerts)
    if user.has_perm("generations.resolve_generation"):
        context["attention_count"] = SimpleLazyObject(needs_attention_count)
    return context
