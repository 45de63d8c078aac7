"""The history list (filters, search, sort, htmx paging) and the dashboard home."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from credits.models import LedgerEntry
from generations import pricing
from generations.models import Generation, State

pytestmark = pytest.mark.django_db

LIST = reverse("generations:list")
HOME = reverse("home")


def make(owner, **fields):
    defaults = {"provider": "hunyuan_rapid", "prompt": "a red chair", "credit_estimate": 35}
    defaults.update(fields)
    return Generation.objects.create(owner=owner, **defaults)


def listed(response):
    return [g.pk for g in response.context["page"].object_list]


def test_members_see_the_whole_teams_history(member_client, member, second_member):
    mine, theirs = make(member), make(second_member)
    assert set(listed(member_client.get(LIST))) == {mine.pk, theirs.pk}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"q": "VASE"}, ["vase"]),
        ({"state": "failed"}, ["failed"]),
        ({"provider": "tripo_v3"}, ["vase"]),
        ({"owner": "OTHER"}, ["other"]),
        ({"date_from": "2030-01-02"}, ["future", "failed"]),
        ({"date_to": "2030-01-01"}, ["other", "vase"]),
        ({"date_from": "2030-01-02", "date_to": "2030-01-02"}, ["failed"]),
        ({"sort": "cost_high"}, ["vase", "future", "other", "failed"]),
        ({"sort": "oldest"}, ["vase", "other", "failed", "future"]),
        ({"state": "no-such-state", "page": "x"}, ["future", "failed", "other", "vase"]),
    ],
)
def test_filters_search_and_sort(member_client, member, second_member, params, expected):
    day = timezone.make_aware(timezone.datetime(2030, 1, 1, 12))
    rows = {
        "vase": make(member, prompt="a blue vase", provider="tripo_v3", credit_estimate=80, created_at=day),
        "other": make(second_member, prompt="a lamp", credit_estimate=40, created_at=day + timedelta(hours=1)),
        "failed": make(member, prompt="a mug", state=State.FAILED, credit_estimate=20, created_at=day + timedelta(days=1)),
        "future": make(member, prompt="a key", credit_estimate=60, created_at=day + timedelta(days=2)),
    }  # fmt: skip
    if params.get("owner") == "OTHER":
        params = {"owner": second_member.pk}
    response = member_client.get(LIST, params)
    assert response.status_code == 200
    names = {g.pk: name for name, g in rows.items()}
    assert [names[pk] for pk in listed(response)] == expected


def test_filtering_under_htmx_returns_only_the_results(member_client, member):
    make(member, prompt="a blue vase")
    response = member_client.get(LIST, {"q": "vase"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'id="results"' in response.content
    assert b"<html" not in response.content
    assert b'id="id_q"' not in response.content  # the filter form stays as it is


def test_pager_links_keep_the_filters_and_push_the_url(member_client, member):
    for i in range(30):
        make(member, prompt=f"vase {i}")
    response = member_client.get(LIST, {"q": "vase", "sort": "oldest"})
    html = response.content.decode()
    assert 'href="/generations/?q=vase&amp;sort=oldest&amp;page=2"' in html
    assert 'hx-push-url="true"' in html
    second = member_client.get(
        LIST, {"q": "vase", "sort": "oldest", "page": 2}, HTTP_HX_REQUEST="true"
    )
    assert len(listed(second)) == 6
    assert b"Page 2 of 2" in second.content


def test_thumbnails_show_in_the_list(member_client, member, settings, tmp_path):
    from generations.models import Asset

    settings.MEDIA_ROOT = tmp_path
    generation = make(member, state=State.FINISHED)
    thumb = Asset.objects.create(
        generation=generation,
        role="thumbnail",
        file="assets/t.png",
        format="png",
        bytes=1,
        sha256="x",
    )
    html = member_client.get(LIST).content.decode()
    assert reverse("generations:asset-view", args=[generation.pk, thumb.pk]) in html


def test_the_list_query_count_is_constant_in_rows_with_filters(
    member_client,
    member,
    settings,
    tmp_path,
    django_assert_num_queries,
    django_assert_max_num_queries,
):
    from generations.models import Asset

    def rows(n):
        for i in range(n):
            g = make(member, prompt=f"chair {i}", state=State.FINISHED)
            Asset.objects.create(
                generation=g,
                role="thumbnail",
                file=f"t{i}.png",
                format="png",
                bytes=1,
                sha256="x",
                original_name=f"t{i}",
            )

    rows(2)
    params = {"q": "chair", "state": "finished", "sort": "newest"}
    with django_assert_max_num_queries(100) as few:
        member_client.get(LIST, params)
    baseline = len(few.captured_queries)
    rows(30)
    with django_assert_num_queries(baseline):
        member_client.get(LIST, params)
    with django_assert_max_num_queries(baseline):
        member_client.get(LIST, params, HTTP_HX_REQUEST="true")


# --- home ------------------------------------------------------------------------------------


def test_home_shows_my_generations_in_flight_and_this_months_spend(
    member_client, member, second_member
):
    running = make(member, state=State.IN_PROGRESS, progress=30, prompt="a running robot")
    make(member, state=State.FINISHED, prompt="a done dog")
    make(second_member, state=State.IN_PROGRESS, prompt="someone else's")
    LedgerEntry.objects.create(kind="charge", user=member, amount=-55)
    LedgerEntry.objects.create(kind="refund", user=member, amount=20)
    LedgerEntry.objects.create(kind="charge", user=second_member, amount=-100)
    LedgerEntry.objects.create(
        kind="charge", user=member, amount=-999, created_at=timezone.now() - timedelta(days=62)
    )
    response = member_client.get(HOME)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="month-spend">35<' in html
    assert "a running robot" in html
    assert "someone else" not in html
    assert [g.pk for g in response.context["in_flight"]] == [running.pk]
    assert 'hx-trigger="every 3s"' in html


def test_home_shows_the_remaining_budget_when_budgets_exist(member_client, monkeypatch):
    monkeypatch.setattr(pricing, "remaining_budget", lambda user: 420, raising=False)
    assert b'data-testid="budget-left">420<' in member_client.get(HOME).content


def test_the_in_flight_fragment_stops_polling_when_nothing_runs(member_client, member):
    generation = make(member, state=State.PENDING)
    fragment = member_client.get(HOME, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert b'id="in-flight"' in fragment.content
    assert b"<html" not in fragment.content
    Generation.objects.filter(pk=generation.pk).update(state=State.FINISHED)
    assert member_client.get(HOME, HTTP_HX_REQUEST="true").status_code == 286


def test_home_needs_a_login(client):
    response = client.get(HOME)
    assert response.status_code == 302


def test_the_home_query_count_is_constant_in_rows(
    member_client, member, django_assert_num_queries, django_assert_max_num_queries
):
    def rows(n):
        for i in range(n):
            make(member, state=State.IN_PROGRESS, prompt=f"run {i}")
            make(member, state=State.FINISHED, prompt=f"done {i}", finished_at=timezone.now())
            LedgerEntry.objects.create(kind="charge", user=member, amount=-1)

    rows(2)
    with django_assert_max_num_queries(100) as few:
        member_client.get(HOME)
    baseline = len(few.captured_queries)
    rows(25)
    with django_assert_num_queries(baseline):
        member_client.get(HOME)
    with django_assert_max_num_queries(baseline):
        member_client.get(HOME, HTTP_HX_REQUEST="true")
