"""Rows kept across requests until PostgreSQL notifies a change (studio_dashboard/liverows.py).

The polled status card's one query (session, user, permissions, generation) is
answered from memory while none of its rows changed. These tests run outside a
test transaction, as requests do, and change rows through a second connection
the way a worker would: every change must show on the next poll.
"""

import re
import time
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Session
from generations.models import Asset, Generation, LedgerEntry, State
from studio_dashboard import liverows
from tests.conftest import rapid_generation

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN is PostgreSQL's"),
]

POLL = {"HX-Request": "true"}


@pytest.fixture
def generation(generating):
    return generating


@pytest.fixture
def card(client, member, generation):
    client.force_login(member)
    return reverse("generations:detail", args=[generation.pk])


@pytest.fixture
def elsewhere():
    """A second connection, as a worker or another web process writes."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        yield other


def poll(client, url):
    """The card, and how many queries answering it took."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=POLL)
    return response, len(captured)


def poll_until(client, url, done, seconds=5.0):
    """Poll until ``done(response)``: a change made on another connection reaches this one
    as soon as PostgreSQL hands its notification over, not at a known instant."""
    deadline = time.monotonic() + seconds
    while True:
        response, queries = poll(client, url)
        if done(response) or time.monotonic() > deadline:
            return response, queries
        time.sleep(0.01)


def test_an_unchanged_card_is_answered_without_a_query(client, card):
    first, queries = poll(client, card)
    assert first.status_code == 200 and b'value="30"' in first.content
    # The first: LISTEN and its check, the planner's durations, then the card's query.
    assert queries == 4
    again, queries = poll(client, card)
    assert again.status_code == 200 and again.content == first.content
    assert queries == 0


def test_a_worker_s_change_to_the_generation_shows_on_the_next_poll(
    client, card, generation, elsewhere
):
    poll(client, card)
    elsewhere.execute(
        "UPDATE generations_generation SET progress = 70 WHERE id = %s", [generation.pk]
    )
    response, queries = poll_until(client, card, lambda r: b'value="70"' in r.content)
    assert b'value="70"' in response.content
    assert queries == 1  # read again once, then kept again
    assert poll(client, card)[1] == 0


def test_a_change_to_another_generation_keeps_this_card(client, card, member, elsewhere):
    other = rapid_generation(member, prompt="a chair")
    poll(client, card)
    elsewhere.execute("UPDATE generations_generation SET progress = 5 WHERE id = %s", [other.pk])
    # The other row's notification has arrived once this connection hears a later one.
    elsewhere.execute("SELECT pg_notify(%s, 'hello:test')", [liverows.CHANNEL])
    time.sleep(0.2)
    assert poll(client, card)[1] == 0


def test_a_change_this_process_commits_shows_at_once(client, card, generation):
    poll(client, card)
    # Through the same connection the requests use: its notification comes back with
    # the commit, so no wait is needed.
    Generation.objects.filter(pk=generation.pk).update(progress=55)
    response, queries = poll(client, card)
    assert b'value="55"' in response.content and queries == 1


def test_a_session_logged_out_elsewhere_is_refused_on_the_next_poll(client, card, elsewhere):
    assert poll(client, card)[0].status_code == 200
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    elsewhere.execute("DELETE FROM accounts_session WHERE session_key = %s", [key])
    response, _ = poll_until(client, card, lambda r: r.status_code != 200)
    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_deactivated_user_is_refused_on_the_next_poll(client, card, member, elsewhere):
    poll(client, card)
    elsewhere.execute("UPDATE auth_user SET is_active = false WHERE id = %s", [member.pk])
    response, _ = poll_until(client, card, lambda r: r.status_code != 200)
    assert response.status_code == 302


def test_a_role_taken_away_shows_on_the_next_poll(client, reviewer, generation, elsewhere):
    """A reviewer sees the team's generations; out of the role, only their own: the next
    poll of a member's card is a 404."""
    client.force_login(reviewer)
    url = reverse("generations:detail", args=[generation.pk])
    assert poll(client, url)[0].status_code == 200
    assert poll(client, url)[1] == 0
    elsewhere.execute("DELETE FROM auth_user_groups WHERE user_id = %s", [reviewer.pk])
    response, _ = poll_until(client, url, lambda r: r.status_code != 200)
    assert response.status_code == 404


