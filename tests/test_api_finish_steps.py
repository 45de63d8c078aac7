"""GET /api/v1/generations/<id>/steps/<step>/: a finishing step followed after it was asked
for (what `studio finish --wait` polls)."""

import pytest

from generations import tasks
from generations.models import Conversion, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client
from tests.test_reviews_support import make_finished

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def job_doorbell(monkeypatch):
    monkeypatch.setattr(tasks.submit_conversion, "delay", lambda *a: None)


def test_a_step_is_followed_at_its_url_until_its_new_version(member):
    client = token_client(member)
    generation = make_finished(member)
    asked = client.post(
        f"/api/v1/generations/{generation.pk}/finish/remesh/",
        {"polygons": "quads"},
        content_type="application/json",
    ).json()
    assert asked["url"].endswith(f"/api/v1/generations/{generation.pk}/steps/{asked['id']}/")
    assert client.get(asked["url"]).json()["state"] == "queued"
    version = make_finished(member)
    Conversion.objects.filter(pk=asked["id"]).update(
        state=State.FINISHED, progress=100, result=version
    )
    done = client.get(asked["url"]).json()
    assert (done["state"], done["progress"], done["new_version"]) == ("finished", 100, version.pk)
    assert done["kind"] == "remesh" and done["options"]["polygons"] == "quads"


def test_a_step_is_found_only_under_its_own_generation_and_by_who_may_see_it(member, outsider):
    generation, other = make_finished(member), make_finished(member)
    step = Conversion.objects.create(
        generation=generation,
        requested_by=member,
        kind="optimize",
        output_format="glb",
        via=Conversion.Via.UPSTREAM,
    )
    convert = Conversion.objects.create(
        generation=generation, requested_by=member, output_format="fbx", via="upstream"
    )
    client = token_client(member)
    assert client.get(f"/api/v1/generations/{generation.pk}/steps/{step.pk}/").status_code == 200
    assert client.get(f"/api/v1/generations/{other.pk}/steps/{step.pk}/").status_code == 404
    # A conversion to another format is not a finishing step.
    assert client.get(f"/api/v1/generations/{generation.pk}/steps/{convert.pk}/").status_code == 404
    stranger = token_client(outsider)
    assert stranger.get(f"/api/v1/generations/{generation.pk}/steps/{step.pk}/").status_code == 404
