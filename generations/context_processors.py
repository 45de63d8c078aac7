from django.conf import settings


def studio(request):
    context = {"sandbox_mode": settings.SANDBOX_MODE, "open_alerts": ()}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.has_perm("generations.view_alert"):
        from .models import Alert

        context["open_alerts"] = list(Alert.objects.filter(resolved_at__isnull=True)[:3])
    return context
