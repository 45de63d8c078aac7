"""Decisions, their history, version chains, batch approval and the library."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from generations.models import Generation, State
from reviews.models import (
    Decision,
    Review,
    ReviewConflict,
    ReviewStatus,
    awaiting_review,
    chain_versions,
    retake_count,
)
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(media):  # noqa: F811
    return media


def test_a_finished_generation_awaits_review_until_decided(member, reviewer):
    generation = make_finished(member)
    make_finished(member, state=State.FAILED)
    assert list(awaiting_review()) == [generation]
    Review.objects.record_decision(generation, reviewer, Decision.CHANGES_REQUESTED, "more legs")
    assert list(awaiting_review()) == []


def test_every_decision_is_kept_and_the_latest_is_the_state(member, reviewer, admin_user):
    generation = make_finished(member)
    first = Review.objects.record_decision(generation, reviewer, Decision.REJECTED, "broken")
    second = Review.objects.record_decision(generation, admin_user, Decision.APPROVED, "fixed up")
    history = list(generation.reviews.values_list("decision", "reviewer__username"))
    assert history == [("rejected", "reviewer"), ("approved", "boss")]
    status = ReviewStatus.objects.get(generation=generation)
    assert (status.state, status.review, status.decided_at) == (
        "approved",
        second,
        second.created_at,
    )
    assert first.pk != second.pk


def test_the_denormalised_state_always_equals_the_latest_decision(member, reviewer):
    generations = [make_finished(member, f"g{i}") for i in range(3)]
    sequence = ["approved", "rejected", "changes_requested", "approved", "rejected"]
    for i, decision in enumerate(sequence):
        Review.objects.record_decision(generations[i % 3], reviewer, decision, "because")
    for generation in generations:
        latest = generation.reviews.order_by("-created_at", "-id").first()
        status = ReviewStatus.objects.get(generation=generation)
        assert (status.state, status.review_id) == (latest.decision, latest.pk)


def test_reject_and_changes_need_a_comment(member, reviewer):
    generation = make_finished(member)
    for decision in (Decision.REJECTED, Decision.CHANGES_REQUESTED):
        with pytest.raises(ValueError):
            Review.objects.record_decision(generation, reviewer, decision, "   ")
    assert not generation.reviews.exists()


def test_the_form_says_a_comment_is_required(client, member, reviewer):
    generation = make_finished(member)
    client.force_login(reviewer)
    response = client.post(
        reverse("reviews:decide", args=[generation.pk]),
        {"decision": "rejected", "comment": "", "based_on": 0},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "a comment is required" in response.content.decode()
    assert not generation.reviews.exists()


def test_an_unfinished_generation_cannot_be_reviewed(member, reviewer):
    generation = make_finished(member, state=State.IN_PROGRESS)
    with pytest.raises(ValueError):
        Review.objects.record_decision(generation, reviewer, Decision.APPROVED)


def test_a_reviewer_may_not_approve_their_own_generation(reviewer):
    own = make_finished(reviewer)
    with pytest.raises(PermissionDenied):
        Review.objects.record_decision(own, reviewer, Decision.APPROVED)
    # Rejecting or asking for changes of one's own work is fine.
    Review.objects.record_decision(own, reviewer, Decision.CHANGES_REQUESTED, "redo")


def test_self_approval_is_refused_over_http_too(client, reviewer):
    own = make_finished(reviewer)
    client.force_login(reviewer)
    response = client.post(
        reverse("reviews:decide", args=[own.pk]), {"decision": "approved", "based_on": 0}
    )
    assert response.status_code == 403
    assert not own.reviews.exists()


def test_an_admin_setting_allows_self_approval(settings, reviewer):
    settings.REVIEW_ALLOW_SELF_APPROVAL = True
    own = make_finished(reviewer)
    Review.objects.record_decision(own, reviewer, Decision.APPROVED)
    assert ReviewStatus.objects.get(generation=own).state == "approved"


def test_a_decision_on_a_stale_view_is_refused(member, reviewer, admin_user):
    generation = make_finished(member)
    Review.objects.record_decision(generation, admin_user, Decision.APPROVED, based_on=0)
    with pytest.raises(ReviewConflict):
        Review.objects.record_decision(generation, reviewer, Decision.APPROVED, based_on=0)
    assert generation.reviews.count() == 1


def test_the_version_chain_and_its_retake_count(member, reviewer):
    v1 = make_finished(member, "a chair")
    Review.objects.record_decision(v1, reviewer, Decision.CHANGES_REQUESTED, "four legs")
    v2 = make_finished(member, "a chair with four legs", previous=v1)
    assert retake_count(v1.pk) == 1
    assert list(awaiting_review()) == [v2]  # the new version enters review itself
    v3 = make_finished(member, "a chair with four oak legs", previous=v2)
    assert [g.pk for g in chain_versions(v1.pk)] == [v1.pk, v2.pk, v3.pk]
    assert retake_count(v1.pk) == 2
    Review.objects.record_decision(v3, reviewer, Decision.APPROVED)
    assert ReviewStatus.objects.get(generation=v3).root_id == v1.pk


def test_the_panel_shows_version_and_retakes(client, member):
    v1 = make_finished(member, "a chair")
    v2 = make_finished(member, "a chair, oak", previous=v1)
    client.force_login(member)
    body = client.get(reverse("reviews:generation", args=[v2.pk])).content.decode()
    assert "Version 2 of 2" in body
    assert '<span data-testid="retakes">1 retake</span>' in body


def test_the_compare_page_highlights_what_differs(client, member, reviewer):
    v1 = make_finished(member, "a red chair", options={"enable_pbr": False})
    v2 = make_finished(member, "a blue chair", previous=v1, options={"enable_pbr": True})
    client.force_login(reviewer)
    body = client.get(reverse("reviews:compare", args=[v2.pk])).content.decode()
    assert body.count("<model-viewer") == 2
    assert "<mark>red</mark>" in body and "<mark>blue</mark>" in body
    assert "<mark>chair</mark>" not in body
    assert "<mark>False</mark>" in body and "<mark>True</mark>" in body


def test_batch_approval_approves_the_checked_items_with_one_comment(client, member, reviewer):
    chosen = [make_finished(member, f"chosen {i}") for i in range(3)]
    left = make_finished(member, "left alone")
    own = make_finished(reviewer, "the reviewer's own")
    client.force_login(reviewer)
    response = client.post(
        reverse("reviews:batch-approve"),
        {"generations": [g.pk for g in chosen] + [own.pk], "comment": "good batch"},
    )
    assert response.status_code == 302
    for generation in chosen:
        review = generation.reviews.get()
        assert (review.decision, review.comment, review.reviewer) == (
            "approved",
            "good batch",
            reviewer,
        )
    assert not left.reviews.exists()
    assert not own.reviews.exists()  # self-approval refused inside a batch too
    assert set(awaiting_review()) == {left, own}


def test_batch_approval_refuses_items_no_longer_awaiting(client, member, reviewer, admin_user):
    decided = make_finished(member)
    Review.objects.record_decision(decided, admin_user, Decision.REJECTED, "no")
    client.force_login(reviewer)
    client.post(reverse("reviews:batch-approve"), {"generations": [decided.pk]})
    assert decided.reviews.count() == 1


def _library(client, **params):
    response = client.get(reverse("library:index"), params)
    return [row.generation_id for row in response.context["results"]["rows"]]


def test_the_library_holds_the_latest_approved_version_of_each_asset(
    client, member, second_member, reviewer
):
    v1 = make_finished(member, "a lamp")
    Review.objects.record_decision(v1, reviewer, Decision.APPROVED)
    v2 = make_finished(member, "a brass lamp", previous=v1)
    client.force_login(second_member)
    # v2 awaits review: v1 is still the asset's approved version.
    assert _library(client) == [v1.pk]
    Review.objects.record_decision(v2, reviewer, Decision.APPROVED)
    assert _library(client) == [v2.pk]  # v1 is superseded, kept in history
    assert v1.reviews.get().decision == "approved"
    rejected = make_finished(member, "a broken vase")
    Review.objects.record_decision(rejected, reviewer, Decision.REJECTED, "cracked")
    changes = make_finished(member, "a cup")
    Review.objects.record_decision(changes, reviewer, Decision.CHANGES_REQUESTED, "handle")
    assert _library(client) == [v2.pk]


def test_a_superseding_rejection_leaves_the_approved_version_in_the_library(
    client, member, reviewer
):
    v1 = make_finished(member, "a lamp")
    Review.objects.record_decision(v1, reviewer, Decision.APPROVED)
    v2 = make_finished(member, "a worse lamp", previous=v1)
    Review.objects.record_decision(v2, reviewer, Decision.REJECTED, "worse")
    client.force_login(member)
    assert _library(client) == [v1.pk]


def test_the_library_searches_prompts_and_tags_and_filters_by_provider(client, member, reviewer):
    lamp = make_finished(member, "a brass lamp")
    chair = make_finished(member, "an oak chair", provider="trellis2")
    for generation in (lamp, chair):
        Review.objects.record_decision(generation, reviewer, Decision.APPROVED)
    client.force_login(member)
    client.post(reverse("reviews:tag-add", args=[chair.pk]), {"name": "Furniture"})
    assert _library(client, q="brass") == [lamp.pk]
    assert _library(client, q="furni") == [chair.pk]
    assert _library(client, tag="furniture") == [chair.pk]
    assert _library(client, provider="trellis2") == [chair.pk]
    assert _library(client, approved_from="2999-01-01") == []


def test_tags_belong_to_the_asset_across_versions(client, member, reviewer):
    v1 = make_finished(member, "a lamp")
    client.force_login(member)
    client.post(reverse("reviews:tag-add", args=[v1.pk]), {"name": "lighting"})
    v2 = make_finished(member, "a brass lamp", previous=v1)
    Review.objects.record_decision(v2, reviewer, Decision.APPROVED)
    assert _library(client, tag="lighting") == [v2.pk]


def test_library_downloads_use_the_generation_urls_when_the_user_may_see_it(
    client, member, reviewer
):
    generation = make_finished(member)
    Review.objects.record_decision(generation, reviewer, Decision.APPROVED)
    asset = generation.assets.get()
    client.force_login(member)
    body = client.get(reverse("library:index")).content.decode()
    assert reverse("generations:asset", args=[generation.pk, asset.pk]) in body
    assert Generation.objects.visible_to(member).filter(pk=generation.pk).exists()
