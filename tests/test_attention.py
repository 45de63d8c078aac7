"""Admins resolve generations that need attention; nobody else can."""

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from credits.models import LedgerEntry
from generations.models import Generation, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def stuck(member, monkeypatch):
    """A generation whose submit outcome is unknown: held, never charged."""
    monkeypatch.setattr("generations.tasks.submit_generation.delay", lambda pk: None)
    generation = Generation.objects.create_queued(
        owner=member, provider="hunyuan_rapid", mode="text", prompt="a lamp",
        options={}, form_token=uuid.uuid4(),
    )  # fmt: skip
    generation.claim_for_submit()
    generation.mark_needs_attention("The submit's outcome is unknown: read timeout.")
    return generation


def resolve(client, generation, **data):
    return client.post(reverse("generations:attention-resolve", args=[generation.pk]), data)


def kinds(generation):
    return [(e.kind, e.amount) for e in LedgerEntry.objects.filter(generation=generation)]


def test_admins_see_the_list_with_the_facts(client, admin_user, stuck):
    client.force_login(admin_user)
    response = client.get(reverse("generations:attention"))
    assert response.status_code == 200
    assert b"read timeout" in response.content
    assert f"attention-{stuck.pk}".encode() in response.content


@pytest.mark.parametrize("who", ["member", "second_member", "reviewer", "outsider"])
def test_only_admins_may_resolve(client, request, stuck, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("generations:attention")).status_code == 403
    assert resolve(client, stuck, action="lost", note="x").status_code == 403
    stuck.refresh_from_db()
    assert stuck.state == State.NEEDS_ATTENTION


def test_anonymous_is_sent_to_login(client, stuck):
    response = resolve(client, stuck, action="lost", note="x")
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_giving_the_task_id_polls_it_and_charges_it_once(client, admin_user, stuck):
    client.force_login(admin_user)
    response = resolve(
        client, stuck, action="task_id", task_id="0b7c1a52-aaaa-bbbb-cccc-1234567890ab"
    )
    assert response.status_code == 302
    stuck.refresh_from_db()
    assert stuck.state == State.PENDING
    assert stuck.upstream_task_id == "0b7c1a52-aaaa-bbbb-cccc-1234567890ab"
    assert stuck.due_at <= timezone.now()
    assert kinds(stuck) == [("hold", -35), ("release", 35), ("charge", -35)]


def test_marking_it_lost_gives_the_credits_back(client, admin_user, stuck):
    client.force_login(admin_user)
    resolve(client, stuck, action="lost", note="not in the upstream dashboard")
    stuck.refresh_from_db()
    assert stuck.state == State.FAILED
    assert "not in the upstream dashboard" in stuck.failure_reason
    assert LedgerEntry.objects.filter(generation=stuck).balance() == 0


def test_a_charged_generation_marked_lost_is_refunded(admin_user, stuck):
    stuck.resolve_with_task_id("abcdef12-0000")
    stuck.mark_needs_attention("The upstream no longer answers for this task.")
    stuck.resolve_as_lost("gone")
    assert kinds(stuck)[-1] == ("refund", 35)
    assert LedgerEntry.objects.filter(generation=stuck).balance() == 0


def test_resubmitting_is_only_for_never_charged_generations(client, admin_user, stuck):
    client.force_login(admin_user)
    resolve(client, stuck, action="resubmit")
    stuck.refresh_from_db()
    assert stuck.state == State.QUEUED
    assert stuck.submit_attempts == 0
    # Charged: refused, with the reason.
    stuck.claim_for_submit()
    stuck.mark_submitted("task-9", timezone.now())
    stuck.mark_needs_attention("refused result")
    response = resolve(client, stuck, action="resubmit")
    assert response.status_code == 302
    stuck.refresh_from_db()
    assert stuck.state == State.NEEDS_ATTENTION
    assert LedgerEntry.objects.filter(generation=stuck, kind="charge").count() == 1


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"action": "task_id", "task_id": ""}, "task_id", "Give the upstream task id"),
        ({"action": "task_id", "task_id": "x'; DROP"}, "task_id", "letters, digits or dashes"),
        ({"action": "lost", "note": ""}, "note", "Say why"),
        ({"action": "explode"}, "action", "Select a valid choice"),
    ],
)
def test_bad_resolutions_are_refused_with_a_reason(client, admin_user, stuck, data, field, words):
    client.force_login(admin_user)
    response = resolve(client, stuck, **data)
    assert response.status_code == 400
    assert words in " ".join(response.context["form"].errors[field])
    stuck.refresh_from_db()
    assert stuck.state == State.NEEDS_ATTENTION
