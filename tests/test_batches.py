"""Batches: a CSV or many images read into a draft, every row checked by the form with its
cost, submitted all or nothing, then followed, canceled and downloaded as one ZIP."""

import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from credits.models import Budget, LedgerEntry
from generations.models import Batch, BatchItem, Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import png
from tests.test_reviews_support import GLB_STUB, make_finished

pytestmark = pytest.mark.django_db
NEW = reverse("batches:new")


def sheet(*rows, header=("prompt", "image", "provider", "enable_pbr")):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile("props.csv", buffer.getvalue().encode(), content_type="text/csv")


def image(name="crate.png"):
    return SimpleUploadedFile(name, png(), content_type="image/png")


def upload(client, url=NEW, **files):
    data = {"provider": "hunyuan_rapid", "edition": "", "options": "", **files}
    return client.post(url, data)


def draft_of(response):
    assert response.status_code == 302, (
        getattr(response, "context", None) and response.context["form"].errors
    )
    return Batch.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


def test_a_csv_is_read_into_a_draft_with_each_rows_errors_and_cost(member_client, member):
    Budget.objects.create(user=member, monthly_limit=1000)
    response = upload(
        member_client,
        sheet=sheet(
            ["a barrel", "", "hunyuan_rapid", "true"],
            ["a lamp", "", "nope", ""],
            ["", "crate.png", "", ""],
        ),
    )
    batch = draft_of(response)
    assert batch.status == Batch.Status.DRAFT and batch.name == "props.csv"
    first, second, third = batch.rows
    assert (
        first["errors"] == {} and first["cost"] == 55 and first["options"] == {"enable_pbr": "true"}
    )
    assert "provider" in second["errors"] and second["cost"] is None
    assert "image" in third["errors"]  # named, but not uploaded
    page = member_client.get(reverse("batches:detail", args=[batch.pk]))
    html = page.content.decode()
    assert "2 rows have errors" in html and "Unknown provider" in html
    assert "1000 credits left" in html and 'id="batch-submit"' not in html
    assert not Generation.objects.exists()


