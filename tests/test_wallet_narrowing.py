"""Wallet drift is narrowed until it is tied to one generation (issue 16, item 9).

Two generations submitted between two wallet reads, one charged 35 more than its
price, cannot be told apart. From then on every submit goes between two wallet
reads (each a call of the shared rate budget), so the next drift is confined to
one submit and tied to its generation; then the narrowing stops.

Through the real submit path against the sandbox over HTTP. The sandbox charges
its price list; the overcharge is the upstream taking 35 more from the wallet as
the submit is accepted, made through the sandbox's own wallet control.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from credits import reconcile
from credits.models import DriftAttribution, DriftNarrowing, LedgerEntry, WalletSnapshot
from generations import tasks
from generations.models import Generation, State
from generations.upstream import UpstreamClient
from tests.sandbox_control import request_log
from tests.test_pipeline import queue

pytestmark = pytest.mark.django_db(transaction=True)

OVERCHARGED = "gilded"  # prompts with this word cost 35 more upstream than their price


@pytest.fixture
def overcharging_upstream(sandbox_server, monkeypatch):
    """The sandbox, taking 35 more credits for every submit whose prompt is gilded."""

    def take_from_wallet(credits):
        wallet = requests.get(f"{sandbox_server.url}/_sandbox/wallet", timeout=5).json()
        balance = Decimal(wallet["balance"]) - credits
        reply = requests.put(
            f"{sandbox_server.url}/_sandbox/wallet", json={"balance": str(balance)}, timeout=5
        )
        reply.raise_for_status()

    class Overcharging(UpstreamClient):
        def submit(self, endpoint, body):
            submitted = super().submit(endpoint, body)
            if OVERCHARGED in body.get("prompt", ""):
                take_from_wallet(35)
            return submitted

    monkeypatch.setattr(tasks, "client", Overcharging)
    # Submits are sent here by hand; no doorbell goes to a broker.
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *args, **kwargs: None)
    return sandbox_server


def submit(owner, prompt):
    """Queue a Rapid generation and send it (the only one queued: it goes at once)."""
    generation = queue(owner, prompt)
    tasks.submit_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.PENDING, generation.attention_reason
    return generation


def calls_since(server, first):
    """The kinds of the upstream calls logged after entry ``first``: wallet or submit."""
    return [
        "wallet" if entry["path"].endswith("/wallet/") else "submit"
        for entry in request_log(server)[first:]
        if entry["path"].endswith("/wallet/") or entry["method"] == "POST"
    ]


def two_submits_one_overcharged(member):
    """A wallet read, two submits (the first charged 35 over its price), a wallet read."""
    assert tasks.refresh_wallet()
    first = submit(member, f"a {OVERCHARGED} chair")
    second = submit(member, "a plain chair")
    assert tasks.refresh_wallet()
    return first, second


def test_drift_between_two_submits_is_narrowed_to_the_next_overcharged_one(
    overcharging_upstream, member
):
    first, second = two_submits_one_overcharged(member)
    (interval,) = reconcile.intervals()
    assert interval.drift == Decimal("-35.00")
    assert {g.pk for g in interval.candidates} == {first.pk, second.pk}
    assert interval.attributed is None
    narrowing = DriftNarrowing.objects.get(state=DriftNarrowing.State.OPEN)
    assert (narrowing.drift, narrowing.candidates) == (Decimal("-35.00"), 2)
    assert not DriftAttribution.objects.exists()

    seen = len(request_log(overcharging_upstream))
    plain = submit(member, "a plain table")
    gilded = submit(member, f"a {OVERCHARGED} table")
    # Each following submit went between two wallet reads.
    assert calls_since(overcharging_upstream, seen) == ["wallet", "submit", "wallet"] * 2
    brackets = WalletSnapshot.objects.exclude(bracket="").order_by("fetched_at", "id")
    assert [(s.bracket, s.bracket_generation_id) for s in brackets] == [
        ("before", plain.pk),
        ("after", plain.pk),
        ("before", gilded.pk),
        ("after", gilded.pk),
    ]
    attribution = DriftAttribution.objects.get()
    assert attribution.generation == gilded
    assert attribution.amount == Decimal("-35.00")
    assert attribution.method == DriftAttribution.Method.NARROWED
    narrowing.refresh_from_db()
    assert narrowing.state == DriftNarrowing.State.TIED
    assert (narrowing.submits, narrowing.attribution) == (2, attribution)
    assert narrowing.ended_at is not None
    # Informational only: the ledger charged the price, and nothing was added for it.
    assert [(e.kind, e.amount) for e in LedgerEntry.objects.filter(generation=gilded)] == [
        ("hold", -35),
        ("release", 35),
        ("charge", -35),
    ]

    # Tied: the next submit goes alone again.
    seen = len(request_log(overcharging_upstream))
    submit(member, "a plain lamp")
    assert calls_since(overcharging_upstream, seen) == ["submit"]


def test_narrowing_stops_after_its_bound_without_a_tie(overcharging_upstream, member, monkeypatch):
    monkeypatch.setattr(reconcile, "MAX_NARROWED_SUBMITS", 3)
    two_submits_one_overcharged(member)
    seen = len(request_log(overcharging_upstream))
    for n in range(3):
        submit(member, f"a plain stool {n}")
    assert calls_since(overcharging_upstream, seen) == ["wallet", "submit", "wallet"] * 3
    narrowing = DriftNarrowing.objects.get()
    assert (narrowing.state, narrowing.submits) == (DriftNarrowing.State.GAVE_UP, 3)
    assert not DriftAttribution.objects.exists()
    seen = len(request_log(overcharging_upstream))
    submit(member, f"a {OVERCHARGED} stool")  # after the bound, no longer bracketed
    assert calls_since(overcharging_upstream, seen) == ["submit"]


def test_a_drift_with_one_candidate_is_tied_without_narrowing(overcharging_upstream, member):
    assert tasks.refresh_wallet()
    gilded = submit(member, f"a {OVERCHARGED} vase")
    assert tasks.refresh_wallet()
    attribution = DriftAttribution.objects.get()
    assert (attribution.generation, attribution.amount) == (gilded, Decimal("-35.00"))
    assert attribution.method == DriftAttribution.Method.ONLY_CHARGE
    assert not DriftNarrowing.objects.exists()


def test_a_refund_in_the_interval_keeps_a_single_charge_from_being_tied(
    overcharging_upstream, member
):
    """A refund reaches our ledger when we see the failure, maybe long after the upstream
    gave it back: a window holding one cannot be read as one charge."""
    earlier = submit(member, "a chair that will fail")
    assert tasks.refresh_wallet()
    gilded = submit(member, f"a {OVERCHARGED} cup")
    earlier.mark_failed("the upstream gave up")
    assert tasks.refresh_wallet()
    assert not DriftAttribution.objects.exists()
    assert DriftNarrowing.objects.get().candidates == 1
    assert gilded.pk in {g.pk for g in reconcile.intervals()[0].candidates}


# --- what the narrowing costs: three calls of the shared budget per submit ----------------


def test_a_narrowed_submit_takes_three_calls_of_the_shared_budget(
    overcharging_upstream, member, settings, redis_limiter
):
    two_submits_one_overcharged(member)
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 3
    redis_limiter.reset()
    submit(member, "a plain bench")
    # Its two wallet reads counted like the submit: the minute's budget is spent.
    assert redis_limiter.peek().remaining == 0
    assert WalletSnapshot.objects.filter(bracket_generation__prompt="a plain bench").count() == 2


def test_while_narrowing_the_dispatcher_sends_a_submit_only_with_three_slots_free(
    overcharging_upstream, member, settings, redis_limiter, monkeypatch
):
    two_submits_one_overcharged(member)
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 3
    redis_limiter.reset()
    for n in range(3):
        queue(member, f"a queued shelf {n}")
    now = tasks.timezone.now()
    Generation.objects.filter(state=State.QUEUED).update(due_at=now)
    # No poll is due: the budget is the submits' alone.
    Generation.objects.filter(state=State.PENDING).update(due_at=now + timedelta(hours=1))
    redis_limiter.acquire()  # two slots left: not enough for a bracketed submit
    assert tasks.dispatch()["submit"] == 0
    redis_limiter.reset()
    assert tasks.dispatch()["submit"] == 1  # three free: one submit, not three
