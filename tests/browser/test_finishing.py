"""Finishing a model in real Chromium, against the sandbox, a worker and the dispatcher:
a finished model is optimized for the web, and the new version opens from the section,
with its lineage and its model in the viewer; a still rendered of it shows as an image."""

import re

import pytest
from playwright.sync_api import expect

from credits.models import LedgerEntry
from generations.models import Conversion, Generation, State
from tests.browser.conftest import screenshot

# One stack (sandbox, worker, dispatcher) for the module, as the workspace flows run.
from tests.browser.test_workspace_flows import login, stack, submit, wait_loaded  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("stack"),
]


def test_a_finishing_step_becomes_a_new_version_on_screen(page, live_server, member):
    login(page, live_server)
    page.goto(f"{live_server.url}/generations/new/")
    page.fill("#id_prompt", "a small wooden stool")
    pk = submit(page)
    assert wait_loaded(page) is True

    # The section offers each step with its cost; optimize uploads our own file.
    section = page.locator("#finishing")
    expect(section).to_contain_text("Optimize for the web · from 10 credits")
    page.click("#finish-optimize summary")
    page.select_option("#id_optimize-preset", "low")
    screenshot(page, "finishing-section")
    page.click("#finish-optimize button")
    expect(section).to_contain_text("10 credits held")
    link = page.locator("#finishing a.finish-result")
    expect(link).to_be_visible(timeout=60_000)
    screenshot(page, "finishing-done")
    job = Conversion.objects.get(generation_id=pk, kind="optimize")
    assert job.state == State.FINISHED
    link.click()
    page.wait_for_url(re.compile(rf"/generations/{job.result_id}/$"))
    assert wait_loaded(page) is True
    expect(page.locator("[data-testid=lineage]")).to_contain_text(
        f"Optimized for the web (preset low), from #{pk}"
    )

    # A still of the new version (its own result URL lives): shown as an image.
    page.click("#finish-render summary")
    page.select_option("#id_render-angle", "front")
    page.select_option("#id_render-resolution", "512")
    page.click("#finish-render button")
    render_link = page.locator("#finishing li[data-kind=render] a.finish-result")
    expect(render_link).to_be_visible(timeout=60_000)
    render_link.click()
    image = page.locator("[data-testid=renders] img").first
    expect(image).to_be_visible()
    # Decoded, not only laid out: under load the picture may still be on its way.
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=15_000
    )
    screenshot(page, "finishing-render-version")

    version = Generation.objects.get(pk=job.result_id)
    assert version.previous_version_id == pk
    charges = LedgerEntry.objects.filter(conversion__isnull=False, kind="charge")
    assert sorted(e.amount for e in charges) == [-10, -5]
    assert page.outside_requests == []
    assert page.errors == []
