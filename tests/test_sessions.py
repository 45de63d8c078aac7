"""Sessions (accounts/sessions.py): database rows that name their user, read on
PostgreSQL in the same query as the user, their permissions and what the page reads
with them; refused once expired, logged out or their user gone; cleared daily."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import tasks
from accounts.models import Session

pytestmark = pytest.mark.django_db

LIST = reverse("generations:list")


def store(session_key=None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def signed_in(client, user):
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_a_session_row_names_its_user_and_an_anonymous_one_nobody(client, member):
    key = signed_in(client, member)
    assert Session.objects.get(session_key=key).user_id == member.pk
    anonymous = store()
    anonymous["theme"] = "dark"
    anonymous.save()
    assert Session.objects.get(session_key=anonymous.session_key).user_id is None
    # Read back without a request (a management command, a test's client.session).
    assert store(key)[SESSION_KEY] == str(member.pk)


def test_a_page_reads_its_session_with_the_user_in_one_query(client, member):
    signed_in(client, member)
    client.get(LIST)  # the page is cached now
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST)
    assert response.status_code == 200
    assert len(captured) == 1, [q["sql"][:80] for q in captured.captured_queries]
    sql = captured.captured_queries[0]["sql"]
    assert '"accounts_session"' in sql and "auth_user" in sql


def test_the_polled_card_reads_session_user_and_generation_in_one_query(client, member, generating):
    signed_in(client, member)
    url = reverse("generations:detail", args=[generating.pk])
    client.get(url, headers={"HX-Request": "true"})  # the planner learns its durations
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200 and b'value="30"' in response.content
    assert len(captured) == 1, [q["sql"][:60] for q in captured.captured_queries]


def test_logout_ends_the_session_and_its_cookie_replayed_is_refused(client, member):
    key = signed_in(client, member)
    assert client.get(LIST).status_code == 200
    client.post(reverse("logout"))
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    response = client.get(LIST)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_an_expired_session_is_refused(client, member):
    key = signed_in(client, member)
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(LIST)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_a_session_whose_user_is_gone_or_inactive_is_refused(client, member, django_user_model):
    from tests.conftest import make_user

    signed_in(client, member)
    member.is_active = False
    member.save()
    assert client.get(LIST).status_code == 302
    gone = make_user(django_user_model, "leaving")
    signed_in(client, gone)
    gone.delete()
    assert client.get(LIST).status_code == 302


def test_a_changed_password_ends_other_sessions(client, member):
    signed_in(client, member)
    member.set_password("a-new-password-42")
    member.save()
    assert client.get(LIST).status_code == 302


def test_a_junk_session_cookie_is_anonymous(client):
    for junk in ["x", "' OR 1=1 --", "a" * 40, "ü" * 32]:
        client.cookies[settings.SESSION_COOKIE_NAME] = junk
        assert client.get(LIST).status_code == 302


def test_a_row_naming_another_user_than_its_data_reads_the_datas_user(
    client, member, django_user_model
):
    """The column only lets the query join the user: the signed data decides who it is."""
    from tests.conftest import make_user

    other = make_user(django_user_model, "other")
    key = signed_in(client, member)
    Session.objects.filter(session_key=key).update(user_id=other.pk)
    response = client.get(LIST)
    assert response.status_code == 200 and response.wsgi_request.user == member


def test_expired_sessions_are_cleared_daily_and_live_ones_kept(client, member):
    from studio_dashboard.celery import _beat_schedule

    live = signed_in(client, member)
    old = store()
    old["x"] = 1
    old.set_expiry(-1)
    old.save()
    tasks.clear_expired_sessions()
    assert set(Session.objects.values_list("session_key", flat=True)) == {live}
    schedule = _beat_schedule()["clear expired sessions"]
    assert schedule["task"] == "accounts.tasks.clear_expired_sessions"
    assert schedule["schedule"] == 86400.0


def test_decoded_session_data_is_kept_by_its_signed_text_and_handed_out_as_copies(settings):
    from accounts import sessions

    session = store()
    session["theme"] = "dark"
    text = session.encode({"theme": "dark"})
    first = session.decode(text)
    first["theme"] = "light"  # a caller changing its copy
    assert session.decode(text) == {"theme": "dark"}
    assert any(key[-1] == text for key in sessions._decoded.pages)
    # Data holding more than plain values is decoded every time, never kept.
    nested = session.encode({"cart": [1, 2]})
    assert session.decode(nested) == {"cart": [1, 2]}
    assert not any(key[-1] == nested for key in sessions._decoded.pages)
    # The same text under another secret key is checked again, and refused.
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert session.decode(text) == {}
    # Junk is refused and not kept.
    assert session.decode("junk:abc:def") == {}
    assert not any(key[-1] == "junk:abc:def" for key in sessions._decoded.pages)
