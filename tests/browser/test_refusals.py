"""What a person sees when a login is paused (issue 16, item 3) or a body is too large
(item 2), in Chromium, under the Content-Security-Policy."""

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_csp import RECORD_VIOLATIONS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_paused_login_and_a_too_large_form_say_why(page, live_server, settings, member):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = 3
    page.add_init_script(RECORD_VIOLATIONS)
    for attempt in range(3):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "member")
        page.fill("#id_password", f"wrong-{attempt}")
        page.click("button[type=submit]")
    assert "Too many failed logins" in page.text_content("[role=alert]")
    assert "paused for 15 minutes" in page.text_content("[role=alert]")
    screenshot(page, "login-locked-out")
    assert page.evaluate("window.__csp") == []

    # A 3 MB form posted to the login page: refused from its length, said in words.
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        """() => { const form = document.querySelector("form[method=post]");
                   const big = document.createElement("textarea");
                   big.name = "padding"; big.value = "x".repeat(3 * 1024 * 1024);
                   form.appendChild(big); form.submit(); }"""
    )
    page.wait_for_selector("h1")
    assert "This upload is too large" in page.text_content("h1")
    assert "at most 2.5 MB" in page.text_content("[role=alert]")
    screenshot(page, "body-too-large")
    assert page.evaluate("window.__csp") == []
    assert page.errors == []
