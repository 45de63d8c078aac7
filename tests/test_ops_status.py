"""The admins' status page, and the heartbeats it shows."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from credits.models import WalletSnapshot
from generations import tasks
from generations.models import ConceptJob, Conversion, Generation, State
from ops import heartbeat
from ops.models import Heartbeat

pytestmark = pytest.mark.django_db
URL = reverse("ops:status")


def make_generation(owner, state, age=timedelta(0)):
    return Generation.objects.create(
        owner=owner,
        provider="hunyuan_rapid",
        credit_estimate=35,
        state=state,
        created_at=timezone.now() - age,
    )


def stuck_jobs(owner):
    """A finishing step and a concept job waiting for a person, and one of each finished."""
    source = make_generation(owner, State.FINISHED)
    for state in (State.NEEDS_ATTENTION, State.FINISHED):
        Conversion.objects.create(
            generation=source,
            requested_by=owner,
            kind="remesh",
            output_format="glb",
            via=Conversion.Via.UPSTREAM,
            state=state,
            credit_estimate=10,
        )
        ConceptJob.objects.create(
            owner=owner,
            image_model="gemini_3_pro",
            prompt="a lamp",
            credit_estimate=10,
            state=state,
        )


@pytest.fixture
def seeded(member, redis_limiter):
    make_generation(member, State.QUEUED, timedelta(minutes=5))
    make_generation(member, State.QUEUED)
    make_generation(member, State.PENDING, timedelta(hours=2))
    make_generation(member, State.IN_PROGRESS)
    make_generation(member, State.NEEDS_ATTENTION)
    make_generation(member, State.FINISHED, timedelta(days=3))
    stuck_jobs(member)
    WalletSnapshot.objects.create(balance=Decimal("1234.50"), rate_limit=3)
    heartbeat.beat("dispatcher")
    Heartbeat.objects.create(name="sweep", beat_at=timezone.now() - timedelta(hours=1))
    Heartbeat.objects.create(name="worker:celery@box1", beat_at=timezone.now())
    redis_limiter.acquire()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.parametrize("who", ["member", "reviewer", "outsider"])
def test_it_is_refused_to_anyone_but_admins(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).status_code == 403


def test_a_non_staff_user_who_may_resolve_generations_sees_it(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("ops", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="resolve_generation"))
    client.force_login(user)
    assert client.get(URL).status_code == 200


def test_it_shows_queue_states_wallet_rate_and_heartbeats(
    client, admin_user, seeded, empty_broker_queue
):
    client.force_login(admin_user)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<td id="ops-queued">2</td>' in html
    assert '<td id="ops-state-pending">1</td>' in html
    assert '<td id="ops-state-in_progress">1</td>' in html
    assert '<td id="ops-state-ingesting">0</td>' in html
    assert reverse("generations:attention") in html
    assert ">3 waiting</a> (1 generation, 2 other jobs)" in html
    assert "2\xa0hours" in html  # the oldest waiting: the pending one, not the finished one
    assert "1 / 3 requests used" in html
    assert "1234.50 credits" in html
    assert 'id="ops-broker-queue">0 messages' in html
    status = response.context["status"]
    beats = {b.name: b.stale for b in status.beats}
    assert beats == {"dispatcher": False, "sweep": True, "worker:celery@box1": False}
    assert html.count('badge-failed">stale') == 1


def test_it_flags_a_dispatcher_that_never_beat(client, admin_user, redis_limiter):
    client.force_login(admin_user)
    status = client.get(URL).context["status"]
    assert [(b.name, b.beat_at, b.stale) for b in status.beats] == [
        ("dispatcher", None, True),
        ("sweep", None, True),
    ]


def test_it_shows_when_the_budget_is_blocked(client, admin_user, redis_limiter):
    redis_limiter.block(30)
    client.force_login(admin_user)
    html = client.get(URL).content.decode()
    assert "no request before" in html


def test_its_query_count_does_not_grow_with_rows(
    client, admin_user, seeded, member, django_assert_num_queries
):
    client.force_login(admin_user)
    client.get(URL)
    # Ours: generations by state (one GROUP BY), the other jobs waiting for a person (one
    # UNION count), the latest wallet snapshot, the heartbeats. The rest is every page's (the session comes from the cache): the user,
    # their own and their groups' permissions, the open alerts. The navigation's counts
    # and the budget banner are cached fragments until the data changes.
    with django_assert_num_queries(8) as captured:
        client.get(URL)
    count = len(captured.captured_queries)
    for _ in range(20):
        make_generation(member, State.PENDING)
        Heartbeat.objects.create(name=f"worker:extra{_}", beat_at=timezone.now())
    client.get(URL)  # new rows change the data version: the nav's review count is counted again
    with django_assert_num_queries(count):
        client.get(URL)


def test_the_nav_links_to_it_for_admins_only(client, admin_user, member):
    client.force_login(admin_user)
    assert URL in client.get(reverse("generations:list")).content.decode()
    client.force_login(member)
    assert URL not in client.get(reverse("generations:list")).content.decode()


# --- heartbeats ----------------------------------------------------------------------


def test_a_beat_is_one_update_once_the_row_exists(django_assert_num_queries):
    heartbeat.beat("dispatcher")
    with django_assert_num_queries(1):
        heartbeat.beat("dispatcher")


def test_the_dispatcher_and_the_sweep_beat(redis_limiter):
    tasks.dispatch()
    tasks.sweep()
    assert set(Heartbeat.objects.values_list("name", flat=True)) == {"dispatcher", "sweep"}


def test_a_worker_beats_when_ready_and_then_at_most_every_few_seconds(monkeypatch):
    # A worker's main process recycles stale connections before it writes; here the
    # connection belongs to the test's transaction.
    monkeypatch.setattr(heartbeat, "close_old_connections", lambda: None)
    clock = [1000.0]
    monkeypatch.setattr(heartbeat.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(heartbeat, "_last_worker_beat", {})
    heartbeat._on_worker_ready(sender=SimpleNamespace(hostname="celery@w1"))
    first = Heartbeat.objects.get(name="worker:celery@w1").beat_at
    sender = SimpleNamespace(eventer=SimpleNamespace(hostname="celery@w1"))
    for _ in range(5):  # heartbeat_sent fires every 2 s
        clock[0] += 2
        heartbeat._on_heartbeat_sent(sender=sender)
    assert Heartbeat.objects.get(name="worker:celery@w1").beat_at == first
    clock[0] += heartbeat.WORKER_BEAT_EVERY
    heartbeat._on_heartbeat_sent(sender=sender)
    assert Heartbeat.objects.get(name="worker:celery@w1").beat_at > first


def test_a_worker_that_stops_cleanly_leaves_the_list():
    heartbeat.beat("worker:celery@w2")
    heartbeat._on_worker_shutdown(sender=SimpleNamespace(hostname="celery@w2"))
    assert not Heartbeat.objects.filter(name="worker:celery@w2").exists()


def test_the_receivers_are_connected():
    from celery.signals import heartbeat_sent, worker_ready

    assert heartbeat_sent.receivers and worker_ready.receivers
