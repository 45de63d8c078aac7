"""The web benchmark's URLconf: the project's URLs plus a trivial view.

Mounted only by ``tests.bench.web_settings`` (gunicorn under bench_web.py), so
production has no extra URL.
"""

from django.http import HttpResponse
from django.urls import include, path

from studio_dashboard import dataversion


def trivial(request):
    """The baseline: a view that does nothing (the request still crosses every middleware)."""
    return HttpResponse("ok")


def bump_data_version(get_response):
    """Middleware (the "(after a change)" rows): a new data version before every request,
    as if a generation had just changed, so every cached fragment is rendered afresh."""

    def middleware(request):
        dataversion.bump()
        return get_response(request)

    return middleware


urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("", include("studio_dashboard.urls")),
]