def test_a_corrected_upload_replaces_the_rows_and_then_all_are_queued(
    member_client, member, doorbell, django_capture_on_commit_callbacks
):
    batch = draft_of(upload(member_client, sheet=sheet(["a lamp", "", "nope", ""])))
    url = reverse("batches:detail", args=[batch.pk])
    fixed = sheet(["a lamp", "", "hunyuan_rapid", ""], ["", "crate.png", "hunyuan_rapid", ""])
    assert upload(member_client, url, sheet=fixed, images=[image()]).status_code == 302
    batch.refresh_from_db()
    assert [row["errors"] for row in batch.rows] == [{}, {}]
    assert 'id="batch-submit"' in member_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(reverse("batches:submit", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == Batch.Status.SUBMITTED
    items = list(BatchItem.objects.filter(batch=batch).select_related("generation"))
    assert [item.row for item in items] == [1, 2]
    assert items[1].generation.mode == "image" and items[1].generation.images.count() == 1
    assert LedgerEntry.objects.filter(kind="hold").count() == 2
    assert sorted(doorbell) == sorted(item.generation.pk for item in items)
    # A second submit (a double click) queues nothing more.
    member_client.post(reverse("batches:submit", args=[batch.pk]))
    assert Generation.objects.count() == 2


def test_many_images_make_one_generation_each_with_the_shared_choices(member_client, doorbell):
    response = member_client.post(
        NEW,
        {
            "provider": "hunyuan_rapid",
            "options": "enable_pbr=true",
            "images": [image("a.png"), image("b.png"), image("c.png")],
        },
    )
    batch = draft_of(response)
    assert batch.name == "3 images"
    assert [(r["image"], r["mode"], r["errors"]) for r in batch.rows] == [
        ("a.png", "image", {}),
        ("b.png", "image", {}),
        ("c.png", "image", {}),
    ]
    # The draft's form starts from the batch's choices; each upload sends them again.
    page = member_client.get(reverse("batches:detail", args=[batch.pk])).content.decode()
    assert "enable_pbr=true</textarea>" in page
    more = member_client.post(
        reverse("batches:detail", args=[batch.pk]),
        {"provider": "hunyuan_rapid", "options": "enable_pbr=true", "images": [image("d.png")]},
    )
    assert more.status_code == 302
    batch.refresh_from_db()
    assert len(batch.rows) == 4 and batch.name == "4 images"
    member_client.post(reverse("batches:submit", args=[batch.pk]))
    generations = Generation.objects.order_by("pk")
    assert generations.count() == 4
    assert all(g.options["enable_pbr"] is True and g.mode == "image" for g in generations)


def test_a_batch_over_the_budget_queues_nothing_and_says_why(member_client, member):
    Budget.objects.create(user=member, monthly_limit=100)
    rows = [[f"prop {n}", "", "hunyuan_rapid", ""] for n in range(3)]  # 3 x 35 > 100
    batch = draft_of(upload(member_client, sheet=sheet(*rows)))
    page = member_client.get(reverse("batches:detail", args=[batch.pk])).content.decode()
    assert "costs more than is left" in page
    response = member_client.post(reverse("batches:submit", args=[batch.pk]), follow=True)
    assert "Nothing was queued" in response.content.decode()
    assert "105 credits" in response.content.decode()
    assert not Generation.objects.exists() and not LedgerEntry.objects.exists()
    batch.refresh_from_db()
    assert batch.status == Batch.Status.DRAFT


def test_a_row_that_became_invalid_rolls_the_whole_batch_back(member_client):
    batch = draft_of(
        upload(
            member_client,
            sheet=sheet(["a", "", "hunyuan_rapid", ""], ["b", "", "hunyuan_rapid", ""]),
        )
    )
    rows = batch.rows
    rows[1]["options"] = {"colour": "red"}
    Batch.objects.filter(pk=batch.pk).update(rows=rows)
    response = member_client.post(reverse("batches:submit", args=[batch.pk]), follow=True)
    assert "row 2 has errors" in response.content.decode()
    assert not Generation.objects.exists() and not LedgerEntry.objects.exists()


def test_the_batch_page_counts_states_and_cancels_the_rest(member_client, member, doorbell):
    batch = draft_of(
        upload(member_client, sheet=sheet(*[[f"p{n}", "", "hunyuan_rapid", ""] for n in range(3)]))
    )
    member_client.post(reverse("batches:submit", args=[batch.pk]))
    first, second, third = [item.generation for item in batch.items.select_related("generation")]
    Generation.objects.filter(pk=first.pk).update(state=State.IN_PROGRESS, progress=50)
    page = member_client.get(reverse("batches:detail", args=[batch.pk])).content.decode()
    assert "Queued: 2" in page and "Generating: 1" in page
    assert "17%" in page  # (50 + 0 + 0) / 3
    assert "all expected by" in page
    fragment = member_client.get(reverse("batches:detail", args=[batch.pk]), HTTP_HX_REQUEST="true")
    assert (
        'id="batch-status"' in fragment.content.decode()
        and "<html" not in fragment.content.decode()
    )
    response = member_client.post(reverse("batches:cancel", args=[batch.pk]), follow=True)
    assert "2 not yet sent canceled" in response.content.decode()
    states = sorted(Generation.objects.values_list("state", flat=True))
    assert states == ["canceled", "canceled", "in_progress"]
    assert LedgerEntry.objects.filter(kind="release").count() == 2


def test_the_zip_streams_every_finished_model_with_a_manifest(member_client, member):
    batch = Batch.objects.create(owner=member, name="x", status=Batch.Status.SUBMITTED)
    done = make_finished(member)
    failed = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", credit_estimate=35, state=State.FAILED
    )
    BatchItem.objects.create(batch=batch, row=1, generation=done)
    BatchItem.objects.create(batch=batch, row=2, generation=failed)
    response = member_client.get(reverse("batches:zip", args=[batch.pk]))
    assert response.status_code == 200 and response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    name = f"row-001-generation-{done.pk}.glb"
    assert archive.read(name) == GLB_STUB
    manifest = list(csv.reader(io.StringIO(archive.read("manifest.csv").decode())))
    assert manifest == [
        ["row", "generation", "state", "file"],
        ["1", str(done.pk), "finished", name],
        ["2", str(failed.pk), "failed", ""],
    ]


def test_another_members_batch_is_404(client, member, second_member):
    batch = Batch.objects.create(owner=member, name="x")
    client.force_login(second_member)
    for url in ("batches:detail", "batches:zip"):
        assert client.get(reverse(url, args=[batch.pk])).status_code == 404
    for url in ("batches:submit", "batches:cancel"):
        assert client.post(reverse(url, args=[batch.pk])).status_code == 404


def test_a_member_without_the_role_cannot_make_batches(client, outsider):
    client.force_login(outsider)
    assert client.get(NEW).status_code == 403


def test_an_upload_needs_a_csv_or_images(member_client):
    response = upload(member_client)
    assert response.status_code == 200
    assert "Choose a CSV, or images, or both." in response.content.decode()
    bad = upload(
        member_client, sheet=SimpleUploadedFile("x.csv", b"\xff\xfe\x00", content_type="text/csv")
    )
    assert "UTF-8" in bad.content.decode()


def test_a_model_missing_from_storage_leaves_its_file_out_of_the_zip(member_client, member):
    batch = Batch.objects.create(owner=member, name="x", status=Batch.Status.SUBMITTED)
    gone, kept = make_finished(member), make_finished(member)
    gone.assets.get().file.delete(save=False)
    BatchItem.objects.create(batch=batch, row=1, generation=gone)
    BatchItem.objects.create(batch=batch, row=2, generation=kept)
    response = member_client.get(reverse("batches:zip", args=[batch.pk]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = list(csv.reader(io.StringIO(archive.read("manifest.csv").decode())))
    assert manifest[1] == ["1", str(gone.pk), "finished", ""]
    assert archive.read(manifest[2][3]) == GLB_STUB
