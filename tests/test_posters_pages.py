"""The poster and the turntable on the generations list, the review queue and the library."""

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from generations import posters
from generations.models import Asset
from reviews.models import Decision, Review
from tests.test_posters import green_box_glb
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def add_turntable(generation, fmt):
    return Asset.objects.create(
        generation=generation,
        role="render",
        file=ContentFile(
            b"GIF89a" if fmt == "gif" else b"\x00\x00\x00\x18ftypmp42", name=f"t.{fmt}"
        ),
        format=fmt,
        original_name=f"0:render:turntable.{fmt}",
        bytes=6,
        sha256="0" * 64,
    )


def poster_url(generation, namespace="generations:asset-view"):
    poster = generation.assets.get(original_name=posters.POSTER_NAME)
    return reverse(namespace, args=[generation.pk, poster.pk])


def test_the_list_shows_the_poster_at_once_without_opening_the_page(member):
    generation = make_finished(member, "a green box", glb_bytes=green_box_glb())
    client = logged_in(member)
    before = client.get(reverse("generations:list")).content.decode()
    assert 'class="thumb-empty"' in before  # the grey "Text" tile
    posters.make_poster(generation)
    # The cached fragment is under the data version, which the new asset moved on.
    after = client.get(reverse("generations:list")).content.decode()
    assert f'src="{poster_url(generation)}"' in after
    assert 'class="thumb-empty"' not in after


def test_the_queue_shows_the_poster_and_plays_a_turntable(member, reviewer):
    still = make_finished(member, "a still box", glb_bytes=green_box_glb())
    turning = make_finished(member, "a turning box", glb_bytes=green_box_glb())
    filmed = make_finished(member, "a filmed box", glb_bytes=green_box_glb())
    for generation in (still, turning, filmed):
        posters.make_poster(generation)
    gif = add_turntable(turning, "gif")
    mp4 = add_turntable(filmed, "mp4")
    page = logged_in(reviewer).get(reverse("reviews:queue")).content.decode()
    assert f'<img src="{poster_url(still)}" alt="Thumbnail of generation {still.pk}"' in page
    gif_url = reverse("generations:asset-view", args=[turning.pk, gif.pk])
    assert f'<img src="{gif_url}" alt="Turntable of generation {turning.pk}"' in page
    assert poster_url(turning) not in page  # the turntable instead of the still
    mp4_url = reverse("generations:asset-view", args=[filmed.pk, mp4.pk])
    assert f'<video src="{mp4_url}" autoplay loop muted playsinline' in page
    assert "<model-viewer" not in page  # a picture for each: no viewer to load


def test_the_queue_fragment_shows_them_too(member, reviewer):
    generation = make_finished(member, "a turning box", glb_bytes=green_box_glb())
    gif = add_turntable(generation, "gif")
    response = logged_in(reviewer).get(reverse("reviews:queue"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="queue"' in body and "<html" not in body
    assert reverse("generations:asset-view", args=[generation.pk, gif.pk]) in body


def test_the_library_shows_the_poster_and_plays_a_turntable(member, second_member, admin_user):
    still = make_finished(member, "a still box", glb_bytes=green_box_glb())
    turning = make_finished(member, "a turning box", glb_bytes=green_box_glb())
    for generation in (still, turning):
        posters.make_poster(generation)
        Review.objects.record_decision(generation, admin_user, Decision.APPROVED, "fine")
    client = logged_in(second_member)
    page = client.get(reverse("library:index")).content.decode()
    assert f'<img src="{poster_url(still)}" alt="Thumbnail: a still box"' in page
    # A turntable rendered later shows at once: the asset moved the data version on.
    gif = add_turntable(turning, "gif")
    page = client.get(reverse("library:index")).content.decode()
    gif_url = reverse("generations:asset-view", args=[turning.pk, gif.pk])
    assert f'<img src="{gif_url}" alt="Turntable: a turning box"' in page
    assert poster_url(turning) not in page


def test_turntables_add_no_queries_to_the_queue(member, reviewer, django_assert_max_num_queries):
    client = logged_in(reviewer)
    for i in range(2):
        add_turntable(make_finished(member, f"few {i}"), "gif")
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("reviews:queue"))
    for i in range(10):
        add_turntable(make_finished(member, f"many {i}"), "gif")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("reviews:queue")).content.decode()
    assert page.count('data-testid="turntable"') == 12
