"""Reviewer and admin endpoints: each refuses the roles it is not for."""

import csv
import io
from datetime import date

import pytest

from credits.models import LedgerEntry
from reviews.models import Review
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client
from tests.test_reviews_support import make_finished

pytestmark = pytest.mark.django_db


def test_reviewers_see_the_queue_oldest_first(reviewer, member):
    first, second = make_finished(member, prompt="one"), make_finished(member, prompt="two")
    answer = token_client(reviewer).get("/api/v1/reviews/queue/").json()
    assert [g["id"] for g in answer["results"]] == [first.pk, second.pk]
    assert answer["count"] == 2


def test_members_do_not_see_the_queue(member):
    response = token_client(member).get("/api/v1/reviews/queue/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_reviewer_decides_through_the_same_model_method(reviewer, member):
    generation = make_finished(member)
    client = token_client(reviewer)
    url = f"/api/v1/reviews/{generation.pk}/decide/"
    response = client.post(url, {"decision": "approved"}, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["review_state"] == "approved"
    assert Review.objects.get().reviewer == reviewer
    # A stale decision (based on none, when one exists now) is a conflict.
    stale = {"decision": "rejected", "comment": "no", "based_on": 0}
    assert client.post(url, stale, content_type="application/json").status_code == 409


def test_a_reject_needs_a_comment_on_its_field(reviewer, member):
    generation = make_finished(member)
    response = token_client(reviewer).post(
        f"/api/v1/reviews/{generation.pk}/decide/",
        {"decision": "rejected"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "comment" in response.json()["errors"]


def test_members_cannot_decide(member, second_member):
    generation = make_finished(second_member)
    response = token_client(member).post(
        f"/api/v1/reviews/{generation.pk}/decide/",
        {"decision": "approved"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Review.objects.exists()


def _spend(owner, amount, day):
    generation = make_finished(owner)
    LedgerEntry.objects.create(
        kind="charge",
        user=owner,
        generation=generation,
        amount=-amount,
        provider="hunyuan_rapid",
        note="test",
        created_at=day,
    )
    return generation


def test_admins_get_the_spend_report_and_the_ledger(admin_user, member):
    from datetime import UTC, datetime

    generation = _spend(member, 35, datetime(2026, 3, 4, 12, tzinfo=UTC))
    client = token_client(admin_user)
    query = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
    report = client.get("/api/v1/spend/", query).json()
    assert report["total"]["charged"] == 35
    assert report["people"][0]["user"] == "member"
    assert len(report["days"]) == 31
    ledger = client.get("/api/v1/ledger.csv", query)
    assert ledger.status_code == 200 and ledger["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(ledger.streaming_content).decode())))
    assert rows[0][:3] == ["id", "created_at", "kind"]
    assert rows[1][2] == "charge" and rows[1][6] == str(generation.pk) and rows[1][8] == "-35"
    bad = client.get("/api/v1/spend/", {"start": "yesterday"})
    assert bad.status_code == 400 and "start" in bad.json()["errors"]


@pytest.mark.parametrize("url", ["/api/v1/spend/", "/api/v1/ledger.csv"])
def test_members_and_reviewers_get_no_spend(member, reviewer, url):
    assert token_client(member).get(url).status_code == 403
    assert token_client(reviewer, "r").get(url).status_code == 403
