"""Every URL of the API app, for every role: the answer each one gets.

API calls carry the role's personal token; the token pages use the session. A new URL
without a row here fails ``test_the_matrix_covers_every_api_url``.
"""

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from api.models import ApiToken
from generations.models import Batch, Conversion, Generation, State
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import token_client
from tests.test_reviews_support import make_finished

pytestmark = pytest.mark.django_db
ROLES = ["member", "second_member", "reviewer", "admin_user", "outsider", "anonymous"]


def everyone(code):
    return {role: code for role in ROLES[:-1]} | {"anonymous": 401}


def only(code, roles, others):
    return {role: (code if role in roles else others) for role in ROLES[:-1]} | {"anonymous": 401}


CREATE = {"provider": "hunyuan_rapid", "prompt": "a chair"}
ADMIN = {"admin_user"}
REVIEWERS = {"reviewer", "admin_user"}
# name -> (method, kwargs(world), body, expected status per role)
MATRIX = {
    "api:me": ("get", lambda w: {}, None, everyone(200)),
    "api:providers": ("get", lambda w: {}, None, everyone(200)),
    "api:estimate": ("post", lambda w: {}, CREATE, everyone(200)),
    "api:generations": (
        "post",
        lambda w: {},
        CREATE,
        only(201, {"member", "second_member", "admin_user"}, 403),
    ),
    "api:generation": (
        "get",
        lambda w: {"pk": w["finished"].pk},
        None,
        only(200, {"member", "second_member", "reviewer", "admin_user"}, 404),
    ),
    "api:regenerate": (
        "post",
        lambda w: {"pk": w["finished"].pk},
        {},
        {**only(201, {"member", "admin_user"}, 403), "outsider": 404},
    ),
    "api:cancel": (
        "post",
        lambda w: {"pk": w["queued"].pk},
        None,
        {**only(200, {"member", "admin_user"}, 403), "outsider": 404},
    ),
    "api:finish": (
        "post",
        lambda w: {"pk": w["finished"].pk, "kind": "optimize"},
        {"preset": "low"},
        {**only(201, {"member", "admin_user"}, 403), "outsider": 404},
    ),
    "api:finish-step": (
        "get",
        lambda w: {"pk": w["finished"].pk, "step_pk": w["step"].pk},
        None,
        only(200, {"member", "second_member", "reviewer", "admin_user"}, 404),
    ),
    "api:image-models": ("get", lambda w: {}, None, everyone(200)),
    "api:concept-estimate": ("post", lambda w: {}, {"image_model": "gemini_3_pro"}, everyone(200)),
    "api:concepts": (
        "post",
        lambda w: {},
        {"image_model": "gemini_25_flash", "prompt": "a fox", "count": 1},
        only(201, {"member", "second_member", "admin_user"}, 403),
    ),
    "api:concept": (
        "get",
        lambda w: {"pk": w["concept"].pk},
        None,
        only(200, {"member", "second_member", "reviewer", "admin_user"}, 404),
    ),
    "api:concept-model": (
        "post",
        lambda w: {"pk": w["concept"].pk},
        "pick",
        {**only(201, {"member", "admin_user"}, 403), "outsider": 404},
    ),
    "api:concept-image": (
        "get",
        lambda w: {"pk": w["concept"].pk, "image_pk": w["concept"].images.get().pk},
        None,
        only(200, {"member", "second_member", "reviewer", "admin_user"}, 404),
    ),
    "api:concept-reference": (
        "get",
        lambda w: {"pk": w["concept"].pk, "image_pk": w["concept"].references.get().pk},
        None,
        only(200, {"member", "second_member", "reviewer", "admin_user"}, 404),
    ),
    "api:asset": (
        "get",
        lambda w: {"pk": w["finished"].pk, "asset_pk": w["finished"].assets.get().pk},
        None,
        only(200, {"member", "second_member", "reviewer", "admin_user"}, 404),
    ),
    "api:batches": (
        "post",
        lambda w: {},
        "upload",
        only(201, {"member", "second_member", "admin_user"}, 403),
    ),
    "api:batch": (
        "get",
        lambda w: {"pk": w["batch"].pk},
        None,
        only(200, {"member", "admin_user"}, 404),
    ),
    "api:batch-submit": (
        "post",
        lambda w: {"pk": w["batch"].pk},
        None,
        # The draft is empty: refused on its merits (400) once access is granted.
        {**only(400, {"member"}, 404), "admin_user": 403},
    ),
    "api:batch-cancel": (
        "post",
        lambda w: {"pk": w["batch"].pk},
        None,
        only(200, {"member", "admin_user"}, 404),
    ),
    "api:batch-zip": (
        "get",
        lambda w: {"pk": w["submitted"].pk},
        None,
        only(200, {"member", "admin_user"}, 404),
    ),
    "api:review-queue": ("get", lambda w: {}, None, only(200, REVIEWERS, 403)),
    "api:decide": (
        "post",
        lambda w: {"pk": w["finished"].pk},
        {"decision": "approved"},
        only(201, REVIEWERS, 403),
    ),
    "api:spend": ("get", lambda w: {}, None, only(200, ADMIN, 403)),
    "api:ledger": ("get", lambda w: {}, None, only(200, ADMIN, 403)),
    "api:schema": ("get", lambda w: {}, None, everyone(200)),
    "api:docs": ("get", lambda w: {}, None, everyone(200)),
    # The member's own pages (a session, not a token).
    "api:tokens": ("get", lambda w: {}, None, everyone(200) | {"anonymous": 302}),
    "api:token-revoke": (
        "post",
        lambda w: {"pk": w["token"].pk},
        None,
        only(302, {"member"}, 404) | {"anonymous": 302},
    ),
}


