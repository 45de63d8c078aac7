"""The batch page in real Chromium, against the sandbox, a worker and the dispatcher: a CSV
with a bad row, the fix, submit, progress to the end, and the ZIP of every model."""

import csv
import io
import zipfile

import pytest
import trimesh
from django.test import override_settings
from playwright.sync_api import expect

from generations.models import Batch, Generation, State
from tests.browser.conftest import screenshot
from tests.processes import Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(tmp_path, live_server):
    stack = Stack(tmp_path, time_scale=0.01)
    media = override_settings(MEDIA_ROOT=stack.media)
    media.enable()
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        media.disable()


def write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "provider", "enable_pbr"])
        writer.writerows(rows)
    return str(path)


def test_a_csv_with_a_bad_row_is_fixed_submitted_followed_and_downloaded(
    page, live_server, member, stack, tmp_path
):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "member")
    page.fill("#id_password", "pw-member")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/**")

    page.goto(f"{live_server.url}/batches/")
    bad = write_csv(
        tmp_path / "props.csv",
        [
            ["a wooden barrel", "hunyuan_rapid", "true"],
            ["a brass lamp", "nope", ""],
            ["a crate", "", ""],
        ],
    )
    page.set_input_files("#id_sheet", bad)
    page.click("#batch-upload button[type=submit]")
    page.wait_for_selector("#batch-errors")
    assert "1 row has errors" in page.inner_text("#batch-errors")
    assert "Unknown provider" in page.inner_text("#row-2")
    assert page.locator("#batch-submit").count() == 0
    screenshot(page, "batch-draft-with-a-bad-row")

    fixed = write_csv(
        tmp_path / "props-fixed.csv",
        [
            ["a wooden barrel", "hunyuan_rapid", "true"],
            ["a brass lamp", "hunyuan_rapid", ""],
            ["a crate", "", ""],
        ],
    )
    page.set_input_files("#id_sheet", fixed)
    page.click("#batch-upload button[type=submit]")
    page.wait_for_selector("#batch-submit")
    assert page.locator("#batch-errors").count() == 0
    assert "3 rows, 125 credits in all" in page.inner_text("#batch-total")
    screenshot(page, "batch-draft-fixed")

    page.click("#batch-submit")
    page.wait_for_selector("#batch-status")
    assert "All 3 rows are queued." in page.content()
    # The status part refreshes itself (htmx) until every row has finished.
    # (expect polls without evaluating a string: the Content-Security-Policy allows no eval)
    expect(page.locator("#batch-summary")).to_contain_text("done", timeout=90_000)
    assert "3 of 3 finished" in page.inner_text("#batch-summary")
    assert page.locator("#batch-items a").count() == 3
    screenshot(page, "batch-finished")

    with page.expect_download() as download:
        page.click("#batch-zip")
    path = download.value.path()
    archive = zipfile.ZipFile(path)
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    batch = Batch.objects.get()
    generations = {g.pk: g for g in Generation.objects.all()}
    assert [row["row"] for row in manifest] == ["1", "2", "3"]
    for row in manifest:
        generation = generations[int(row["generation"])]
        assert generation.state == State.FINISHED and row["state"] == "finished"
        scene = trimesh.load(io.BytesIO(archive.read(row["file"])), file_type="glb", force="scene")
        assert len(scene.geometry) >= 1
    assert batch.items.count() == 3
    assert page.errors == [] and page.outside_requests == []


def test_more_images_than_one_request_carries_go_up_in_parts(
    page, live_server, member, tmp_path, settings
):
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path / "media"
    paths = []
    for n in range(11):  # more than DATA_UPLOAD_MAX_NUMBER_FILES (8) in one choice
        path = tmp_path / f"prop-{n:02d}.png"
        Image.new("RGB", (256, 256), (20 * n, 90, 160)).save(path)
        paths.append(str(path))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "member")
    page.fill("#id_password", "pw-member")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/**")
    page.goto(f"{live_server.url}/batches/")
    page.set_input_files("#id_images", paths)
    page.fill("#id_options", "enable_pbr=true")
    page.click("#batch-upload button[type=submit]")
    page.wait_for_selector("#batch-submit")
    assert page.locator("#batch-rows tbody tr").count() == 11
    assert "11 rows, 605 credits in all" in page.inner_text("#batch-total")
    batch = Batch.objects.get()
    assert batch.name == "11 images" and batch.images.count() == 11
    assert all(row["errors"] == {} for row in batch.rows)
    assert page.errors == [] and page.outside_requests == []
