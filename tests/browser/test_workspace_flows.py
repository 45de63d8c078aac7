"""The members' workspace in real Chromium, against the sandbox, a worker and the dispatcher.

One stack per module (a small time scale keeps the whole module near a minute):
text, single-image and multi-view submissions on each provider family, the
live cost, upload rejections, progress to a loaded model, downloads that
trimesh opens, regenerate, and the pages at phone width.
"""

import re
import zipfile

import pytest
import trimesh
from django.test import override_settings
from PIL import Image
from playwright.sync_api import expect

from generations.models import Conversion, Generation, State
from tests.browser.conftest import screenshot
from tests.processes import Stack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        stack = Stack(tmp_path_factory.mktemp("workspace"), time_scale=0.01)
        # override_settings, not assignment: its setting_changed signal makes the default
        # storage drop the location it cached, so the live server saves and reads uploads
        # and assets where the worker does. A bare assignment passed or failed by test order.
        media = override_settings(MEDIA_ROOT=stack.media)
        media.enable()
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
            media.disable()


def image_file(tmp_path, name, color, size=(320, 320), mode="RGB"):
    path = tmp_path / name
    Image.new(mode, size, color).save(path)
    return str(path)


def login(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "member")
    page.fill("#id_password", "pw-member")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/**")


def choose(page, provider, mode=None, edition=None):
    """Pick a combination the way a member does; wait for htmx to swap the fields in."""

    def swapped(part, value):
        # expect polls without evaluating a string: the Content-Security-Policy allows no eval.
        combination = re.compile("^" + "[^:]*:" * part + re.escape(value) + "(:|$)")
        expect(page.locator("#generation-form")).to_have_attribute("data-combination", combination)

    page.select_option("#id_provider", provider)
    swapped(0, provider)
    if edition:
        page.select_option("#id_edition", edition)
        swapped(2, edition)
    if mode:
        page.check(f"input[name=mode][value={mode}]")
        swapped(1, mode)


def submit(page):
    page.click("button:has-text('Generate')")
    try:
        page.wait_for_url(re.compile(r"/generations/\d+/$"), timeout=15_000)
    except Exception:
        screenshot(page, "workspace-submit-failed")
        raise
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def wait_loaded(page):
    page.wait_for_selector("model-viewer", timeout=60_000)
    return page.evaluate(
        """() => new Promise((resolve, reject) => {
            const viewer = document.querySelector('model-viewer');
            if (viewer.loaded) return resolve(true);
            viewer.addEventListener('load', () => resolve(true));
            viewer.addEventListener('error', (e) => reject(new Error('model-viewer: ' + e.detail.type)));
            setTimeout(() => reject(new Error('no load event within 30 s')), 30000);
        })"""
    )


def test_text_on_hunyuan_rapid_with_live_cost_progress_viewer_and_downloads(
    page, live_server, stack, member, tmp_path
):
    login(page, live_server)
    page.goto(f"{live_server.url}/generations/new/")
    assert page.text_content("[data-testid=cost-total]") == "35"
    page.fill("#id_prompt", "a red wooden chair")
    page.check("#id_enable_pbr")
    expect(page.locator("[data-testid=cost-total]")).to_have_text("55")
    screenshot(page, "workspace-new-text")
    pk = submit(page)
    seen = set()
    for _ in range(400):
        value = (
            page.get_attribute("#progress", "value") if page.query_selector("#progress") else None
        )
        seen.add(value)
        if page.query_selector("model-viewer"):
            break
        page.wait_for_timeout(50)
    assert wait_loaded(page) is True
    page.wait_for_timeout(400)
    screenshot(page, "workspace-detail-finished")
    assert "Finished" in page.text_content("#status-card")
    # The viewer controls work.
    page.uncheck("#viewer-rotate")
    assert page.evaluate("document.querySelector('model-viewer').autoRotate") is False
    page.fill("#viewer-exposure", "1.8")
    page.dispatch_event("#viewer-exposure", "input")
    assert page.evaluate("document.querySelector('model-viewer').exposure") == pytest.approx(1.8)
    page.check("#viewer-clay")
    page.wait_for_timeout(200)
    screenshot(page, "workspace-detail-clay")

    # A poster is captured for the history list (no upstream thumbnail for Rapid).
    generation = Generation.objects.get(pk=pk)
    wait_for(lambda: generation.assets.filter(role="thumbnail").exists(), 10, message="poster")

    # Downloads: the GLB, and each local conversion made on request; each opens with trimesh.
    files = {}
    with page.expect_download() as info:
        page.click("ul.downloads a:has-text('GLB')")
    files["glb"] = info.value.path()
    for fmt in ("stl", "ply", "obj"):
        page.select_option("#convert-format", fmt)
        page.click(".convert-form button")
        link = f"#conversions li[data-format={fmt}] a"
        page.wait_for_selector(link, timeout=30_000)
        with page.expect_download() as info:
            page.click(link)
        files[fmt] = info.value.path()
    screenshot(page, "workspace-detail-conversions")
    for fmt, path in files.items():
        if fmt == "obj":
            folder = tmp_path / "obj"
            zipfile.ZipFile(path).extractall(folder)
            loaded = trimesh.load(folder / "model.obj", force="scene")
        else:
            loaded = trimesh.load(path, file_type=fmt, force="scene")
        assert len(loaded.geometry) >= 1, fmt
    assert Conversion.objects.filter(generation_id=pk, state=State.FINISHED).count() == 3

    # The history list shows the captured poster, and paging/filtering keeps the URL.
    page.goto(f"{live_server.url}/generations/")
    page.fill("#id_q", "wooden")
    page.wait_for_url("**q=wooden**")
    page.wait_for_selector(f"a[href='/generations/{pk}/'] img")
    screenshot(page, "workspace-history")
    page.goto(f"{live_server.url}/")
    screenshot(page, "workspace-home")
    assert page.text_content("[data-testid=month-spend]") == "55"
    assert page.outside_requests == []
    assert page.errors == []


def test_image_and_multiview_submissions_on_every_family(
    page, live_server, stack, member, tmp_path
):
    login(page, live_server)
    red = image_file(tmp_path, "red.png", (200, 30, 30))
    blue = image_file(tmp_path, "blue.png", (30, 30, 200))
    see_through = image_file(tmp_path, "alpha.png", (0, 160, 0, 0), mode="RGBA")
    made = []

    # TRELLIS.2, one image: the provider switch swaps the fields; the preview shows.
    page.goto(f"{live_server.url}/generations/new/")
    choose(page, "trellis2")
    assert page.query_selector("#id_prompt") is None
    assert page.text_content("[data-testid=cost-total]") == "20"
    page.select_option("#id_resolution", "1536")
    expect(page.locator("[data-testid=cost-total]")).to_have_text("25")
    page.set_input_files("#id_image", red)
    page.wait_for_selector("#id_image ~ img.preview:not([hidden]), .slot img.preview:not([hidden])")
    screenshot(page, "workspace-new-image")
    made.append(submit(page))

    # Tripo v3.1, multi-view, with a transparent image (flattened for Tripo).
    page.goto(f"{live_server.url}/generations/new/?provider=tripo_v3&mode=multiview&edition=3.1")
    page.set_input_files("#id_view_front", red)
    page.set_input_files("#id_view_left", see_through)
    screenshot(page, "workspace-new-multiview")
    made.append(submit(page))

    # Tripo P1 single image, then Tripo text.
    page.goto(f"{live_server.url}/generations/new/?provider=tripo_p1&mode=image")
    page.set_input_files("#id_image", blue)
    made.append(submit(page))
    page.goto(f"{live_server.url}/generations/new/")
    choose(page, "tripo_v3", mode="text")
    page.fill("#id_prompt", "a small robot")
    made.append(submit(page))

    # Hunyuan Pro, multi-view and single image; Hunyuan Rapid single image.
    page.goto(f"{live_server.url}/generations/new/?provider=hunyuan_pro&mode=multiview&edition=3.0")
    page.set_input_files("#id_view_front", red)
    page.set_input_files("#id_view_back", blue)
    made.append(submit(page))
    page.goto(f"{live_server.url}/generations/new/?provider=hunyuan_pro&mode=image")
    page.set_input_files("#id_image", blue)
    made.append(submit(page))
    page.goto(f"{live_server.url}/generations/new/?provider=hunyuan_rapid&mode=image")
    page.set_input_files("#id_image", red)
    made.append(submit(page))

    def all_final():
        states = dict(Generation.objects.filter(pk__in=made).values_list("pk", "state"))
        return all(
            s in (State.FINISHED, State.FAILED, State.NEEDS_ATTENTION) for s in states.values()
        )

    wait_for(all_final, 90, interval=0.5, message="every submission to finish")
    for generation in Generation.objects.filter(pk__in=made):
        assert generation.state == State.FINISHED, (
            generation.provider,
            generation.attention_reason,
        )
        assert generation.images.exists() == (generation.mode != "text")
    multiview = Generation.objects.get(pk=made[1])
    assert [i.slot for i in multiview.images.all()] == ["front", "left"]
    assert all(i.format == "jpeg" for i in multiview.images.all())

    page.goto(f"{live_server.url}/generations/{made[1]}/")
    assert wait_loaded(page) is True
    assert page.query_selector_all(".reference-images img")
    page.wait_for_timeout(300)
    screenshot(page, "workspace-detail-multiview")
    assert page.outside_requests == []
    assert page.errors == []


def test_upload_rejections_and_regenerate(page, live_server, stack, member, tmp_path):
    login(page, live_server)
    svg = tmp_path / "drawing.png"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="500" height="500"/>')
    tiny = image_file(tmp_path, "tiny.png", (0, 0, 0), size=(40, 40))
    page.goto(f"{live_server.url}/generations/new/?provider=trellis2&mode=image")
    page.set_input_files("#id_image", str(svg))
    page.click("button:has-text('Generate')")
    page.wait_for_selector("#id_image_error")
    assert "SVG image" in page.text_content("#id_image_error")
    assert page.evaluate("document.activeElement.id") == "form-errors"
    screenshot(page, "workspace-upload-rejected")
    page.set_input_files("#id_image", tiny)
    page.click("button:has-text('Generate')")
    expect(page.locator("#id_image_error")).to_contain_text("at least 128")
    assert Generation.objects.count() == 0

    # Regenerate with changes: a finished text generation, prefilled, one option changed.
    page.goto(f"{live_server.url}/generations/new/?provider=tripo_v3&mode=text")
    page.fill("#id_prompt", "a wooden boat")
    first = submit(page)
    wait_for(
        lambda: Generation.objects.get(pk=first).state == State.FINISHED, 60, message="finished"
    )
    page.goto(f"{live_server.url}/generations/{first}/")
    page.click("text=Regenerate with changes")
    page.wait_for_url("**/generations/new/?source=*")
    assert page.input_value("#id_prompt") == "a wooden boat"
    page.select_option("#id_texture_quality", "detailed")
    expect(page.locator("[data-testid=cost-total]")).to_have_text("60")
    screenshot(page, "workspace-regenerate")
    second = submit(page)
    generation = Generation.objects.get(pk=second)
    assert generation.previous_version_id == first
    assert generation.options["texture_quality"] == "detailed"
    assert generation.credit_estimate == 60

    # Phone width: the form and a page stay usable (no horizontal scrolling).
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in [
        ("/generations/new/?provider=hunyuan_pro&mode=multiview", "new"),
        (f"/generations/{first}/", "detail"),
        ("/generations/", "history"),
    ]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, f"{name} scrolls sideways at phone width ({width}px)"
        screenshot(page, f"workspace-phone-{name}")
    assert page.outside_requests == []
    assert page.errors == []
