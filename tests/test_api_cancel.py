"""Cancel: before the submit, the generation leaves the queue and its hold is released in
the ledger; once sent, the upstream has no cancel and the answer says so."""

import pytest

from credits.budgets import remaining
from credits.models import Budget, LedgerEntry
from generations.models import CancelRefused, Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client
from tests.conftest import at_once, ensure_roles, make_user

pytestmark = pytest.mark.django_db
GENERATIONS = "/api/v1/generations/"


def queue_one(client):
    body = {"provider": "hunyuan_rapid", "prompt": "a chair"}
    response = client.post(GENERATIONS, body, content_type="application/json")
    assert response.status_code == 201, response.json()
    return Generation.objects.get(pk=response.json()["id"])


def test_the_owner_cancels_a_queued_generation_and_gets_the_hold_back(member):
    Budget.objects.create(user=member, monthly_limit=100)
    client = token_client(member)
    generation = queue_one(client)
    assert remaining(member) == 100 - generation.credit_estimate
    response = client.post(f"{GENERATIONS}{generation.pk}/cancel/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "canceled" and body["queue_position"] is None
    assert body["can_cancel"] is False
    generation.refresh_from_db()
    assert generation.state == State.CANCELED and generation.due_at is None
    kinds = list(LedgerEntry.objects.filter(generation=generation).values_list("kind", "amount"))
    assert kinds == [("hold", -35), ("release", 35)]
    release = LedgerEntry.objects.get(generation=generation, kind="release")
    assert release.note == "canceled before submit by member"
    assert remaining(member) == 100


def test_a_sent_generation_cannot_be_canceled_and_the_answer_says_why(member):
    client = token_client(member)
    generation = queue_one(client)
    Generation.objects.filter(pk=generation.pk).update(state=State.PENDING)
    detail = client.get(f"{GENERATIONS}{generation.pk}/").json()
    assert detail["can_cancel"] is False
    assert "no cancel" in detail["cancel_note"]
    response = client.post(f"{GENERATIONS}{generation.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "too_late"
    assert "already sent upstream" in response.json()["detail"]
    assert not LedgerEntry.objects.filter(kind="release").exists()


def test_canceling_twice_is_refused_the_second_time(member):
    client = token_client(member)
    generation = queue_one(client)
    assert client.post(f"{GENERATIONS}{generation.pk}/cancel/").status_code == 200
    again = client.post(f"{GENERATIONS}{generation.pk}/cancel/")
    assert again.status_code == 409
    assert "canceled already" in again.json()["detail"]
    assert LedgerEntry.objects.filter(kind="release").count() == 1


def test_only_the_owner_or_an_admin_cancels(member, second_member, admin_user):
    generation = queue_one(token_client(member))
    url = f"{GENERATIONS}{generation.pk}/cancel/"
    assert token_client(second_member).post(url).status_code == 403
    generation.refresh_from_db()
    assert generation.state == State.QUEUED
    assert token_client(admin_user).post(url).status_code == 200
    assert LedgerEntry.objects.get(kind="release").note == "canceled before submit by boss"


def test_the_model_refuses_with_words_a_member_understands(member):
    generation = queue_one(token_client(member))
    Generation.objects.filter(pk=generation.pk).update(state=State.SUBMITTING)
    with pytest.raises(CancelRefused, match="being sent upstream right now"):
        generation.cancel()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_submit_claim_lets_exactly_one_win(django_user_model):
    ensure_roles()
    owner = make_user(django_user_model, "racer", "Members")
    generation = queue_one(token_client(owner))
    outcomes = []

    def cancel():
        try:
            Generation.objects.get(pk=generation.pk).cancel()
            outcomes.append("canceled")
        except CancelRefused:
            outcomes.append("refused")

    def claim():
        try:
            Generation.objects.get(pk=generation.pk).claim_for_submit()
            outcomes.append("claimed")
        except Exception:  # noqa: BLE001 - the loser's IllegalTransition
            outcomes.append("lost")

    assert at_once(cancel, claim) == []
    assert sorted(outcomes) in (["canceled", "lost"], ["claimed", "refused"])
    generation.refresh_from_db()
    released = LedgerEntry.objects.filter(generation=generation, kind="release").exists()
    assert released == (generation.state == State.CANCELED)
