"""Pictures everywhere, in real Chromium: the list, the queue and the library show each
finished model's picture without its page being opened; a turntable plays."""

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from generations import posters
from generations.models import Asset
from reviews.models import Decision, Review
from tests.browser.conftest import screenshot
from tests.test_reviews_support import make_finished

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def chair_glb():
    from sandbox import meshes

    return meshes.glb_bytes(meshes.model_from_prompt("a red chair", 1))


def turntable_gif(glb, tmp_path, monkeypatch):
    """An animated GIF of the model turning, as the upstream's render tool would send one."""
    path = tmp_path / "turning.glb"
    path.write_bytes(glb)
    frames = []
    for step in range(8):
        monkeypatch.setattr(posters, "AZIMUTH", step * 3.14159 / 4)
        frame = posters.render(path, size=256)
        flat = Image.new("RGB", frame.size, (238, 238, 238))
        flat.paste(frame, mask=frame)
        frames.append(flat)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=150, loop=0)
    return out.getvalue()


def add_turntable(generation, data):
    return Asset.objects.create(
        generation=generation,
        role="render",
        file=ContentFile(data, name="turntable.gif"),
        format="gif",
        original_name="0:render:turntable.gif",
        bytes=len(data),
        sha256="0" * 64,
    )


def shown(locator, timeout=10_000):
    """Whether the browser fetched and decoded the picture (within ``timeout`` ms: the
    pictures load lazily, once scrolled into view)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # Scrolled by the page itself (Playwright's own scroll waits for the layout to settle).
    locator.evaluate("img => img.scrollIntoView({block: 'center'})")
    try:
        locator.page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0",
            arg=locator.element_handle(),
            timeout=timeout,
        )
    except PlaywrightTimeout:
        return False
    return True


def test_the_list_queue_and_library_show_every_models_picture(
    page, live_server, settings, tmp_path, member, reviewer, admin_user, chair_glb, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reviewer.set_password("pw-reviewer")
    reviewer.save()
    gif = turntable_gif(chair_glb, tmp_path, monkeypatch)
    monkeypatch.undo()
    settings.MEDIA_ROOT = tmp_path / "media"
    waiting = make_finished(member, "a red chair to review", glb_bytes=chair_glb)
    turning = make_finished(member, "a turning red chair to review", glb_bytes=chair_glb)
    approved = make_finished(member, "an approved red chair", glb_bytes=chair_glb)
    approved_turning = make_finished(member, "an approved turning chair", glb_bytes=chair_glb)
    for generation in (waiting, turning, approved, approved_turning):
        assert posters.make_poster(generation) is not None  # as the task does after ingest
    add_turntable(turning, gif)
    add_turntable(approved_turning, gif)
    for generation in (approved, approved_turning):
        Review.objects.record_decision(generation, admin_user, Decision.APPROVED, "fine")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "pw-reviewer")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/**")

    page.goto(f"{live_server.url}/generations/")
    pictures = page.locator(".gallery .thumb img")
    assert pictures.count() == 4
    assert page.locator(".thumb-empty").count() == 0  # no grey "Text" tile
    for i in range(4):
        assert shown(pictures.nth(i))
    screenshot(page, "posters-list")

    page.goto(f"{live_server.url}/reviews/")
    still = page.locator(f"#queue-item-{waiting.pk} .queue-preview img")
    assert still.get_attribute("alt") == f"Thumbnail of generation {waiting.pk}"
    assert shown(still)
    moving = page.locator(f"#queue-item-{turning.pk} [data-testid=turntable]")
    assert shown(moving)
    assert page.locator("model-viewer").count() == 0
    screenshot(page, "posters-queue")

    page.goto(f"{live_server.url}/library/")
    items = page.locator("[data-testid=library-item]")
    assert items.count() == 2
    assert shown(page.locator(f"[data-generation='{approved.pk}'] .library-thumb img"))
    assert shown(page.locator(f"[data-generation='{approved_turning.pk}'] [data-testid=turntable]"))
    screenshot(page, "posters-library")
    assert page.outside_requests == []
    assert page.errors == []
