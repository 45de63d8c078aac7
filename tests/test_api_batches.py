"""Batches through the API (what `studio batch` uses): a draft with every row checked,
images in several requests, all or nothing on submit, progress, cancel and the ZIP."""

import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from credits.models import Budget, LedgerEntry
from generations.models import Batch, BatchItem, Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import png, token_client
from tests.test_reviews_support import GLB_STUB, make_finished

pytestmark = pytest.mark.django_db
BATCHES = "/api/v1/batches/"


def sheet(*rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["prompt", "image", "provider"])
    writer.writerows(rows)
    return SimpleUploadedFile("props.csv", buffer.getvalue().encode(), content_type="text/csv")


def image(name):
    return SimpleUploadedFile(name, png(), content_type="image/png")


@pytest.fixture
def api(member):
    return token_client(member)


def test_a_draft_answers_every_row_with_its_errors_and_cost(api):
    response = api.post(
        BATCHES,
        {
            "sheet": sheet(["a barrel", "", "hunyuan_rapid"], ["a lamp", "", "nope"]),
            "provider": "hunyuan_rapid",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert [row["cost"] for row in body["rows"]] == [35, None]
    assert "provider" in body["rows"][1]["errors"]
    assert body["totals"] == {"rows": 2, "bad": 1, "cost": 35, "remaining": None}
    refused = api.post(f"{BATCHES}{body['id']}/submit/")
    assert refused.status_code == 400 and "row 2 has errors" in refused.json()["detail"]
    assert not Generation.objects.exists()


def test_images_join_a_draft_over_several_requests_then_all_are_queued(api, doorbell):
    first = api.post(
        BATCHES,
        {"images": [image("a.png"), image("b.png")], "provider": "hunyuan_rapid", "more": "true"},
    )
    batch = first.json()
    assert all("cost" not in row for row in batch["rows"])  # checked after the last part
    last = api.post(
        f"{BATCHES}{batch['id']}/", {"images": [image("c.png")], "provider": "hunyuan_rapid"}
    )
    body = last.json()
    assert [row["image"] for row in body["rows"]] == ["a.png", "b.png", "c.png"]
    assert body["totals"]["bad"] == 0 and body["totals"]["cost"] == 105
    submitted = api.post(f"{BATCHES}{batch['id']}/submit/")
    assert submitted.status_code == 200, submitted.json()
    answer = submitted.json()
    assert answer["status"] == "submitted" and [i["row"] for i in answer["items"]] == [1, 2, 3]
    assert answer["counts"] == {"Queued": 3} and answer["open"] == 3
    again = api.post(f"{BATCHES}{batch['id']}/submit/")
    assert again.status_code == 409 and again.json()["code"] == "submitted"
    assert Generation.objects.count() == 3


def test_a_batch_over_budget_is_a_402_and_queues_nothing(api, member):
    Budget.objects.create(user=member, monthly_limit=50)
    draft = api.post(
        BATCHES,
        {
            "sheet": sheet(["a", "", "hunyuan_rapid"], ["b", "", "hunyuan_rapid"]),
            "provider": "hunyuan_rapid",
        },
    )
    response = api.post(f"{BATCHES}{draft.json()['id']}/submit/")
    assert response.status_code == 402
    assert response.json()["code"] == "budget_exceeded"
    assert (
        "70 credits" in response.json()["detail"]
        and "your monthly budget" in response.json()["detail"]
    )
    assert not Generation.objects.exists() and not LedgerEntry.objects.exists()


def test_cancel_and_zip(api, member, doorbell):
    draft = api.post(
        BATCHES,
        {
            "sheet": sheet(["a", "", "hunyuan_rapid"], ["b", "", "hunyuan_rapid"]),
            "provider": "hunyuan_rapid",
        },
    )
    batch_id = draft.json()["id"]
    api.post(f"{BATCHES}{batch_id}/submit/")
    first = BatchItem.objects.get(batch_id=batch_id, row=1).generation
    Generation.objects.filter(pk=first.pk).update(state=State.IN_PROGRESS)
    assert api.post(f"{BATCHES}{batch_id}/cancel/").json() == {"canceled": 1, "already_sent": 0}
    done = make_finished(member)
    batch = Batch.objects.get(pk=batch_id)
    BatchItem.objects.create(batch=batch, row=3, generation=done)
    body = api.get(f"{BATCHES}{batch_id}/").json()
    assert body["counts"] == {"Generating": 1, "Finished": 1, "Canceled": 1}
    archive = zipfile.ZipFile(io.BytesIO(b"".join(api.get(body["zip_url"]).streaming_content)))
    assert archive.read(f"row-003-generation-{done.pk}.glb") == GLB_STUB
    assert "manifest.csv" in archive.namelist()


def test_another_members_batch_is_404_and_outsiders_cannot_make_one(api, second_member, outsider):
    draft = api.post(
        BATCHES, {"sheet": sheet(["a", "", "hunyuan_rapid"]), "provider": "hunyuan_rapid"}
    )
    other = token_client(second_member)
    for suffix in ("", "submit/", "cancel/", "models.zip"):
        method = other.get if suffix in ("", "models.zip") else other.post
        assert method(f"{BATCHES}{draft.json()['id']}/{suffix}").status_code == 404
    assert token_client(outsider).post(BATCHES, {"provider": "hunyuan_rapid"}).status_code == 403
