"""Images first in real Chromium, against the sandbox, a worker and the dispatcher: a prompt
becomes concept images (live cost as the model and resolution change), one is edited
again, one is picked and made a 3D model, and the generation's page shows the lineage."""

import re

import pytest
from playwright.sync_api import expect

from credits.models import LedgerEntry
from generations.models import ConceptJob, ConceptPick, Generation, State
from tests.browser.conftest import screenshot
from tests.browser.test_workspace_flows import login

# The workspace tests' stack (the sandbox, a worker and the dispatcher), one for this module.
from tests.browser.test_workspace_flows import stack as concept_stack  # noqa: F401
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def job_page(page):
    page.wait_for_url(re.compile(r"/generations/concepts/\d+/$"), timeout=15_000)
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_images_first_from_a_prompt_to_a_model_with_its_lineage(
    page,
    live_server,
    concept_stack,  # noqa: F811
    member,
):
    login(page, live_server)
    page.goto(f"{live_server.url}/")
    page.click("a:has-text('Start from an image')")
    expect(page.locator("h1")).to_have_text("Start from an image")

    # The model's options come and go with it; the cost follows model, resolution and count.
    page.select_option("#id_image_model", "gemini_3_pro")
    # Swapped in (3.1 Flash, the default, has a 512px tier; 3 Pro has none).
    expect(page.locator("legend:has-text('Gemini 3 Pro options')")).to_be_visible()
    expect(page.locator("#id_resolution option[value='512px']")).to_have_count(0)
    page.fill("#id_prompt", "a brass owl desk lamp, three-quarter view")
    page.select_option("#id_count", "3")
    expect(page.get_by_test_id("cost-total")).to_have_text("150")
    page.select_option("#id_resolution", "4K")
    expect(page.get_by_test_id("cost-total")).to_have_text("240")
    page.select_option("#id_image_model", "gemini_25_flash")
    expect(page.locator("#id_resolution")).to_have_count(0)
    expect(page.locator("#id_prompt")).to_have_value("a brass owl desk lamp, three-quarter view")
    expect(page.get_by_test_id("cost-total")).to_have_text("15")
    screenshot(page, "concepts-new")
    page.click("button:has-text('Make the images')")
    first = job_page(page)

    # Progress by htmx polling, then the grid of images to pick from.
    expect(page.get_by_test_id("concept-grid").locator("img")).to_have_count(3, timeout=30_000)
    for index in range(3):
        expect(page.get_by_test_id("concept-grid").locator("img").nth(index)).to_have_js_property(
            "complete", True
        )
    screenshot(page, "concepts-job")

    # Edit again: the second image and a new prompt on the same model.
    page.locator(".concept-tile").nth(1).locator("a:has-text('Edit again')").click()
    expect(page.locator("#id_prompt")).to_have_value("a brass owl desk lamp, three-quarter view")
    page.fill("#id_prompt", "the same lamp in brushed steel")
    page.select_option("#id_count", "1")
    expect(page.get_by_test_id("cost-total")).to_have_text("5")
    screenshot(page, "concepts-edit-again")
    page.click("button:has-text('Make the images')")
    second = job_page(page)
    expect(page.get_by_test_id("concept-grid").locator("img")).to_have_count(1, timeout=30_000)
    expect(page.locator(f"a:has-text('#{first}')")).to_have_count(1)  # the edit's lineage

    # Pick it and make a model on TRELLIS.2 (cost shown before submit).
    page.locator(".concept-tile input[type=radio]").first.check()
    page.select_option("#id_target", "trellis2::image")
    expect(page.get_by_test_id("model-cost-total")).to_have_text(re.compile(r"^\d+$"))
    screenshot(page, "concepts-pick")
    page.click("button:has-text('Make the 3D model')")
    page.wait_for_url(re.compile(r"/generations/\d+/$"), timeout=15_000)
    generation = Generation.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    expect(page.get_by_test_id("lineage")).to_be_visible()
    expect(page.get_by_test_id("lineage-prompt")).to_contain_text("brushed steel")
    expect(page.get_by_test_id("chosen")).to_have_count(1)
    wait_for(lambda: Generation.objects.get(pk=generation.pk).state == State.FINISHED, timeout=60)
    page.reload()
    expect(page.get_by_test_id("lineage")).to_be_visible()
    screenshot(page, "concepts-generation-lineage")

    page.goto(f"{live_server.url}/generations/concepts/")
    expect(page.get_by_test_id("concept-jobs").locator("li")).to_have_count(2)
    screenshot(page, "concepts-list")

    pick = ConceptPick.objects.get(generation=generation)
    assert pick.image.job_id == second
    assert ConceptJob.objects.get(pk=second).edit_of.job_id == first
    assert page.errors == [] and page.outside_requests == []
    # Every credit in the ledger: two jobs and the generation, charged once each.
    charges = LedgerEntry.objects.filter(user=member, kind="charge")
    assert sorted(-e.amount for e in charges) == sorted([15, 5, generation.credit_estimate])


def test_a_failed_job_says_why_and_gives_the_credits_back(
    page,
    live_server,
    concept_stack,  # noqa: F811
    member,
):
    concept_stack.set_faults({"fail_rate": 1.0})
    try:
        login(page, live_server)
        page.goto(f"{live_server.url}/generations/concepts/new/")
        page.fill("#id_prompt", "a chair that cannot be drawn")
        page.click("button:has-text('Make the images')")
        pk = job_page(page)
        expect(page.get_by_test_id("concept-failure")).to_be_visible(timeout=30_000)
        screenshot(page, "concepts-failed")
        job = ConceptJob.objects.get(pk=pk)
        entries = LedgerEntry.objects.filter(note__startswith=f"concept job {pk}:")
        assert job.state == State.FAILED
        assert sum(e.amount for e in entries) == 0
        assert [e.kind for e in entries] == ["hold", "release", "charge", "refund"]
    finally:
        concept_stack.set_faults({})