def test_a_session_is_not_kept_past_its_expiry(client, card):
    poll(client, card)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    # The row the card was kept with expires in a moment; no notification is needed.
    soon = timezone.now() + timedelta(milliseconds=300)
    kept = liverows.here()
    for cache_key, (row, tags, _until, deadline) in list(kept.rows.items()):
        kept.rows[cache_key] = (row, tags, soon, deadline)
    Session.objects.filter(session_key=key).update(expire_date=soon)  # as it would be
    time.sleep(0.4)
    response, _ = poll(client, card)
    assert response.status_code == 302


def test_rows_expire_after_the_ttl_even_without_a_notification(client, card, monkeypatch):
    monkeypatch.setattr(liverows, "TTL", 0.0)
    poll(client, card)
    assert poll(client, card)[1] == 1


def test_a_change_committed_between_the_read_and_the_keeping_is_not_missed(
    client, card, generation, elsewhere, monkeypatch
):
    """The row read, then a worker commits, then the row is kept: the notification waits
    on the socket, and the next lookup drops the row it names."""
    put = liverows.Kept.put

    def late_put(self, *args, **kwargs):
        elsewhere.execute(
            "UPDATE generations_generation SET progress = 90 WHERE id = %s", [generation.pk]
        )
        time.sleep(0.2)  # its notification reaches this connection before the put
        return put(self, *args, **kwargs)

    monkeypatch.setattr(liverows.Kept, "put", late_put)
    first, _ = poll(client, card)
    assert b'value="30"' in first.content
    monkeypatch.setattr(liverows.Kept, "put", put)
    response, queries = poll(client, card)
    assert b'value="90"' in response.content and queries == 1


def test_a_new_connection_keeps_nothing_from_the_old_one(client, card):
    poll(client, card)
    connection.close()  # as Django does after CONN_MAX_AGE
    response, queries = poll(client, card)
    assert response.status_code == 200
    assert queries == 3  # LISTEN, its own hello, then the card's query
    assert poll(client, card)[1] == 0


def test_a_connection_that_does_not_hear_itself_is_found_out():
    """Behind a transaction-pooling proxy a LISTEN does not hold: the hello it sends itself
    never comes back."""

    class Deaf:
        def notifies(self, timeout=None):
            return iter(())

    connection.ensure_connection()
    assert liverows._listen(connection.connection) is True
    assert liverows._listen(Deaf()) is False


def test_a_connection_that_does_not_hear_itself_keeps_nothing(client, card, monkeypatch):
    monkeypatch.setattr(liverows, "_listen", lambda raw: False)
    assert poll(client, card)[0].status_code == 200
    assert poll(client, card)[1] == 1
    assert poll(client, card)[1] == 1


def test_off_by_setting(client, card, settings):
    settings.LIVE_ROW_CACHE = False
    poll(client, card)
    assert poll(client, card)[1] == 1


def test_nothing_is_kept_inside_a_transaction(client, card):
    from django.db import transaction

    with transaction.atomic():
        poll(client, card)
        assert poll(client, card)[1] == 1


# --- full pages ------------------------------------------------------------------------------


