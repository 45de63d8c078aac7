"""A member logs in, submits a prompt, watches progress and sees the model load."""

import re

import pytest
from playwright.sync_api import expect

from generations.models import Generation, State
from tests.browser.conftest import screenshot
from tests.processes import Stack

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(tmp_path, settings):
    # Slow enough (Rapid ~4.5 s) to watch the progress bar move.
    stack = Stack(tmp_path, time_scale=0.03)
    settings.MEDIA_ROOT = stack.media
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_a_member_turns_a_prompt_into_a_visible_model(page, live_server, stack, member):
    page.goto(f"{live_server.url}/accounts/login/")
    screenshot(page, "login")
    page.fill("#id_username", "member")
    page.fill("#id_password", "pw-member")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/generations/new/")
    page.fill("#id_prompt", "a red wooden chair")
    assert page.text_content("[data-testid=cost-total]") == "35"
    page.check("#id_enable_pbr")
    # expect polls without evaluating a string: the Content-Security-Policy allows no eval.
    expect(page.locator("[data-testid=cost-total]")).to_have_text("55")
    screenshot(page, "new-generation")
    page.click("button:has-text('Generate')")
    # The form posts through htmx: wait for the redirect to the generation's own page.
    page.wait_for_url(re.compile(r"/generations/\d+/$"))
    generation = Generation.objects.get()
    assert generation.credit_estimate == 55

    seen = {page.get_attribute("#progress", "value")}
    for _ in range(300):
        seen.add(page.get_attribute("#progress", "value"))
        if page.query_selector("model-viewer"):
            break
        page.wait_for_timeout(100)
    screenshot(page, "generation-progress")
    assert len(seen) >= 2, f"the progress bar never moved: {seen}"
    page.wait_for_selector("model-viewer", timeout=60_000)
    loaded = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const viewer = document.querySelector('model-viewer');
            if (viewer.loaded) return resolve(true);
            viewer.addEventListener('load', () => resolve(true));
            viewer.addEventListener('error', (e) => reject(new Error('model-viewer error: ' + e.detail.type)));
            setTimeout(() => reject(new Error('no load event within 30 s')), 30000);
        })"""
    )
    assert loaded is True
    page.wait_for_timeout(500)
    screenshot(page, "generation-finished")
    generation.refresh_from_db()
    assert generation.state == State.FINISHED
    assert "Finished" in page.text_content("#status-card")
    assert page.outside_requests == []
    assert page.errors == []
