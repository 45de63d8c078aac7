"""Announcing finished and failed generations, batched mail, in-app list, preferences."""

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from generations.models import State
from reviews import tasks
from reviews.models import (
    Decision,
    GenerationEvent,
    Notification,
    NotificationKind,
    NotificationPreference,
    Review,
)
from reviews.notifications import announce_generation_events, send_notification_mail
from tests.conftest import make_user
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(media):  # noqa: F811
    return media


@pytest.fixture
def team(django_user_model, member, reviewer, admin_user):
    for user, email in ((member, "m@x.test"), (reviewer, "r@x.test"), (admin_user, "a@x.test")):
        user.email = email
        user.save()
    second_reviewer = make_user(django_user_model, "reviewer2", "Reviewers", email="r2@x.test")
    return {"member": member, "reviewers": [reviewer, admin_user, second_reviewer]}


def test_reviewers_get_one_mail_each_listing_every_new_item(team):
    generations = [make_finished(team["member"], f"item {i}") for i in range(3)]
    tasks.notify()
    assert len(mail.outbox) == 3  # one per reviewer (two Reviewers and the admin)
    assert sorted(m.to[0] for m in mail.outbox) == ["a@x.test", "r2@x.test", "r@x.test"]
    for message in mail.outbox:
        assert message.subject == "Studio Dashboard: 3 generations await your review"
        for generation in generations:
            assert f"#{generation.pk} by member awaits review" in message.body
            assert reverse("reviews:generation", args=[generation.pk]) in message.body


def test_a_second_run_sends_nothing_new(team):
    make_finished(team["member"])
    tasks.notify()
    tasks.notify()
    assert len(mail.outbox) == 3
    make_finished(team["member"], "later")
    tasks.notify()
    assert len(mail.outbox) == 6
    assert all("1 generation awaits" in m.subject for m in mail.outbox[3:])


def test_an_event_is_announced_once_however_often_it_is_scanned(team):
    generation = make_finished(team["member"])
    assert announce_generation_events() == 1
    assert announce_generation_events() == 0
    assert GenerationEvent.objects.filter(generation=generation).count() == 1
    assert Notification.objects.filter(key=f"finished:{generation.pk}").count() == 3


def test_a_notification_of_one_event_is_stored_once(team):
    reviewer = team["reviewers"][0]
    generation = make_finished(team["member"])
    first = Notification.objects.notify(
        reviewer,
        NotificationKind.AWAITING_REVIEW,
        key="finished:x",
        message="a",
        generation=generation,
    )
    again = Notification.objects.notify(
        reviewer,
        NotificationKind.AWAITING_REVIEW,
        key="finished:x",
        message="a",
        generation=generation,
    )
    assert first is not None and again is None
    assert Notification.objects.filter(recipient=reviewer).count() == 1


def test_old_finishes_are_not_announced(team, settings):
    make_finished(team["member"], finished_at=timezone.now() - settings.REVIEW_EVENT_LOOKBACK * 2)
    assert announce_generation_events() == 0


def test_the_owner_hears_of_a_decision_and_a_failure(team):
    member, reviewer = team["member"], team["reviewers"][0]
    generation = make_finished(member)
    failed = make_finished(member, "doomed", state=State.FAILED, failure_reason="mesh too thin")
    Review.objects.record_decision(generation, reviewer, Decision.REJECTED, "too plain")
    tasks.notify()
    to_member = [m for m in mail.outbox if m.to == ["m@x.test"]]
    assert len(to_member) == 1
    assert "reviewer: rejected generation" in to_member[0].body
    assert "too plain" in to_member[0].body
    assert f"Generation #{failed.pk} failed: mesh too thin" in to_member[0].body
    unread = Notification.objects.unread_for(member)
    assert {n.kind for n in unread} == {"decision", "failed"}


def test_preferences_turn_mail_and_in_app_off_per_kind(client, team):
    reviewer, other = team["reviewers"][0], team["reviewers"][2]
    client.force_login(reviewer)
    data = {
        "awaiting_review_in_app": "on",  # in-app stays on, email off
        "decision_in_app": "on",
        "decision_email": "on",
        "failed_in_app": "on",
        "failed_email": "on",
    }
    assert client.post(reverse("reviews:preferences"), data).status_code == 302
    assert NotificationPreference.wanted(reviewer, "awaiting_review") == (True, False)
    client.force_login(other)
    client.post(reverse("reviews:preferences"), {})  # everything off
    make_finished(team["member"])
    tasks.notify()
    assert sorted(m.to[0] for m in mail.outbox) == ["a@x.test"]
    assert Notification.objects.unread_for(reviewer).count() == 1
    assert not Notification.objects.filter(recipient=other).exists()


def test_a_failed_mail_stays_pending_for_the_next_batch(team, monkeypatch):
    make_finished(team["member"])
    announce_generation_events()

    def refuse(*args, **kwargs):
        raise OSError("smtp down")

    monkeypatch.setattr("reviews.notifications.send_mail", refuse)
    assert send_notification_mail() == 0
    monkeypatch.undo()
    assert send_notification_mail() == 3


def test_the_in_app_list_and_unread_count(client, team):
    member = team["member"]
    generation = make_finished(member)
    Review.objects.record_decision(generation, team["reviewers"][0], Decision.APPROVED, "nice")
    client.force_login(member)
    page = client.get(reverse("reviews:notifications")).content.decode()
    assert 'title="1 unread"' in page
    assert "reviewer: approved generation" in page
    response = client.post(reverse("reviews:notifications-read"), headers={"HX-Request": "true"})
    assert 'id="review-nav" class="review-nav" hx-swap-oob="true"' in response.content.decode()
    assert Notification.objects.unread_for(member).count() == 0