def page_views(client, url):
    """The page (its body cached after the first view), and how many queries it took."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return response, len(captured)


def settled(client, url, seconds=5.0):
    """View the page until it is read again: a change elsewhere arrives in a moment."""
    deadline = time.monotonic() + seconds
    while True:
        response, queries = page_views(client, url)
        if queries or time.monotonic() > deadline:
            return response, queries
        time.sleep(0.01)


@pytest.fixture
def finished(member):
    return rapid_generation(
        member, prompt="a vase", state=State.FINISHED, progress=100, finished_at=timezone.now()
    )


def test_an_unchanged_list_is_answered_without_a_query(client, member, generation):
    client.force_login(member)
    url = reverse("generations:list")
    page_views(client, url)
    assert page_views(client, url)[1] == 0


@pytest.mark.parametrize(
    "change",
    [
        # Each table the header's figures and the fingerprint come from.
        "INSERT INTO generations_generation (owner_id, provider, edition, mode, prompt, options, "
        "form_token, state, progress, upstream_task_id, upstream_status, credit_estimate, "
        "price_breakdown, price_version, failure_reason, attention_reason, last_raw_response, "
        "claim, results, url_refreshes, deliveries, submit_attempts, polls, poll_errors, "
        "created_at, state_changed_at) SELECT owner_id, provider, edition, mode, 'x', options, "
        "gen_random_uuid(), state, 0, '', '', 1, price_breakdown, price_version, '', '', "
        "last_raw_response, '', results, 0, deliveries, 0, 0, 0, now(), now() "
        "FROM generations_generation LIMIT 1",
        "UPDATE generations_generation SET state_changed_at = now() WHERE id = {generation}",
        "UPDATE reviews_notification SET read_at = now()",
        "DELETE FROM generations_alert",
        "DELETE FROM credits_budget",
        "DELETE FROM reviews_tag",
        "DELETE FROM generations_walletsnapshot",
    ],
)
def test_a_change_to_what_the_list_shows_is_read_on_the_next_view(
    client, member, generation, elsewhere, change
):
    client.force_login(member)
    url = reverse("generations:list")
    page_views(client, url)
    assert page_views(client, url)[1] == 0
    elsewhere.execute(change.format(generation=generation.pk))
    assert settled(client, url)[1] >= 1


def test_a_change_this_process_commits_is_read_on_the_next_view(client, member, generation):
    client.force_login(member)
    url = reverse("generations:list")
    page_views(client, url)
    # Its notification comes back with the commit: no wait.
    Generation.objects.filter(pk=generation.pk).update(state_changed_at=timezone.now())
    assert page_views(client, url)[1] >= 1
    assert page_views(client, url)[1] == 0


def test_a_finished_generation_s_page_is_kept_until_its_files_change(
    client, member, finished, generation, elsewhere
):
    client.force_login(member)
    url = reverse("generations:detail", args=[finished.pk])
    card = reverse("generations:detail", args=[generation.pk])
    page_views(client, url)
    assert page_views(client, url)[1] == 0
    poll(client, card)
    # Another generation's update drops the page (it shows the newest state change) but
    # not the card of a third one.
    other = rapid_generation(member, prompt="a cup")
    elsewhere.execute("UPDATE generations_generation SET progress = 3 WHERE id = %s", [other.pk])
    assert settled(client, url)[1] >= 1
    assert poll(client, card)[1] == 0
    # A file of its own, added, then removed by a worker.
    asset = Asset.objects.create(
        generation=finished, role=Asset.Role.THUMBNAIL, file="x.png", format="png", bytes=1
    )
    assert page_views(client, url)[1] >= 1
    assert page_views(client, url)[1] == 0
    elsewhere.execute("DELETE FROM generations_asset WHERE id = %s", [asset.pk])
    assert settled(client, url)[1] >= 1


def test_a_new_ledger_entry_drops_pages_but_not_cards(client, member, generation):
    client.force_login(member)
    url = reverse("generations:list")
    card = reverse("generations:detail", args=[generation.pk])
    page_views(client, url)
    poll(client, card)
    LedgerEntry.objects.create(kind="adjustment", user=member, amount=-5, note="correction")
    assert page_views(client, url)[1] >= 1
    assert poll(client, card)[1] == 0


def _tables(sql):
    return set(re.findall(r'(?:FROM|JOIN)\s+"(\w+)"', sql))


def _events():
    """{table: (events its studio_* triggers notify, whether any drops everything)}."""
    from collections import defaultdict

    found = defaultdict(lambda: [set(), False])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgtype, p.proname FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgname LIKE 'studio_%%' AND NOT t.tgisinternal"
        )
        for table, kind, function in cursor.fetchall():
            for bit, event in ((4, "INSERT"), (8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE")):
                if kind & bit:
                    found[table][0].add(event)
                    if function == "studio_notify_table" and event != "TRUNCATE":
                        found[table][1] = True
    return found


# A new row in these cannot change a kept answer: a session's key is new, a user is no
# one's until they sign in, a permission or content type is no one's until granted
# (through the tables that notify on insert).
INSERT_CHANGES_NOTHING = {"accounts_session", "auth_user", "auth_permission", "django_content_type"}


def test_every_table_a_kept_answer_reads_tells_of_its_changes(finished):
    """A table read but not notified would leave kept answers stale: every table each kept
    statement names has triggers for every change, and its notifications reach the answer
    (its tags, or a table whose change drops everything)."""
    from generations import views
    from studio_dashboard import auth

    events = _events()
    statements = {
        "card": (Generation.objects.one_sql(finished.pk)[0], False, ["generations_generation:1"]),
        "page": (
            Generation.objects.one_sql(finished.pk, views._final_page_also())[0],
            True,
            views._final_page_tables(),
        ),
        "list": ("", True, None),
    }
    for name, (rider, figures, tags) in statements.items():
        sql = auth._session_sql("accounts_session", figures, rider)
        keep = auth._keep_tags("accounts_session:k", figures, rider, tags)
        assert keep, name
        tagged = {tag.partition(":")[0] for tag in keep}
        for table in _tables(sql):
            notified, drops_all = events.get(table, (set(), False))
            needed = {"UPDATE", "DELETE", "TRUNCATE"} | (
                set() if table in INSERT_CHANGES_NOTHING else {"INSERT"}
            )
            assert needed <= notified, (name, table, notified)
            assert drops_all or table in tagged, (name, table)


@pytest.mark.parametrize(
    "change, payload",
    [
        ("UPDATE auth_user SET first_name = 'x' WHERE id = {member}", "auth_user"),
        ("DELETE FROM auth_user_groups WHERE user_id = {member}", "auth_user_groups"),
        ("DELETE FROM auth_group_permissions", "auth_group_permissions"),
        (
            "INSERT INTO auth_user_user_permissions (user_id, permission_id) "
            "SELECT {member}, MIN(id) FROM auth_permission",
            "auth_user_user_permissions",
        ),
        ("UPDATE auth_permission SET name = name", "auth_permission"),
        ("UPDATE django_content_type SET model = model", "django_content_type"),
        ("UPDATE generations_generation SET progress = 1 WHERE id = {generation}", None),
        ("DELETE FROM generations_generation WHERE id = {generation}", None),
        ("TRUNCATE generations_generation CASCADE", "generations_generation"),
        ("UPDATE accounts_session SET expire_date = expire_date", None),
    ],
)
def test_every_change_that_matters_is_notified(
    change, payload, member, generation, client, elsewhere
):
    client.force_login(member)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {liverows.CHANNEL}")
        elsewhere.execute(change.format(member=member.pk, generation=generation.pk))
        heard = {n.payload for n in listener.notifies(timeout=2, stop_after=1)}
    if payload is None:  # row-level: the row's tag
        payload = (
            f"accounts_session:{key}"
            if "accounts_session" in change
            else liverows.tag(Generation, generation.pk)
        )
    assert payload in heard


def test_adding_a_user_drops_nothing(member, elsewhere):
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {liverows.CHANNEL}")
        elsewhere.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "VALUES ('', false, 'newcomer', '', '', '', false, true, now())"
        )
        assert list(listener.notifies(timeout=0.3)) == []


# --- the store itself ------------------------------------------------------------------------


def _store():
    kept = liverows.Kept()
    kept.raw, kept.hears = connection.connection, True
    return kept


def test_a_notification_drops_only_the_rows_it_names():
    connection.ensure_connection()
    kept = _store()
    kept.put("a", (1,), ["generations_generation:1", "accounts_session:k"])
    kept.put("b", (2,), ["generations_generation:2", "accounts_session:k"])
    kept.changed("generations_generation:1")
    assert kept.get("a") is None and kept.get("b") == (2,)
    kept.changed("hello:someone")  # another listener's check
    assert kept.get("b") == (2,)
    kept.changed("accounts_session:k")
    assert kept.get("b") is None
    assert not kept.tagged  # nothing left behind in the index


def test_a_bare_table_name_or_an_unknown_payload_drops_everything():
    connection.ensure_connection()
    kept = _store()
    for payload in ("auth_user", "garbage"):
        kept.put("a", (1,), ["generations_generation:1"])
        kept.changed(payload)
        assert kept.get("a") is None and not kept.rows


def test_the_store_is_bounded(monkeypatch):
    connection.ensure_connection()
    monkeypatch.setattr(liverows, "SIZE", 3)
    kept = _store()
    for n in range(5):
        kept.put(n, (n,), [f"generations_generation:{n}"])
    assert list(kept.rows) == [2, 3, 4]
    assert set(kept.tagged) == {f"generations_generation:{n}" for n in (2, 3, 4)}


def test_a_row_read_on_another_connection_is_not_kept():
    connection.ensure_connection()
    kept = liverows.Kept()
    kept.raw, kept.hears = object(), True
    kept.put("a", (1,), ["generations_generation:1"])
    assert kept.get("a") is None


def test_metrics_count_how_cards_were_answered(client, card, settings, redis_limiter):
    from tests.test_ops_metrics import sample, scrape

    settings.METRICS_TOKEN = "metrics-token-for-tests-0123456789"

    def counts():
        text = scrape(client, settings.METRICS_TOKEN)
        return {
            answer: sample(text, "studio_kept_rows_total", f'{{answer="{answer}"}}')
            for answer in ("kept", "read", "off")
        }

    poll(client, card)
    before = counts()
    poll(client, card)
    poll(client, card)
    settings.LIVE_ROW_CACHE = False
    poll(client, card)
    after = counts()
    assert {answer: after[answer] - before[answer] for answer in after} == {
        "kept": 2,
        "read": 0,
        "off": 1,
    }
