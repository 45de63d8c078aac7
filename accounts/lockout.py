"""Who is trying to log in, for django-axes' lockout per username and per address."""

from django.conf import settings
from django.shortcuts import render


def client_ip(request):
    """The client's address: REMOTE_ADDR, or behind ``LOGIN_TRUSTED_PROXIES`` proxies that
    each append to X-Forwarded-For, the address the outermost of them saw.

    Entries further left are whatever the client wrote and are never trusted: a client
    cannot escape its address's lockout by sending a header.
    """
    proxies = settings.LOGIN_TRUSTED_PROXIES
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out login: the login page's place, saying why and for
    how long, with 429."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)
