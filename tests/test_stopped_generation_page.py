"""A stopped generation's page says what happened and what can be done, with no
estimate and no progress bar (issue 16, item 11)."""

import pytest
from django.urls import reverse

from generations.models import State
from tests.conftest import rapid_generation

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"state": State.NEEDS_ATTENTION, "attention_reason": "Submit outcome unknown."}, "admin"),
        ({"state": State.FAILED, "failure_reason": "bad prompt"}, "regenerate"),
        ({"state": State.CANCELED}, "start it again"),
    ],
)
def test_a_stopped_generation_shows_no_estimate_and_says_what_to_do(
    member_client, member, fields, words
):
    generation = rapid_generation(member, prompt="a lamp", progress=40, **fields)
    html = member_client.get(reverse("generations:detail", args=[generation.pk])).content.decode()
    assert "Expected" not in html
    assert 'id="progress"' not in html
    assert words in html
