"""What makes pages cheap: one-query authentication (with the session, tests/test_sessions.py)
and bodies cached in Redis and in each process.

Each speed-up is checked for what it must not break: a role change, a
deactivation or a logout takes effect on the next request; a cached body never
shows stale rows after a change the fingerprint sees, and never shows one
user's view to another; pages stay up when Redis is away.
"""

from datetime import timedelta

import django_htmx.middleware
import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil

from generations import views
from generations.models import Generation, State
from reviews.models import Decision, Review, ReviewStatus, Tag
from studio_dashboard import pagecache
from studio_dashboard.auth import Backend
from studio_dashboard.htmx import HtmxDetails
from tests.conftest import make_user, rapid_generation

pytestmark = pytest.mark.django_db

LIST = reverse("generations:list")
LIBRARY = reverse("library:index")


def make(owner, prompt="a red chair", **fields):
    return rapid_generation(owner, prompt=prompt, **fields)


def main(response):
    """The page's <main> (the rest holds the per-request CSRF token)."""
    html = response.content.decode()
    return html[html.index("<main") : html.index("</main>")]


def queries(client, url, **headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response, [q["sql"] for q in captured.captured_queries]


# --- authentication -----------------------------------------------------------------------


def test_the_user_and_all_permissions_come_in_one_query(member):
    with CaptureQueriesContext(connection) as captured:
        user = Backend().get_user(member.pk)
        assert user.has_perm("generations.add_generation")
        assert user.has_perm("generations.view_generation")
        assert not user.has_perm("generations.view_spend")
    assert len(captured) == 1
    assert user.get_all_permissions() == member.get_all_permissions()


def ridden_with(user, rider, htmx=False):
    """What a view decorated with ``read_with_user(rider)`` finds, and the queries made."""
    from django.test import RequestFactory

    from studio_dashboard import auth

    request = RequestFactory().get("/", headers={"HX-Request": "true"} if htmx else {})

    @auth.read_with_user(rider)
    def view(request):
        token = auth.current_request.set(request)
        try:
            assert Backend().get_user(user.pk) == user
        finally:
            auth.current_request.reset(token)
        return auth.ridden(request)

    with CaptureQueriesContext(connection) as captured:
        found = view(request)
    return request, found, len(captured)


def test_a_views_rider_is_read_in_the_users_query(member):
    from studio_dashboard import auth

    # A full page: the figures, then the rider's columns, in one query.
    request, found, count = ridden_with(member, lambda r: ("SELECT %s::int AS n, 'x' AS s", [5]))
    assert (found, count) == ((5, "x"), 1)
    assert request._studio_figures[0] == member.pk
    _, found, count = ridden_with(member, lambda r: ("SELECT %s::int AS n", [6]), htmx=True)
    assert (found, count) == ((6,), 1)
    # A statement that selects nothing: None, and the user is still found.
    _, found, _ = ridden_with(member, lambda r: ("SELECT 1 AS n WHERE %s", [False]))
    assert found is None
    # No rider: the view reads its row itself.
    _, found, _ = ridden_with(member, lambda r: None)
    assert found is auth.NOT_READ


def test_own_and_group_permissions_are_both_read(django_user_model):
    user = make_user(django_user_model, "solo")
    user.user_permissions.add(Permission.objects.get(codename="view_spend"))
    loaded = Backend().get_user(user.pk)
    assert loaded.get_all_permissions() == {"generations.view_spend"}
    assert loaded.get_user_permissions() == {"generations.view_spend"}
    assert loaded.get_group_permissions() == set()


def test_a_superuser_has_every_permission(django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-123456")
    loaded = Backend().get_user(root.pk)
    assert loaded.has_perm("generations.view_spend")
    assert (
        loaded.get_all_permissions()
        == django_user_model.objects.get(pk=root.pk).get_all_permissions()
    )


def test_unknown_inactive_and_malformed_ids_get_no_user(member):
    assert Backend().get_user(10**9) is None
    assert Backend().get_user("not-a-number") is None
    member.is_active = False
    member.save()
    assert Backend().get_user(member.pk) is None


def test_a_role_change_shows_on_the_next_request(client, member):
    client.force_login(member)
    assert client.get(reverse("generations:new")).status_code == 200
    member.groups.remove(Group.objects.get(name="Members"))
    assert client.get(reverse("generations:new")).status_code == 403


def test_a_deactivated_user_is_logged_out_on_the_next_request(client, member):
    client.force_login(member)
    assert client.get(LIST).status_code == 200
    member.is_active = False
    member.save()
    response = client.get(LIST)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_logout_ends_the_session(client, member):
    client.force_login(member)
    client.get(LIST)
    cookie = client.cookies["sessionid"].value
    client.post(reverse("logout"))
    client.cookies["sessionid"] = cookie  # replaying the old cookie after logout
    assert client.get(LIST).status_code == 302


def test_a_flushed_cache_logs_nobody_out(client, member):
    client.force_login(member)
    cache.clear()
    assert client.get(LIST).status_code == 200


# --- cached bodies ------------------------------------------------------------------------


def test_the_list_body_is_cached_and_a_new_generation_shows_at_once(member_client, member):
    make(member, "a blue vase")
    first, _ = queries(member_client, LIST)
    second, sql = queries(member_client, LIST)
    assert main(second) == main(first)
    assert not any("generations_asset" in q for q in sql)  # rows not read again
    make(member, "a green lamp")
    third, _ = queries(member_client, LIST)
    assert b"a green lamp" in third.content and b"a blue vase" in third.content


def test_a_state_change_shows_in_the_cached_list(member_client, member):
    generation = make(member, "a brass bell")
    assert b"badge-queued" in member_client.get(LIST).content
    generation.cancel()  # a transition stamps state_changed_at, which the fingerprint reads
    page = member_client.get(LIST).content
    assert b"badge-canceled" in page and b"badge-queued" not in page


def test_filters_are_part_of_the_key(member_client, member):
    make(member, "a blue vase")
    make(member, "a red chair")
    assert b"a red chair" in member_client.get(LIST).content
    filtered = member_client.get(LIST, {"q": "vase"}).content
    assert b"a blue vase" in filtered and b"a red chair" not in filtered
    partial = member_client.get(LIST, {"q": "vase"}, headers={"HX-Request": "true"}).content
    assert b"<form" not in partial and b"a blue vase" in partial


def test_unknown_parameters_make_no_new_bodies(member_client, member):
    make(member, "a blue vase")
    member_client.get(LIST)
    with CaptureQueriesContext(connection) as captured:
        member_client.get(LIST, {"utm": "x1", "junk": "y"})
    assert not any("generations_asset" in q["sql"] for q in captured.captured_queries)


def test_with_the_body_cache_off_every_body_is_rendered(member_client, member, settings):
    settings.PAGE_BODY_CACHE = False
    make(member, "a blue vase")
    member_client.get(LIST)
    with CaptureQueriesContext(connection) as captured:
        member_client.get(LIST)
    assert any("generations_asset" in q["sql"] for q in captured.captured_queries)


def test_one_users_view_is_never_served_to_another(client, member, django_user_model):
    make(member, "the team's chair")
    stranger = make_user(django_user_model, "stranger")  # no group: sees only their own
    stranger.user_permissions.add(Permission.objects.get(codename="add_generation"))
    make(stranger, "the stranger's stool")
    client.force_login(member)
    team_view = client.get(LIST).content
    assert b"the stranger&#x27;s stool" in team_view and b"the team&#x27;s chair" in team_view
    client.force_login(stranger)
    own_view = client.get(LIST).content
    assert b"the stranger&#x27;s stool" in own_view
    assert b"the team&#x27;s chair" not in own_view


def _approve(generation, reviewer):
    review = Review.objects.create(generation=generation, reviewer=reviewer, decision="approved")
    ReviewStatus.objects.update_or_create(
        generation=generation,
        defaults={
            "root_id": generation.pk,
            "state": Decision.APPROVED,
            "review": review,
            "decided_at": review.created_at,
        },
    )


def test_a_decision_and_a_tag_show_in_the_cached_library(client, member, reviewer):
    chair = make(member, "a red chair", state=State.FINISHED)
    vase = make(member, "a blue vase", state=State.FINISHED)
    _approve(chair, reviewer)
    client.force_login(reviewer)
    page = client.get(LIBRARY).content
    assert b"a red chair" in page and b"a blue vase" not in page
    _approve(vase, reviewer)
    assert b"a blue vase" in client.get(LIBRARY).content
    assert b"a red chair" not in client.get(LIBRARY, {"tag": "seating"}).content
    Tag.objects.create(root=chair, name="seating", added_by=reviewer)
    assert b"a red chair" in client.get(LIBRARY, {"tag": "seating"}).content


def test_the_fingerprint_is_read_once_per_request(rf, member):
    request = rf.get(LIST)
    with CaptureQueriesContext(connection) as captured:
        first = pagecache.fingerprint(request)
        assert pagecache.fingerprint(request) == first
    assert len(captured) == 1
    make(member)
    assert pagecache.fingerprint(rf.get(LIST)) != first


# --- Redis away ---------------------------------------------------------------------------


@pytest.fixture
def redis_away(settings):
    """The cache pointed at a closed port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "studio_dashboard.cache.TolerantRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "KEY_PREFIX": "studio",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    # Django's setting_changed handler drops the cache connections both ways.
    yield


def test_pages_stay_up_without_redis(client, member, redis_away, caplog):
    make(member, "a blue vase")
    client.force_login(member)  # the session is written to the database all the same
    response = client.get(LIST)
    assert response.status_code == 200 and b"a blue vase" in response.content
    assert "treated as a miss" in caplog.text
    # Skipped for a while after the failure: the next page waits for no timeout.
    caplog.clear()
    assert client.get(LIST).status_code == 200
    assert "treated as a miss" not in caplog.text


def test_clearing_the_cache_leaves_other_keys_in_its_redis_alone():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    client.set("celery-like-key", b"queued message")
    cache.set("page", "body")
    try:
        cache.clear()
        assert cache.get("page") is None
        assert client.get("celery-like-key") == b"queued message"
    finally:
        client.delete("celery-like-key")


def test_the_cached_spend_review_shows_a_new_entry_and_wallet_at_once(client, admin_user):
    from decimal import Decimal

    from generations.models import LedgerEntry, WalletSnapshot

    client.force_login(admin_user)
    spend = reverse("credits:spend")
    before = client.get(spend).content
    assert b"-4,321" not in before and b"-4321" not in before
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ADJUSTMENT, user=admin_user, amount=-4321, note="typo fixed"
    )
    after = client.get(spend).content
    assert b"4321" in after or b"4,321" in after
    WalletSnapshot.objects.create(balance=Decimal("12.50"), rate_limit=3)
    assert b"12.50" in client.get(spend).content


# --- the header's figures, read with the fingerprint ---------------------------------------


def _header(rf, user):
    request = rf.get(LIST)
    request.user = user
    return pagecache.header(request)


def test_the_unread_count_matches_the_notifications_own_rule(rf, member, second_member):
    from django.utils import timezone

    from reviews.models import Notification

    def note(recipient, **fields):
        return Notification.objects.create(
            recipient=recipient,
            kind="decision",
            key=f"k{Notification.objects.count()}",
            message="m",
            **fields,
        )

    note(member)
    note(member)
    note(member, read_at=timezone.now())
    note(member, in_app=False)
    note(second_member)
    assert _header(rf, member).unread == Notification.objects.unread_for(member).count() == 2
    assert _header(rf, second_member).unread == 1


def test_budgeted_matches_the_budgets_that_apply(rf, member, second_member, admin_user):
    from credits import budgets
    from credits.models import Budget

    assert not _header(rf, member).budgeted
    Budget.objects.create(user=second_member, provider="", monthly_limit=100, updated_by=admin_user)
    Budget.objects.create(
        user=member, provider="tripo_v3", monthly_limit=100, updated_by=admin_user
    )
    for user in (member, second_member):
        assert _header(rf, user).budgeted == budgets.applicable(user).exists()
    assert not _header(rf, member).budgeted  # a provider cap alone is not the header's
    Budget.objects.create(user=None, provider="", monthly_limit=1000, updated_by=admin_user)
    assert _header(rf, member).budgeted


def test_a_page_reads_no_budget_and_no_alert_when_there_are_none(client, admin_user):
    client.force_login(admin_user)
    client.get(LIST)
    _, sql = queries(client, LIST)
    assert not any("credits_budget" in q and "monthly_limit" in q for q in sql)
    assert not any('FROM "generations_alert"' in q and "message" in q for q in sql)


def test_an_open_alert_and_a_spent_budget_still_show(client, admin_user, member):
    from credits.models import Budget
    from generations.models import Alert, LedgerEntry

    Alert.objects.create(message="The upstream refused our API key.")
    client.force_login(admin_user)
    assert b"The upstream refused our API key." in client.get(LIST).content
    Budget.objects.create(user=member, provider="", monthly_limit=100, updated_by=admin_user)
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ADJUSTMENT, user=member, amount=-90, note="spent elsewhere"
    )
    client.force_login(member)
    page = client.get(LIST).content.decode()
    assert 'id="budget-banner"' in page and "90%" in page


# --- whole pages ----------------------------------------------------------------------------


def rendered_templates(client, url):
    """The templates rendered to answer ``url``: none when the whole page came from the cache."""
    from django.test.signals import template_rendered

    names = []

    def seen(sender, template, **kwargs):
        names.append(template.name)

    template_rendered.connect(seen)
    try:
        response = client.get(url)
    finally:
        template_rendered.disconnect(seen)
    assert response.status_code == 200
    return response, names


def csrf_input(response):
    import re

    html = response.content.decode()
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    header = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)
    assert tokens and all(token == tokens[0] for token in tokens)
    return tokens[0], header


def test_a_whole_page_is_cached_and_each_browser_gets_its_own_working_csrf_token(member):
    from django.test import Client

    make(member, "a blue vase")
    browsers = [Client(enforce_csrf_checks=True) for _ in range(2)]
    tokens = []
    for browser in browsers:
        browser.force_login(member)
        rendered_templates(browser, LIST)
        response, names = rendered_templates(browser, LIST)
        tokens.append(csrf_input(response))
    assert names == []  # the second browser's page came whole from the cache
    assert tokens[0][0] != tokens[1][0]
    for (form_token, header_token), browser in zip(tokens, browsers, strict=True):
        assert pagecache.stand_in("csrf") not in form_token
        # Each browser's token passes the CSRF check with that browser's cookie.
        answer = browser.post(reverse("logout"), {"csrfmiddlewaretoken": form_token})
        assert answer.status_code == 302
        browser.force_login(member)
        answer = browser.post(reverse("logout"), headers={"X-CSRFToken": header_token})
        assert answer.status_code == 302
    # And a token from one browser's page does not pass with the other's cookie.
    browsers[0].force_login(member)
    browsers[0].get(LIST)
    refused = browsers[0].post(reverse("logout"), {"csrfmiddlewaretoken": "x" * 64})
    assert refused.status_code == 403


def test_the_csrf_token_masks_the_browsers_secret_anew_for_each_page():
    from django.middleware.csrf import (
        CSRF_ALLOWED_CHARS,
        CsrfViewMiddleware,
        _unmask_cipher_token,
    )
    from django.test import RequestFactory

    secret = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    request = RequestFactory().get("/", headers={"Cookie": f"csrftoken={secret}"})
    CsrfViewMiddleware(lambda r: None).process_request(request)
    tokens = {pagecache.csrf_token(request) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 64 and set(token) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == secret
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True  # the cookie is renewed
    # Without a cookie, Django's own makes the secret (and sets the cookie).
    fresh = RequestFactory().get("/")
    token = pagecache.csrf_token(fresh)
    assert _unmask_cipher_token(token) == fresh.META["CSRF_COOKIE"]


def test_each_person_gets_their_own_header_from_the_cache(client, member, second_member):
    make(member, "a blue vase")
    client.force_login(member)
    client.get(LIST)
    assert "Log out member<" in client.get(LIST).content.decode()
    client.force_login(second_member)
    client.get(LIST)
    page = client.get(LIST).content.decode()
    assert "Log out member2<" in page and "Log out member<" not in page


def test_a_new_notification_and_a_role_change_show_in_the_header_at_once(client, member):
    from reviews.models import Notification

    client.force_login(member)
    client.get(LIST)
    assert 'data-testid="nav-notifications">Notifications</a>' in client.get(LIST).content.decode()
    Notification.objects.create(recipient=member, kind="decision", key="k1", message="m")
    assert "1 unread" in client.get(LIST).content.decode()
    spend = reverse("credits:spend")
    assert spend not in client.get(LIST).content.decode()
    member.groups.add(Group.objects.get(name="Admins"))
    assert spend in client.get(LIST).content.decode()


def test_a_flash_message_shows_once_and_is_never_cached(client, member):
    from django.contrib.messages import constants
    from django.contrib.messages.storage.base import Message
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.http import HttpRequest

    client.force_login(member)
    client.get(LIST)
    client.get(LIST)  # the page is in the cache now
    encoded = CookieStorage(HttpRequest())._encode([Message(constants.SUCCESS, "Tag saved.")])
    client.cookies["messages"] = encoded
    response, names = rendered_templates(client, LIST)
    assert "Tag saved." in response.content.decode() and names  # rendered, not from the cache
    assert "Tag saved." not in client.get(LIST).content.decode()


# --- the polled progress card ---------------------------------------------------------------


def test_visible_one_loads_the_row_exactly_as_the_orm_does(member):
    from django.db.models import Model

    generation = make(
        member,
        "a teapot",
        options={"enable_pbr": True, "face_count": 40000},
        state=State.IN_PROGRESS,
        progress=40,
    )
    loaded = Generation.objects.visible_one(member, generation.pk)
    expected = Generation.objects.get(pk=generation.pk)
    fields = [f.attname for f in Generation._meta.concrete_fields]
    assert [getattr(loaded, name) for name in fields] == [
        getattr(expected, name) for name in fields
    ]
    assert loaded.options == {"enable_pbr": True, "face_count": 40000}  # JSON decoded
    assert isinstance(loaded, Model) and not loaded._state.adding
    assert loaded._state.db == expected._state.db


def test_visible_one_keeps_each_persons_scope(member, django_user_model):
    stranger = make_user(django_user_model, "stranger")  # no group: sees only their own
    theirs = make(member, "the team's chair")
    own = make(stranger, "the stranger's stool")
    assert Generation.objects.visible_one(member, own.pk) == own  # team scope sees all
    assert Generation.objects.visible_one(stranger, own.pk) == own
    assert Generation.objects.visible_one(stranger, theirs.pk) is None
    for junk in (str(own.pk + 1000), "x", None):
        assert Generation.objects.visible_one(member, junk) is None


def test_the_polled_card_reads_the_user_and_the_generation_in_one_query(
    client, member, django_user_model
):
    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    client.get(url, headers={"HX-Request": "true"})
    response, sql = queries(client, url, HX_Request="true")
    assert b'value="40"' in response.content
    assert len(sql) == 1, sql
    assert "LEFT JOIN LATERAL" in sql[0]
    stranger = make_user(django_user_model, "stranger")  # no group: sees only their own
    client.force_login(stranger)
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 404
    own = make(stranger, "a kettle", state=State.IN_PROGRESS, progress=10)
    own_url = reverse("generations:detail", args=[own.pk])
    assert b'value="10"' in client.get(own_url, headers={"HX-Request": "true"}).content
    missing = reverse("generations:detail", args=[own.pk + 999])
    assert client.get(missing, headers={"HX-Request": "true"}).status_code == 404


def test_the_card_of_one_in_flight_is_rendered_once_for_what_it_shows(client, member, monkeypatch):
    rendered = []
    real = views.render_to_string
    monkeypatch.setattr(
        views, "render_to_string", lambda *a, **k: rendered.append(a[0]) or real(*a, **k)
    )
    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    first = client.get(url, headers={"HX-Request": "true"})
    second = client.get(url, headers={"HX-Request": "true"})
    assert first.content == second.content and len(rendered) == 1
    # A change to the row shows on the next poll.
    Generation.objects.filter(pk=generation.pk).update(progress=55)
    third = client.get(url, headers={"HX-Request": "true"})
    assert b'value="55"' in third.content and len(rendered) == 2
    # So does a change to the estimate's words, the row unchanged.
    monkeypatch.setattr(views, "_when_words", lambda when: "in about 3 hours")
    fourth = client.get(url, headers={"HX-Request": "true"})
    assert b"Expected in about 3 hours." in fourth.content and len(rendered) == 3


@pytest.mark.parametrize(
    "minutes", [2, 59, 60, 61, 119, 1439, 1440, 1501, 10079, 10080, 40319, 40321, 60000]
)
def test_the_words_of_a_wait_are_timeuntils_whoever_asked_before(minutes):
    when = timezone.now() + timedelta(minutes=minutes, seconds=30)
    views._when_words(when - timedelta(seconds=10))  # the same whole minutes, kept
    assert views._when_words(when) == f"in about {timeuntil(when)}"


def test_a_polled_card_never_builds_request_headers(client, member):
    """request.htmx reads the few headers htmx sends from META (studio_dashboard/htmx.py)."""
    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    response = client.get(url, headers={"HX-Request": "true"})
    assert b'value="40"' in response.content
    assert "headers" not in response.wsgi_request.__dict__


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HX-Request": "true", "HX-Target": "conversions", "HX-Boosted": "true"},
        {"HX-Request": "false", "HX-Trigger": "save"},
        {
            "HX-Request": "true",
            "HX-Current-URL": "http%3A%2F%2Ftestserver%2Fa%20b%2F",
            "HX-Current-URL-URI-AutoEncoded": "true",
            "HX-Prompt": "caf%C3%A9",
        },
    ],
)
def test_htmx_details_read_from_meta_answer_as_django_htmxs(rf, headers):
    request = rf.get("/", headers=headers)
    ours, theirs = HtmxDetails(request), django_htmx.middleware.HtmxDetails(request)
    assert bool(ours) == bool(theirs) == (headers.get("HX-Request") == "true")
    for name in ("boosted", "current_url", "current_url_abs_path", "prompt", "target", "trigger"):
        assert getattr(ours, name) == getattr(theirs, name), name
    if "HX-Current-URL" in headers:
        assert ours.current_url_abs_path == "/a b/"


def test_recent_pages_expire_and_keep_at_most_their_number(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(pagecache.time, "monotonic", lambda: clock[0])
    recent = pagecache.Recent(size=2, ttl=20)
    recent.set("a", "A")
    recent.set("b", "B")
    assert recent.get("a") == "A"  # a is now the most recent
    recent.set("c", "C")
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == ("A", None, "C")
    clock[0] += 21
    assert recent.get("a") is None and recent.get("c") is None


def test_a_page_this_process_served_is_served_again_without_asking_redis(
    member_client, member, monkeypatch
):
    make(member, "a blue vase")
    member_client.get(LIST)
    first = member_client.get(LIST)
    asked = []
    real_get = pagecache.cache.get
    monkeypatch.setattr(
        pagecache.cache, "get", lambda key, *a: asked.append(key) or real_get(key, *a)
    )
    again, names = rendered_templates(member_client, LIST)
    assert names == [] and main(again) == main(first)
    assert not [key for key in asked if key.startswith("page:")]
    make(member, "a green lamp")  # a change still shows at once
    assert b"a green lamp" in member_client.get(LIST).content


def test_a_cached_full_page_makes_one_query_and_a_fragment_reads_no_figures(member_client, member):
    generation = make(member, "a blue vase", state=State.IN_PROGRESS, progress=10)
    member_client.get(LIST)
    _, sql = queries(member_client, LIST)
    assert len(sql) == 1, sql  # the user, their permissions, the fingerprint and the header
    assert "auth_user" in sql[0] and "generations_ledgerentry" in sql[0]
    card = reverse("generations:detail", args=[generation.pk])
    _, sql = queries(member_client, card, HX_Request="true")
    assert not any("generations_ledgerentry" in q for q in sql)


def test_figures_read_for_someone_else_are_read_again(rf, member, second_member):
    request = rf.get(LIST)
    request.user = member
    row = (None,) * len(pagecache.Fingerprint._fields) + (7, False, False)
    pagecache.remember(request, second_member.pk, row)  # a session that turned out stale
    with CaptureQueriesContext(connection) as captured:
        assert pagecache.header(request).unread == 0
    assert len(captured) == 1