def _image():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.api_support import png

    return SimpleUploadedFile("prop.png", png(), content_type="image/png")


@pytest.fixture
def world(member, second_member, reviewer, admin_user, outsider):
    finished = make_finished(second_member)  # a teammate's: members see it, act on their own
    Generation.objects.filter(pk=finished.pk).update(owner=member)
    queued = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", credit_estimate=35, state=State.QUEUED
    )
    token, _secret = ApiToken.objects.issue(member, "the member's")
    draft = Batch.objects.create(owner=member, name="draft")
    submitted = Batch.objects.create(owner=member, name="sent", status=Batch.Status.SUBMITTED)
    step = Conversion.objects.create(
        generation=finished,
        requested_by=member,
        kind="optimize",
        output_format="glb",
        via=Conversion.Via.UPSTREAM,
        credit_estimate=10,
    )
    users = {
        "member": member,
        "second_member": second_member,
        "reviewer": reviewer,
        "admin_user": admin_user,
        "outsider": outsider,
        "anonymous": None,
    }
    return {
        "users": users,
        "finished": finished,
        "queued": queued,
        "token": token,
        "batch": draft,
        "submitted": submitted,
        "step": step,
        "concept": _finished_concept(member),
    }


def _finished_concept(owner):
    from django.core.files.base import ContentFile

    from tests.api_support import png
    from tests.test_concepts_views import finished_job

    job = finished_job(owner, count=1)
    job.references.create(
        file=ContentFile(png(), name="r.png"), format="png", width=256, height=256, bytes=100
    )
    return job


def test_the_matrix_covers_every_api_url():
    _, sub = get_resolver().namespace_dict["api"]
    assert {f"api:{p.name}" for p in sub.url_patterns} == set(MATRIX)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_role_by_endpoint(world, name, role):
    method, kwargs, body, expected = MATRIX[name]
    user = world["users"][role]
    if user is None:
        client = Client()
    elif name in ("api:tokens", "api:token-revoke"):
        client = Client()
        client.force_login(user)
    else:
        client = token_client(user, f"{role} matrix")
    url = reverse(name, kwargs=kwargs(world))
    if body == "pick":
        image = world["concept"].images.get().pk
        body = {"provider": "hunyuan_rapid", "image": image}
    if body == "upload":
        response = client.post(url, {"provider": "hunyuan_rapid", "images": [_image()]})
    elif method == "post" and body is not None:
        response = client.post(url, body, content_type="application/json")
    else:
        response = getattr(client, method)(url)
    assert response.status_code == expected[role], (name, role, response.content[:300])
    # The schema and docs answer in their own formats (YAML, HTML), errors included.
    documents = ("api:tokens", "api:token-revoke", "api:schema", "api:docs")
    if response.status_code >= 400 and name not in documents:
        assert response["Content-Type"].startswith("application/json"), (name, role)
