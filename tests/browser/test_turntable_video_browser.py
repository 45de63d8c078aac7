"""A rendered turntable video plays in real Chromium: in the review queue, in the library and
on the generation's page, muted and looping over its poster, under our Content-Security-Policy;
a GIF turntable still shows beside it."""

import pytest

from generations import posters
from reviews.models import Decision, Review
from tests.browser.conftest import screenshot
from tests.browser.test_csp import RECORD_VIOLATIONS
from tests.browser.test_posters import add_turntable, chair_glb, shown, turntable_gif  # noqa: F401
from tests.test_reviews_support import make_finished
from tests.test_turntable_video import mp4_turntable

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PLAYING = "v => v.readyState >= 2 && v.duration > 0 && !v.error && v.muted && v.loop"


def plays(locator):
    """Whether the browser decoded the video's frames (not only its poster)."""
    # Scrolled by the page itself: Playwright's own scroll waits for the element to stop
    # moving, and on the generation's page the viewer above it is still loading.
    locator.evaluate("v => v.scrollIntoView({block: 'center'})")
    locator.page.wait_for_function(
        f"v => ({PLAYING})(v)", arg=locator.element_handle(), timeout=10_000
    )
    return locator.evaluate(PLAYING)


def test_a_turntable_video_plays_in_the_queue_the_library_and_the_page(
    page,
    live_server,
    settings,
    tmp_path,
    member,
    reviewer,
    admin_user,
    chair_glb,  # noqa: F811
    monkeypatch,
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reviewer.set_password("pw-reviewer")
    reviewer.save()
    gif = turntable_gif(chair_glb, tmp_path, monkeypatch)
    monkeypatch.undo()
    settings.MEDIA_ROOT = tmp_path / "media"
    filmed = make_finished(member, "a filmed red chair", glb_bytes=chair_glb)
    turning = make_finished(member, "a turning red chair", glb_bytes=chair_glb)
    approved = make_finished(member, "an approved filmed chair", glb_bytes=chair_glb)
    for generation in (filmed, turning, approved):
        assert posters.make_poster(generation) is not None
    mp4_turntable(filmed)
    add_turntable(turning, gif)
    mp4_turntable(approved)
    Review.objects.record_decision(approved, admin_user, Decision.APPROVED, "fine")

    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "pw-reviewer")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/**")

    page.goto(f"{live_server.url}/reviews/")
    video = page.locator(f"#queue-item-{filmed.pk} video[data-testid=turntable]")
    assert video.get_attribute("poster")
    assert plays(video)
    assert shown(page.locator(f"#queue-item-{turning.pk} img[data-testid=turntable]"))
    screenshot(page, "turntable-video-queue")

    page.goto(f"{live_server.url}/library/")
    assert plays(page.locator(f"[data-generation='{approved.pk}'] video[data-testid=turntable]"))
    screenshot(page, "turntable-video-library")

    page.goto(f"{live_server.url}/generations/{filmed.pk}/")
    assert plays(page.locator("[data-testid=renders] video"))
    screenshot(page, "turntable-video-page")

    assert page.evaluate("window.__csp") == []
    assert page.outside_requests == []
    assert page.errors == []
