"""Every review and library URL, for every role, as a page and as an htmx fragment.

The matrix is checked against the URL resolver: a new URL in either namespace
without a row here fails ``test_the_matrix_covers_every_review_url``.
"""

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from generations.models import Generation
from reviews.models import Decision, Review, Tag
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = pytest.mark.django_db

ROLES = ["member", "second_member", "reviewer", "admin_user", "outsider", "anonymous"]
OK = "ok"


@pytest.fixture
def world(member, second_member, reviewer, admin_user, outsider, media):  # noqa: F811
    """The member's generation awaiting review, and an approved one in the library."""
    awaiting = make_finished(member, "a wooden stool")
    approved = make_finished(member, "a brass lamp")
    Review.objects.record_decision(approved, admin_user, Decision.APPROVED, "fine")
    tag = Tag.objects.create(root=awaiting, name="furniture", added_by=member)
    return {
        "users": {
            "member": member,
            "second_member": second_member,
            "reviewer": reviewer,
            "admin_user": admin_user,
            "outsider": outsider,
            "anonymous": None,
        },
        "awaiting": awaiting,
        "approved": approved,
        "tag": tag,
    }


# name -> (method, kwargs(world), data(world), fragment id or None, expected per role).
# "ok" means the success answer: 200 for GET; for POST a redirect (page) or 200 (htmx).
def _expect(member, second, reviewer, admin, outsider):
    return dict(
        zip(ROLES[:-1], [member, second, reviewer, admin, outsider], strict=True),
        anonymous="login",
    )


EVERYONE = _expect(OK, OK, OK, OK, OK)
REVIEWERS = _expect(403, 403, OK, OK, 403)
TEAM = _expect(OK, OK, OK, OK, 403)
# Whoever may see the generation (as its own page decides: Generation.visible_to);
# the others get 404, never a hint that it exists.
VIEWERS_OF_IT = "viewers"
# Tags: the owner and reviewers; others who may see it 403, the rest 404.
TAGGERS = "taggers"

MATRIX = {
    "reviews:queue": ("get", lambda w: {}, lambda w: {}, "queue", REVIEWERS),
    "reviews:batch-approve": (
        "post",
        lambda w: {},
        lambda w: {"generations": [w["awaiting"].pk], "comment": "batch"},
        "queue",
        REVIEWERS,
    ),
    "reviews:generation": (
        "get",
        lambda w: {"pk": w["awaiting"].pk},
        lambda w: {},
        "review-panel",
        VIEWERS_OF_IT,
    ),
    "reviews:decide": (
        "post",
        lambda w: {"pk": w["awaiting"].pk},
        lambda w: {"decision": "rejected", "comment": "too shiny", "based_on": 0},
        "review-panel",
        REVIEWERS,
    ),
    "reviews:comment": (
        "post",
        lambda w: {"pk": w["awaiting"].pk},
        lambda w: {"body": "looks good"},
        "comments",
        VIEWERS_OF_IT,
    ),
    "reviews:tag-add": (
        "post",
        lambda w: {"pk": w["awaiting"].pk},
        lambda w: {"name": "chair"},
        "tags",
        TAGGERS,
    ),
    "reviews:tag-remove": (
        "post",
        lambda w: {"pk": w["awaiting"].pk, "tag_pk": w["tag"].pk},
        lambda w: {},
        "tags",
        TAGGERS,
    ),
    "reviews:compare": (
        "get",
        lambda w: {"pk": w["awaiting"].pk},
        lambda w: {"other": w["approved"].pk},
        "compare",
        VIEWERS_OF_IT,
    ),
    "reviews:notifications": ("get", lambda w: {}, lambda w: {}, "notifications", EVERYONE),
    "reviews:notifications-read": (
        "post",
        lambda w: {},
        lambda w: {},
        "notifications",
        EVERYONE,
    ),
    "reviews:preferences": ("get", lambda w: {}, lambda w: {}, "preferences", EVERYONE),
    "reviews:audit": ("get", lambda w: {}, lambda w: {}, "audit", _expect(403, 403, 403, OK, 403)),
    "library:index": ("get", lambda w: {}, lambda w: {}, "library-results", TEAM),
    "library:asset": (
        "get",
        lambda w: {"pk": w["approved"].pk, "asset_pk": w["approved"].assets.get().pk},
        lambda w: {},
        None,
        TEAM,
    ),
    "library:asset-view": (
        "get",
        lambda w: {"pk": w["approved"].pk, "asset_pk": w["approved"].assets.get().pk},
        lambda w: {},
        None,
        TEAM,
    ),
}


def test_the_matrix_covers_every_review_url():
    resolver = get_resolver()
    names = set()
    for namespace in ("reviews", "library"):
        _, sub = resolver.namespace_dict[namespace]
        names |= {f"{namespace}:{p.name}" for p in sub.url_patterns}
    assert names == set(MATRIX)


