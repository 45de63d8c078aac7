from django.conf import settings
from django.utils.functional import SimpleLazyObject


def _open_alerts():
    from .models import Alert

    return list(Alert.objects.filter(resolved_at__isnull=True)[:3])


def studio(request):
    """The sandbox badge and, for those who may see them, up to three open alerts.

    The alerts are lazy: fragments, which have no banner, read nothing for them.
    """
    context = {"sandbox_mode": settings.SANDBOX_MODE, "open_alerts": ()}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.has_perm("generations.view_alert"):
        context["open_alerts"] = SimpleLazyObject(_open_alerts)
    return context
