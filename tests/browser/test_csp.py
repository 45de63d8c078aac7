"""Issue 16, item 4: the Content-Security-Policy allows every page as it is, nothing more.

Each main page is loaded in Chromium with a real GLB in its viewers; any
``securitypolicyviolation`` event or CSP console message fails the test. The policy is
also shown to be there: an injected inline script does not run.
"""

import io

import pytest
import trimesh
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from PIL import Image

from generations.models import Asset, State
from tests.browser.conftest import screenshot
from tests.browser.test_review_queue import _wait_for_models
from tests.conftest import ensure_roles, rapid_generation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _textured_glb():
    """A box with a PNG texture: three.js reads the image through a blob: URL."""
    texture = Image.new("RGB", (64, 64), (176, 112, 64))
    for x in range(0, 64, 8):
        for y in range(64):
            texture.putpixel((x, y), (90, 50, 20))
    box = trimesh.creation.box(extents=(1, 0.6, 1))
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=texture)
    box.visual = trimesh.visual.TextureVisuals(uv=box.vertices[:, :2] + 0.5, material=material)
    buffer = io.BytesIO()
    box.export(buffer, file_type="glb")
    return buffer.getvalue()


def _finished(owner):
    generation = rapid_generation(
        owner, prompt="a wooden crate", state=State.FINISHED, progress=100
    )
    data = _textured_glb()
    stored = ContentFile(data, name=f"crate-{generation.pk}.glb")
    Asset.objects.create(
        generation=generation, role="model", file=stored, format="glb", bytes=len(data)
    )
    return generation


def _violations(page, console):
    return page.evaluate("window.__csp") + [m for m in console if "Content Security" in m]


def test_no_main_page_breaks_the_content_security_policy(
    page, live_server, settings, tmp_path, admin_user
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ensure_roles()
    admin_user.groups.add(*Group.objects.filter(name__in=["Members", "Reviewers"]))
    admin_user.set_password("pw-boss")
    admin_user.save()
    generation = _finished(admin_user)
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)

    page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )
    assert _violations(page, console) == []
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/generations/")

    pages = [
        "/",
        "/generations/",
        "/generations/new/",
        f"/generations/{generation.pk}/",
        "/reviews/",
        f"/reviews/{generation.pk}/",
        "/library/",
        "/credits/",
        "/credits/wallet/",
        "/account/tokens/",
        "/ops/status/",
    ]
    for path in pages:
        page.goto(f"{live_server.url}{path}")
        if page.locator("model-viewer").count():
            _wait_for_models(page)
        page.wait_for_timeout(300)  # late violations (workers, swapped fragments)
        found = _violations(page, console)
        assert found == [], (path, found)

    page.goto(f"{live_server.url}/generations/{generation.pk}/")
    _wait_for_models(page)
    screenshot(page, "csp-generation-page")
    # What model-viewer's decoders do is allowed: WebAssembly compiled in a blob: worker.
    compiled_in_worker = page.evaluate(
        """() => new Promise((resolve) => {
            const wasm = "new Uint8Array([0,97,115,109,1,0,0,0])";
            const source = `WebAssembly.compile(${wasm}).then(() => postMessage("ok"),
                                                                 (e) => postMessage(String(e)))`;
            const worker = new Worker(URL.createObjectURL(new Blob([source])));
            worker.onmessage = (e) => resolve(e.data);
            worker.onerror = (e) => resolve("worker refused: " + e.message);
        })"""
    )
    assert compiled_in_worker == "ok"
    assert _violations(page, console) == []
    # And the policy holds: an inline script injected into the page does not run.
    ran = page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__inline = true";
                   document.head.appendChild(s); return window.__inline === true; }"""
    )
    assert ran is False
    assert any("script-src" in v for v in page.evaluate("window.__csp"))
    assert page.errors == []
    assert page.outside_requests == []
