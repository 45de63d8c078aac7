"""/metrics: Prometheus gauges from the database at scrape time, request latencies."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from credits.models import WalletSnapshot
from generations.models import Generation, State
from ops import heartbeat
from tests.test_ops_status import stuck_jobs

pytestmark = pytest.mark.django_db
URL = reverse("ops:metrics")
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def sample(text, name, labels=""):
    """The value of one sample in the exposition text."""
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in metrics"
    return float(match.group(1))


def scrape(client, token=TOKEN):
    response = client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.content.decode()


def test_without_credentials_it_answers_401(client, token):
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_refused(client, token):
    response = client.get(URL, headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 403


def test_a_token_is_refused_when_none_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get(URL, headers={"Authorization": "Bearer "})
    assert response.status_code == 403


def test_the_right_token_is_accepted(client, token, redis_limiter):
    assert "studio_queue_length" in scrape(client)


def test_a_members_session_is_refused(client, token, member):
    client.force_login(member)
    assert client.get(URL).status_code == 403


def test_without_a_token_configured_a_staff_session_is_accepted(
    client, settings, admin_user, redis_limiter
):
    settings.METRICS_TOKEN = ""
    client.force_login(admin_user)
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_the_gauges_count_the_seeded_rows(client, token, member, redis_limiter, empty_broker_queue):
    now = timezone.now()
    for state, count in [
        (State.QUEUED, 3),
        (State.PENDING, 2),
        (State.INGESTING, 1),
        (State.NEEDS_ATTENTION, 4),
        (State.FINISHED, 5),
    ]:
        for _ in range(count):
            Generation.objects.create(
                owner=member,
                provider="hunyuan_rapid",
                credit_estimate=35,
                state=state,
                created_at=now - timedelta(minutes=10),
            )
    stuck_jobs(member)  # a finishing step and a concept job waiting, one of each finished
    WalletSnapshot.objects.create(balance=Decimal("777.25"), rate_limit=3)
    heartbeat.beat("dispatcher")
    redis_limiter.acquire()
    redis_limiter.acquire()

    text = scrape(client)

    assert sample(text, "studio_queue_length") == 3
    assert sample(text, "studio_needs_attention") == 6
    assert sample(text, "studio_generations", '{state="queued"}') == 3
    assert sample(text, "studio_generations", '{state="pending"}') == 2
    assert sample(text, "studio_generations", '{state="in_progress"}') == 0
    assert sample(text, "studio_generations", '{state="ingesting"}') == 1
    assert 'state="finished"' not in text
    assert 595 < sample(text, "studio_oldest_waiting_seconds") < 700
    assert sample(text, "studio_rate_limit") == 3
    assert sample(text, "studio_rate_used") == 2
    assert sample(text, "studio_rate_next_slot_seconds") == 0
    assert sample(text, "studio_wallet_balance") == 777.25
    assert sample(text, "studio_broker_queue_length") == 0
    assert sample(text, "studio_heartbeat_stale", '{name="dispatcher"}') == 0
    assert sample(text, "studio_heartbeat_stale", '{name="sweep"}') == 1
    assert sample(text, "studio_heartbeat_timestamp_seconds", '{name="sweep"}') == 0


def test_request_latencies_are_observed_by_view_and_status_class(client, token, redis_limiter):
    client.get(reverse("ops:healthz"))
    client.get("/no-such-page/")
    text = scrape(client)
    assert (
        sample(
            text, "studio_http_request_duration_seconds_count", '{status="2xx",view="ops:healthz"}'
        )
        >= 1
    )
    assert (
        sample(
            text, "studio_http_request_duration_seconds_count", '{status="4xx",view="unresolved"}'
        )
        >= 1
    )


def test_it_renders_with_redis_down(client, token, settings):
    from generations import ratelimit

    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    ratelimit.reset_limiter_cache()
    try:
        text = scrape(client)
    finally:
        ratelimit.reset_limiter_cache()
    assert "studio_queue_length" in text
    assert "studio_rate_used" not in text
