"""Issue 16, item 3: repeated failed logins lock out the username and the address."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.lockout import client_ip

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")


@pytest.fixture(autouse=True)
def lockout_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("member", password="right-horse-battery")


def login(username, password, address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address
    )


def is_locked_out(response):
    page = response.content.decode()
    return response.status_code == 429 and "Too many failed logins" in page


def test_forty_wrong_passwords_lock_the_username_out_with_a_clear_message(member):
    answers = [login("member", f"guess-{i}", address=f"10.0.1.{i}") for i in range(40)]
    # The first four are the ordinary error; from the fifth on, a lockout (429).
    assert [a.status_code for a in answers[:4]] == [200] * 4
    assert "correct username and password" in answers[0].content.decode()
    assert all(is_locked_out(a) for a in answers[4:])
    assert "paused for 15 minutes" in answers[4].content.decode()
    # Even the right password waits out the cool-down, from any address.
    assert is_locked_out(login("member", "right-horse-battery", address="10.9.9.9"))


def test_one_address_trying_many_usernames_is_locked_out(member):
    answers = [login(f"user{i}", "guess", address="10.0.0.7") for i in range(6)]
    assert [is_locked_out(a) for a in answers] == [False] * 4 + [True] * 2
    # That address is paused for everyone ...
    assert is_locked_out(login("member", "right-horse-battery", address="10.0.0.7"))
    # ... another address logs in as usual.
    assert login("member", "right-horse-battery", address="10.0.0.8").status_code == 302


def test_the_lockout_ends_after_the_cool_down(member):
    for i in range(5):
        login("member", f"guess-{i}")
    assert is_locked_out(login("member", "right-horse-battery"))
    # The cool-down has passed (the attempts are moved back rather than the clock forward).
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(minutes=16)
        attempt.save()
    assert login("member", "right-horse-battery").status_code == 302


def test_an_admin_sees_the_lockout_and_clears_it(member, admin_user):
    for i in range(5):
        login("member", f"guess-{i}")
    admin = Client()
    admin.force_login(admin_user)
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and "member" in listing.content.decode()
    attempts = AccessAttempt.objects.filter(username="member")
    response = admin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [a.pk for a in attempts], "post": "yes"},
    )
    assert response.status_code == 302
    assert login("member", "right-horse-battery").status_code == 302


def test_failures_are_kept_in_the_database_for_every_web_process(settings):
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1"),  # no proxy: a client's header is ignored
        (1, "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the one proxy's view, not the client's claim
        (2, "6.6.6.6, 1.2.3.4, 10.0.0.2", "1.2.3.4"),
        (1, "", "10.0.0.1"),
    ],
)
def test_the_address_behind_trusted_proxies(settings, proxies, forwarded, expected):
    settings.LOGIN_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
