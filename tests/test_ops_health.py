"""/healthz: web, database and Redis, for load balancers and docker-compose."""

import socket
from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse

pytestmark = pytest.mark.django_db


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_it_answers_ok_without_login_when_everything_answers(client):
    response = client.get(reverse("ops:healthz"))
    assert response.status_code == 200
    assert response.json() == {"web": "ok", "database": "ok", "redis": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_it_is_served_at_the_plain_path(client):
    assert client.get("/healthz").status_code == 200


def test_it_answers_503_naming_redis_when_redis_is_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get(reverse("ops:healthz"))
    assert response.status_code == 503
    assert response.json() == {"web": "ok", "database": "ok", "redis": "unavailable"}


def test_it_answers_503_naming_the_database_when_the_database_is_down(client):
    with mock.patch(
        "ops.views.connection.cursor", side_effect=OperationalError("connection refused")
    ):
        response = client.get(reverse("ops:healthz"))
    assert response.status_code == 503
    assert response.json() == {"web": "ok", "database": "unavailable", "redis": "ok"}


def test_it_skips_redis_in_the_embedded_set_up(client, settings, tmp_path):
    settings.RATE_LIMITER = "database"
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get(reverse("ops:healthz"))
    assert response.status_code == 200
    assert response.json()["redis"] == "not used"


def test_it_checks_the_brokers_redis_too(client, settings):
    settings.RATE_LIMITER = "database"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert client.get(reverse("ops:healthz")).status_code == 503


def test_it_runs_one_query(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        client.get(reverse("ops:healthz"))


def test_it_refuses_post(client):
    assert client.post(reverse("ops:healthz")).status_code == 405
