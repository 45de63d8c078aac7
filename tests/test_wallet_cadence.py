"""The wallet is read at least every ten minutes, whatever the queue (issue 16, item 9).

With a full queue the spare-budget read never found room (the status page said
"Last wallet sync: never" after 20 minutes), so a raised rate limit went unseen.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from generations import tasks
from generations.models import Generation, State
from tests.conftest import rapid_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def doorbells(monkeypatch):
    rung = []
    monkeypatch.setattr(tasks.poll_generation, "delay", lambda pk, claim: rung.append("poll"))
    monkeypatch.setattr(
        tasks.submit_generation, "delay", lambda pk, claim=None: rung.append("submit")
    )
    monkeypatch.setattr(tasks.refresh_wallet, "delay", lambda due=False: rung.append("wallet"))
    return rung


@pytest.fixture
def full_queue(member, settings, redis_limiter):
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 3
    now = timezone.now()
    for n in range(25):
        rapid_generation(member, prompt=f"p{n}", state=State.QUEUED, due_at=now)
    Generation.objects.filter(pk__in=Generation.objects.values("pk")[:5]).update(
        state=State.PENDING, upstream_task_id="t", submitted_at=now
    )
    cache.delete("studio:wallet-read-claimed")
    return redis_limiter


def snapshot(age):
    return tasks.WalletSnapshot.objects.create(
        balance=1000, rate_limit=3, fetched_at=timezone.now() - age
    )


def test_with_a_full_queue_a_nearly_ten_minute_old_wallet_is_read_first(full_queue, doorbells):
    snapshot(timedelta(minutes=9, seconds=30))
    tasks.dispatch()
    assert doorbells == ["wallet", "poll", "poll"]
    tasks.dispatch()  # the read is claimed: the next run does not ask again
    assert doorbells.count("wallet") == 1


def test_with_a_full_queue_and_no_wallet_read_yet_it_is_read(full_queue, doorbells):
    tasks.dispatch()
    assert doorbells[0] == "wallet"


def test_a_recent_wallet_leaves_the_budget_to_the_queue(full_queue, doorbells):
    snapshot(timedelta(minutes=2))
    tasks.dispatch()
    assert doorbells == ["poll", "poll", "poll"]


def test_a_due_read_takes_its_slot_where_the_spare_budget_read_gives_way(
    full_queue, canned, settings
):
    settings.UPSTREAM_BASE_URL = canned.url
    canned.answer(200, {"balance": "990.00", "rate_limit": 6})
    full_queue.acquire()
    full_queue.acquire()  # one slot left: no spare budget
    assert tasks.refresh_wallet() is None
    assert canned.requests == []
    pk = tasks.refresh_wallet(due=True)
    assert tasks.WalletSnapshot.objects.get(pk=pk).rate_limit == 6
