"""The pages' speed through Django's own tools, and what it must not break.

Fragments are cached under the data version (studio_dashboard/dataversion.py): a change
shows on the next request, one person's view is never served to another, and pages stay
up when Redis is away. The polled status card answers 304 while its row is unchanged.
Query counts do not grow with the rows.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil

from credits.models import LedgerEntry, WalletSnapshot
from generations import views
from generations.models import Generation, State
from reviews.models import Decision, Review, ReviewStatus, Tag
from studio_dashboard import dataversion
from tests.conftest import make_user, rapid_generation

pytestmark = pytest.mark.django_db

LIST = reverse("generations:list")
LIBRARY = reverse("library:index")
SPEND = reverse("credits:spend")
HTMX = {"HX-Request": "true"}


def make(owner, prompt="a red chair", **fields):
    return rapid_generation(owner, prompt=prompt, **fields)


def queries(client, url, data=None, **headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, data, headers=headers)
    assert response.status_code in (200, 286), response.status_code
    return response, [q["sql"] for q in captured.captured_queries]


def reads(sql, table):
    return any(f'"{table}"' in q for q in sql)


# --- Django's auth and sessions, as documented ---------------------------------------------


def test_the_project_uses_djangos_own_auth_sessions_and_htmx(settings):
    # django-axes' backend only refuses locked-out logins; Django's own authenticates.
    assert settings.AUTHENTICATION_BACKENDS == [
        "axes.backends.AxesStandaloneBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    assert "django_htmx.middleware.HtmxMiddleware" in settings.MIDDLEWARE
    assert not hasattr(settings, "FORM_RENDERER") or "Jinja2" not in settings.FORM_RENDERER


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


def test_expired_sessions_are_cleared_and_live_ones_kept(client, member):
    from django.contrib.sessions.models import Session

    from accounts.tasks import clear_expired_sessions

    client.force_login(member)
    live = client.cookies["sessionid"].value
    Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )
    clear_expired_sessions()
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
    assert client.get(LIST).status_code == 200


# --- cached fragments ----------------------------------------------------------------------


def test_an_unchanged_list_reads_no_rows_and_a_new_generation_shows_at_once(member_client, member):
    make(member, "a blue vase")
    first, _ = queries(member_client, LIST)
    second, sql = queries(member_client, LIST)
    assert b"a blue vase" in second.content
    assert not reads(sql, "generations_generation") and not reads(sql, "generations_asset")
    make(member, "a green lamp")
    third, sql = queries(member_client, LIST)
    assert b"a green lamp" in third.content and b"a blue vase" in third.content
    assert reads(sql, "generations_generation")


def test_a_state_change_by_a_conditional_update_shows_in_the_list(member_client, member):
    generation = make(member, "a brass bell")
    assert b"badge-queued" in member_client.get(LIST).content
    generation.cancel()  # a conditional UPDATE: no signal, the queryset bumps the version
    page = member_client.get(LIST).content
    assert b"badge-canceled" in page and b"badge-queued" not in page


def test_the_dispatchers_bookkeeping_leaves_the_version_alone(member):
    generation = make(member)
    before = dataversion.current()
    Generation.objects.filter(pk=generation.pk).update(due_at=timezone.now(), claim="x")
    assert dataversion.current() == before
    Generation.objects.filter(pk=generation.pk).update(progress=12)
    assert dataversion.current() != before


def test_a_lost_version_never_comes_back_as_an_earlier_one():
    first = dataversion.current()
    for _ in range(50):
        dataversion.bump()
    bumped = dataversion.current()
    assert bumped == first + 50
    cache.delete(dataversion.KEY)  # evicted, or Redis restarted empty
    assert not first <= dataversion.current() <= bumped


def test_filters_are_part_of_the_key_and_htmx_gets_only_the_results(member_client, member):
    make(member, "a blue vase")
    make(member, "a red chair")
    assert b"a red chair" in member_client.get(LIST).content
    filtered = member_client.get(LIST, {"q": "vase"}).content
    assert b"a blue vase" in filtered and b"a red chair" not in filtered
    partial = member_client.get(LIST, {"q": "vase"}, headers=HTMX).content
    assert b'id="results"' in partial and b"<html" not in partial and b"<form" not in partial
    assert b"a blue vase" in partial and b"a red chair" not in partial


def test_unknown_parameters_make_no_new_keys(member_client, member):
    make(member, "a blue vase")
    member_client.get(LIST)
    _, sql = queries(member_client, LIST, {"utm": "x1", "junk": "y"})
    assert not reads(sql, "generations_generation")


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
    partial = client.get(LIBRARY, {"tag": "seating"}, headers=HTMX).content
    assert b'id="library-results"' in partial and b"<html" not in partial


def test_the_cached_spend_review_shows_a_new_entry_and_wallet_at_once(client, admin_user):
    client.force_login(admin_user)
    before = client.get(SPEND).content
    assert b"4321" not in before and b"4,321" not in before
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ADJUSTMENT, user=admin_user, amount=-4321, note="typo fixed"
    )
    after = client.get(SPEND).content
    assert b"4321" in after or b"4,321" in after
    WalletSnapshot.objects.create(balance=Decimal("12.50"), rate_limit=3)
    assert b"12.50" in client.get(SPEND).content


def test_a_finished_generations_page_is_read_again_only_after_a_change(
    client, member, second_member
):
    # A teammate's view: the owner's page also holds the live "Finish this model" forms.
    generation = make(member, "a copper kettle", state=State.FINISHED)
    url = reverse("generations:detail", args=[generation.pk])
    client.force_login(second_member)
    queries(client, url)
    second, sql = queries(client, url)
    assert b"a copper kettle" in second.content
    assert not any('FROM "generations_asset"' in q for q in sql)
    assert not reads(sql, "credits_pricetable")
    later = make(member, "a copper kettle, taller", previous_version=generation)
    third = client.get(url).content
    assert f"#{later.pk}".encode() in third  # "Revised by" shows the new version at once


def test_a_flash_message_shows_once(client, member):
    from django.contrib.messages import constants

    client.force_login(member)
    generation = make(member, "a teapot", state=State.FINISHED)
    url = reverse("generations:detail", args=[generation.pk])
    response = client.post(reverse("generations:convert", args=[generation.pk]), {})
    assert response.status_code == 302
    assert b"Choose one of the listed formats." in client.get(url).content
    assert b"Choose one of the listed formats." not in client.get(url).content
    assert constants.ERROR  # the message was an error, shown in the page's flashes


# --- the polled status card: conditional GET -----------------------------------------------


def poll(client, url, etag=None):
    headers = dict(HTMX)
    if etag:
        headers["If-None-Match"] = etag
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    return response, [q["sql"] for q in captured.captured_queries]


def test_an_unchanged_card_is_a_304_with_nothing_rendered(client, member):
    from django.test.signals import template_rendered

    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    first, _ = poll(client, url)
    assert first.status_code == 200 and b'value="40"' in first.content
    assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]
    rendered = []
    template_rendered.connect(rendered.append)
    try:
        again, sql = poll(client, url, first["ETag"])
    finally:
        template_rendered.disconnect(rendered.append)
    assert again.status_code == 304 and again.content == b""
    assert not rendered
    # The user (the session comes from the cache) and the row's state: nothing else.
    assert len(sql) == 2, sql


def test_a_changed_card_is_rendered_again(client, member):
    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    first, _ = poll(client, url)
    Generation.objects.filter(pk=generation.pk).update(progress=55)
    changed, _ = poll(client, url, first["ETag"])
    assert changed.status_code == 200 and b'value="55"' in changed.content
    assert changed["ETag"] != first["ETag"]


def test_an_estimates_words_change_the_etag_within_a_minute(client, member, monkeypatch):
    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    first, _ = poll(client, url)
    clock = views.time.time()
    monkeypatch.setattr(views.time, "time", lambda: clock + 61)
    later, _ = poll(client, url, first["ETag"])
    assert later.status_code == 200


def test_a_queued_cards_place_moves_when_another_generation_does(client, member):
    ahead = make(member, "first in line")
    generation = make(member, "second in line")
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    first, _ = poll(client, url)
    assert b"number 2 in the queue" in first.content
    ahead.cancel()
    moved, _ = poll(client, url, first["ETag"])
    assert moved.status_code == 200 and b"number 1 in the queue" in moved.content


def test_a_final_card_stops_the_polling(client, member):
    generation = make(member, "a teapot", state=State.FAILED, failure_reason="upstream said no")
    client.force_login(member)
    response, _ = poll(client, reverse("generations:detail", args=[generation.pk]))
    assert response.status_code == 286


def test_a_card_someone_may_not_see_is_a_404_even_with_an_etag(client, member, django_user_model):
    generation = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    client.force_login(member)
    url = reverse("generations:detail", args=[generation.pk])
    first, _ = poll(client, url)
    stranger = make_user(django_user_model, "stranger")  # no group: sees only their own
    client.force_login(stranger)
    response, _ = poll(client, url, first["ETag"])
    assert response.status_code == 404
    missing, _ = poll(client, reverse("generations:detail", args=[generation.pk + 999]))
    assert missing.status_code == 404


@pytest.mark.parametrize("minutes", [2, 59, 61, 1439, 1501, 10080, 60000])
def test_the_words_of_a_wait_are_timeuntils(minutes):
    when = timezone.now() + timedelta(minutes=minutes, seconds=30)
    assert views._when_words(when) == f"in about {timeuntil(when)}"
    assert views._when_words(timezone.now() + timedelta(seconds=20)) == "any moment now"


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
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    # Django's setting_changed handler drops the cache connections both ways.
    yield


def test_pages_and_sessions_stay_up_without_redis(client, member, redis_away, caplog):
    make(member, "a blue vase")
    client.force_login(member)  # the session is written to the database all the same
    response = client.get(LIST)
    assert response.status_code == 200 and b"a blue vase" in response.content
    assert "Error 111" in caplog.text or "Connection refused" in caplog.text  # logged, not raised
    card = make(member, "a teapot", state=State.IN_PROGRESS, progress=40)
    polled = client.get(reverse("generations:detail", args=[card.pk]), headers=HTMX)
    assert polled.status_code == 200 and b'value="40"' in polled.content


def test_the_cache_has_a_redis_database_of_its_own(settings):
    from studio_dashboard.env import redis_database

    location = settings.CACHES["default"]["LOCATION"]
    assert location != settings.CELERY_BROKER_URL
    assert redis_database("redis://h:6379/15", flip=True) == "redis://h:6379/14"
    assert redis_database("redis://:pw@h:6379", flip=True) == "redis://:pw@h:6379/1"


def test_clearing_the_cache_leaves_the_brokers_database_alone():
    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.set("celery-like-key", b"queued message")
    cache.set("fragment", "body")
    try:
        cache.clear()
        assert cache.get("fragment") is None
        assert broker.get("celery-like-key") == b"queued message"
    finally:
        broker.delete("celery-like-key")


# --- query counts do not grow with the rows -------------------------------------------------


def _count(client, url, data=None):
    cache.clear()  # a miss: the worst case, every fragment rendered
    client.get(url, data)  # the session and the user's permissions, warmed alike
    cache.clear()
    _, sql = queries(client, url, data)
    return len(sql)


def test_page_query_counts_do_not_grow_with_rows(client, member, reviewer, admin_user):
    def add(n):
        for i in range(n):
            finished = make(member, f"prop {i}", state=State.FINISHED)
            _approve(finished, reviewer)
            LedgerEntry.objects.create(
                kind=LedgerEntry.Kind.ADJUSTMENT, user=member, amount=-1, note=f"n{i}"
            )

    pages = [(member, LIST), (member, LIBRARY), (admin_user, SPEND)]
    add(2)
    detail = reverse("generations:detail", args=[Generation.objects.first().pk])
    pages.append((member, detail))
    counts = {}
    for user, url in pages:
        client.force_login(user)
        counts[url] = _count(client, url)
    add(6)
    for user, url in pages:
        client.force_login(user)
        assert _count(client, url) == counts[url], url


def test_no_template_comment_leaks_into_a_page(client, admin_user):
    """Django's {# #} is one line only: a longer one is shown as text."""
    client.force_login(admin_user)
    for url in (LIST, LIBRARY, SPEND, reverse("home")):
        html = client.get(url).content
        assert b"{#" not in html and b"#}" not in html, url
