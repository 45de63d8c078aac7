import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import metrics
from . import status as ops_status

_redis_clients = {}


def _redis_urls():
    """The Redis servers this set-up depends on: the rate limiter's and the broker's."""
    urls = []
    if settings.RATE_LIMITER == "redis":
        urls.append(settings.REDIS_URL)
    if ops_status.uses_redis_broker() and settings.CELERY_BROKER_URL not in urls:
        urls.append(settings.CELERY_BROKER_URL)
    return urls


def _ping_redis(url):
    import redis

    client = _redis_clients.get(url)
    if client is None:
        # Short timeouts: a health check that hangs is worse than one that fails.
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        _redis_clients[url] = client
    client.ping()


@never_cache
@require_GET
def healthz(request):
    """Is this web process up, and can it reach the database and Redis? No login, no secrets."""
    body, healthy = {"web": "ok"}, True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        body["database"] = "ok"
    except DatabaseError:
        body["database"], healthy = "unavailable", False
    if urls := _redis_urls():
        try:
            for url in urls:
                _ping_redis(url)
            body["redis"] = "ok"
        except Exception:  # noqa: BLE001 - any failure to answer PING is "unavailable"
            body["redis"], healthy = "unavailable", False
    else:
        body["redis"] = "not used"  # the embedded set-up: database limiter, file broker
    return JsonResponse(body, status=200 if healthy else 503)


def _is_operator(user):
    return user.is_active and (user.is_staff or user.has_perm("generations.resolve_generation"))


@login_required
@never_cache
@require_GET
def status_page(request):
    if not _is_operator(request.user):
        raise PermissionDenied
    return render(request, "ops/status.html", {"status": ops_status.gather()})


def _bearer_token(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@never_cache
@require_GET
def metrics_view(request):
    """Prometheus scrape: a bearer token (METRICS_TOKEN) or, for a person, a staff session."""
    expected = settings.METRICS_TOKEN
    offered = _bearer_token(request)
    if offered is not None and expected:
        if not hmac.compare_digest(offered.encode(), expected.encode()):
            raise PermissionDenied
    elif not (request.user.is_authenticated and request.user.is_staff):
        if request.user.is_authenticated or offered is not None:
            raise PermissionDenied
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