def _expected(world, expected, role):
    user = world["users"][role]
    if user is None:
        return "login"
    if expected in (VIEWERS_OF_IT, TAGGERS):
        sees = Generation.objects.visible_to(user).filter(pk=world["awaiting"].pk).exists()
        if not sees:
            return 404
        if expected == TAGGERS and role not in ("member", "reviewer", "admin_user"):
            return 403
        return OK
    return expected[role]


def _client(world, role):
    client = Client()
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_role_by_action(world, name, role, htmx):
    method, kwargs, data, fragment, expected = MATRIX[name]
    url = reverse(name, kwargs=kwargs(world))
    headers = {"HX-Request": "true"} if htmx else {}
    response = getattr(_client(world, role), method)(url, data(world), headers=headers)
    want = _expected(world, expected, role)
    if want == "login":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif want == OK and method == "post" and not htmx:
        assert response.status_code == 302, response.content[:500]
    elif want == OK:
        assert response.status_code == 200, response.content[:500]
        if fragment and htmx:
            body = response.content.decode()
            assert f'id="{fragment}"' in body
            assert "<html" not in body
        elif fragment:
            assert b"<html" in response.content
    else:
        assert response.status_code == want


def test_members_cannot_decide_even_on_their_own_generation(world):
    client = _client(world, "member")
    for decision in Decision.values:
        response = client.post(
            reverse("reviews:decide", args=[world["awaiting"].pk]),
            {"decision": decision, "comment": "mine", "based_on": 0},
        )
        assert response.status_code == 403
    assert not Review.objects.filter(generation=world["awaiting"]).exists()


def test_a_generation_outside_the_library_cannot_be_fetched_through_it(world):
    awaiting = world["awaiting"]
    response = _client(world, "second_member").get(
        reverse("library:asset", args=[awaiting.pk, awaiting.assets.get().pk])
    )
    assert response.status_code == 404


def test_an_asset_of_another_generation_is_not_found_through_the_library(world):
    approved, awaiting = world["approved"], world["awaiting"]
    response = _client(world, "reviewer").get(
        reverse("library:asset", args=[approved.pk, awaiting.assets.get().pk])
    )
    assert response.status_code == 404


def test_a_tag_of_another_asset_cannot_be_removed_through_this_one(world):
    other = Tag.objects.create(
        root=world["approved"], name="lamp", added_by=world["users"]["member"]
    )
    response = _client(world, "reviewer").post(
        reverse("reviews:tag-remove", args=[world["awaiting"].pk, other.pk])
    )
    assert response.status_code == 404
    assert Tag.objects.filter(pk=other.pk).exists()


def test_an_htmx_decision_without_the_csrf_token_is_refused(world):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world["users"]["reviewer"])
    response = strict.post(
        reverse("reviews:decide", args=[world["awaiting"].pk]),
        {"decision": "approved", "based_on": 0},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 403
    assert not Review.objects.filter(generation=world["awaiting"]).exists()


def test_the_generation_page_loads_the_review_panel(world):
    response = _client(world, "member").get(
        reverse("generations:detail", args=[world["awaiting"].pk])
    )
    assert response.status_code == 200
    panel = reverse("reviews:generation", args=[world["awaiting"].pk])
    assert f'hx-get="{panel}"' in response.content.decode()


def test_the_navigation_shows_the_queue_count_to_reviewers_only(world):
    reviewer_page = _client(world, "reviewer").get(reverse("reviews:notifications"))
    assert 'data-testid="nav-review"' in reviewer_page.content.decode()
    assert 'title="1 awaiting review"' in reviewer_page.content.decode()
    member_page = _client(world, "member").get(reverse("reviews:notifications"))
    assert 'data-testid="nav-review"' not in member_page.content.decode()


def test_the_queue_query_count_does_not_grow_with_rows(world, django_assert_max_num_queries):
    client = _client(world, "reviewer")
    member = world["users"]["member"]
    for i in range(2):
        make_finished(member, f"few {i}")
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("reviews:queue"))
    for i in range(20):
        make_finished(member, f"many {i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("reviews:queue"))
    assert len(response.context["page"].object_list) == 23


def test_the_library_query_count_does_not_grow_with_rows(world, django_assert_max_num_queries):
    client = _client(world, "second_member")
    admin = world["users"]["admin_user"]
    member = world["users"]["member"]

    def approve(n, prefix):
        for i in range(n):
            generation = make_finished(member, f"{prefix} {i}")
            Tag.objects.create(root=generation, name=f"t{prefix}{i}", added_by=member)
            Review.objects.record_decision(generation, admin, Decision.APPROVED)

    approve(2, "few")
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("library:index"))
    approve(20, "many")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("library:index"))
    assert len(response.context["rows"]) == 23
