"""Issue 16, item 7: the debug page and error reports show no password inside a URL."""

import sys

import pytest
from django.test import RequestFactory
from django.views.debug import get_default_exception_reporter_filter, technical_500_response

DATABASE_URL = "postgres://studio:db-hunter2@postgres:5432/studio"
REDIS_URL = "redis://:redis-hunter2@redis:6379/0"
BROKER_URL = "rediss://broker:broker-hunter2@redis.example.com:6380/0?ssl_cert_reqs=none"
TOKEN_URL = "https://tok-hunter2@git.example.com/repo.git"
QUERY_URL = "redis://redis:6379/1?password=query-hunter2&db=1"
SECRETS = ["db-hunter2", "redis-hunter2", "broker-hunter2", "tok-hunter2", "query-hunter2"]


@pytest.fixture
def url_settings(settings):
    settings.DATABASE_URL = DATABASE_URL
    settings.REDIS_URL = REDIS_URL
    settings.CELERY_BROKER_URL = BROKER_URL
    settings.CACHES = {
        **settings.CACHES,
        "urls": {
            "BACKEND": "django.core.cache.backends.dummy.DummyCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"replicas": [QUERY_URL, (TOKEN_URL,)]},
        },
    }
    return settings


def test_it_masks_the_password_of_every_url_shaped_setting(url_settings):
    safe = get_default_exception_reporter_filter().get_safe_settings()
    text = repr(safe)
    for secret in SECRETS:
        assert secret not in text
    assert safe["DATABASE_URL"] == "postgres://studio:********************@postgres:5432/studio"
    assert safe["REDIS_URL"] == "redis://:********************@redis:6379/0"
    assert safe["CELERY_BROKER_URL"].startswith("rediss://broker:********************@redis.")
    assert safe["CACHES"]["urls"]["LOCATION"] == safe["REDIS_URL"]
    replicas = safe["CACHES"]["urls"]["OPTIONS"]["replicas"]
    assert replicas[0] == "redis://redis:6379/1?password=********************&db=1"
    assert replicas[1] == ("https://********************@git.example.com/repo.git",)


def test_it_leaves_urls_without_credentials_alone(url_settings):
    safe = get_default_exception_reporter_filter().get_safe_settings()
    assert safe["STUDIO_BASE_URL"] == url_settings.STUDIO_BASE_URL
    assert safe["SANDBOX_URL"] == url_settings.SANDBOX_URL


def test_the_technical_500_page_shows_no_url_password(url_settings):
    url_settings.DEBUG = True
    # runserver copies the environment into request.META.
    request = RequestFactory().get("/boom/", DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    page = response.content.decode()
    assert response.status_code == 500
    assert "DATABASE_URL" in page and "CELERY_BROKER_URL" in page and "REDIS_URL" in page
    for secret in SECRETS:
        assert secret not in page
    assert "postgres://studio:********************@postgres:5432/studio" in page
