"""A reviewer works through the queue with the keyboard, in real Chromium."""

import io

import pytest
import trimesh
from django.core.files.base import ContentFile
from django.utils import timezone

from generations.models import Asset, Generation, State
from reviews.models import Decision, Review, ReviewStatus
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _glb(extents, colour=(176, 112, 64, 255)):
    buffer = io.BytesIO()
    box = trimesh.creation.box(extents=extents)
    # A wood tone, so the model stands out against the viewer's light background.
    material = trimesh.visual.material.PBRMaterial(baseColorFactor=list(colour))
    box.visual = trimesh.visual.TextureVisuals(material=material)
    box.export(buffer, file_type="glb")
    return buffer.getvalue()


def _finished(owner, prompt, extents, minutes_ago, previous=None):
    generation = Generation.objects.create(
        owner=owner,
        prompt=prompt,
        provider="hunyuan_rapid",
        credit_estimate=35,
        state=State.FINISHED,
        progress=100,
        previous_version=previous,
        options={"enable_pbr": previous is not None},
        finished_at=timezone.now() - timezone.timedelta(minutes=minutes_ago),
    )
    data = _glb(extents)
    Asset.objects.create(
        generation=generation,
        role=Asset.Role.MODEL,
        file=ContentFile(data, name=f"box-{generation.pk}.glb"),
        format="glb",
        original_name="model.glb",
        bytes=len(data),
        sha256="0" * 64,
    )
    return generation


def _wait_for_models(page):
    """Every model-viewer in view has loaded its GLB (lazy ones below the fold may wait)."""
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('model-viewer')).every((v) => {
            const box = v.getBoundingClientRect();
            return v.loaded || box.top > window.innerHeight;
        })""",
        timeout=30_000,
    )


def test_a_reviewer_works_through_the_queue_with_the_keyboard(
    page, live_server, settings, tmp_path, member, reviewer
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reviewer.set_password("pw-reviewer")
    reviewer.save()
    stool = _finished(member, "a low wooden stool", (1, 0.5, 1), 50)
    table = _finished(member, "a long dining table", (2, 0.8, 1), 40)
    lamp = _finished(member, "a tall floor lamp", (0.3, 2, 0.3), 30)
    shelf = _finished(member, "a narrow bookshelf", (1, 2, 0.4), 20)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "pw-reviewer")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/reviews/")
    assert page.get_attribute("[data-testid=nav-review] .nav-count", "title") == "4 awaiting review"
    _wait_for_models(page)
    screenshot(page, "review-queue")
    assert "j" in page.text_content("#queue-help") and "approve" in page.text_content("#queue-help")

    # Oldest first: the stool is selected. j moves to the table; a approves it.
    items = page.locator("[data-queue-item]")
    assert "stool" in items.nth(0).text_content()
    page.keyboard.press("j")
    assert "table" in page.locator("[data-queue-item].selected").text_content()
    page.keyboard.press("a")
    page.wait_for_selector(f"#queue-item-{table.pk}[data-queue-done]")
    assert "Approved" in page.text_content(f"#queue-item-{table.pk}")
    # The navigation count followed (out-of-band swap).
    assert page.get_attribute("[data-testid=nav-review] .nav-count", "title") == "3 awaiting review"

    # The lamp moved up under the selection; c asks for a comment, Enter sends it.
    assert "lamp" in page.locator("[data-queue-item].selected").text_content()
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    page.keyboard.type("Make it a little shorter, please.")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#queue-item-{lamp.pk}[data-queue-done]")

    # k goes back up to the stool; r then a comment rejects it.
    page.keyboard.press("k")
    assert "stool" in page.locator("[data-queue-item].selected").text_content()
    page.keyboard.press("r")
    page.keyboard.type("Wrong proportions.")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#queue-item-{stool.pk}[data-queue-done]")
    screenshot(page, "review-queue-after-decisions")

    assert ReviewStatus.objects.get(generation=table).state == Decision.APPROVED
    lamp_review = Review.objects.get(generation=lamp)
    assert (lamp_review.decision, lamp_review.comment) == (
        Decision.CHANGES_REQUESTED,
        "Make it a little shorter, please.",
    )
    assert Review.objects.get(generation=stool).decision == Decision.REJECTED
    assert not Review.objects.filter(generation=shelf).exists()

    # The member's retake of the lamp enters the queue; the reviewer compares versions.
    retake = _finished(member, "a shorter floor lamp", (0.3, 1.4, 0.3), 1, previous=lamp)
    page.goto(f"{live_server.url}/reviews/{retake.pk}/compare/")
    _wait_for_models(page)
    assert page.locator("model-viewer").count() == 2
    assert "shorter" in page.locator("mark").all_text_contents()
    screenshot(page, "review-compare")

    page.goto(f"{live_server.url}/reviews/{retake.pk}/")
    screenshot(page, "review-panel")
    page.goto(f"{live_server.url}/library/")
    _wait_for_models(page)
    assert page.locator("[data-testid=library-item]").count() == 1
    screenshot(page, "library")
    assert page.outside_requests == []
    assert page.errors == []


def test_a_model_that_cannot_be_loaded_says_so(page, live_server, settings, tmp_path, member):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    member.set_password("pw-member")
    member.save()
    stool = _finished(member, "a low wooden stool", (1, 0.5, 1), 50)
    stool.assets.get().file.delete(save=False)  # gone from storage: the view answers 404

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", member.username)
    page.fill("#id_password", "pw-member")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/generations/{stool.pk}/")
    note = page.wait_for_selector("model-viewer + .viewer-error", timeout=30_000)
    assert note.get_attribute("role") == "alert"
    assert "could not be loaded" in note.text_content()
    assert page.locator(".viewer-error").count() == 1
    screenshot(page, "viewer-load-failed")
    assert page.outside_requests == [] and page.errors == []
