"""The web benchmark's URLconf: the project's URLs plus a trivial view.

Mounted only by ``tests.bench.web_settings`` (gunicorn under bench_web.py), so
production has no extra URL.
"""

from django.http import HttpResponse
from django.urls import include, path


def trivial(request):
    """The baseline: a view that does nothing (the request still crosses every middleware)."""
    return HttpResponse("ok")


urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("", include("studio_dashboard.urls")),
]
