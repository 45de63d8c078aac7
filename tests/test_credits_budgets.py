"""Monthly budgets: the atomic check at submit, what is left, the header warnings."""

import uuid
from functools import partial

import pytest
from django.urls import reverse

from credits.models import Budget, LedgerEntry
from generations import pricing
from generations.models import BudgetExceeded, Generation
from tests.conftest import at_once, make_user


def queue(owner, provider="hunyuan_pro", options=None):
    return Generation.objects.create_queued(
        owner=owner,
        provider=provider,
        mode="text",
        prompt="a lamp",
        options=options or {},
        form_token=uuid.uuid4(),
    )


@pytest.mark.django_db
def test_a_submit_that_fits_is_held(member):
    Budget.objects.create(user=member, monthly_limit=100)
    generation = queue(member)
    assert generation.credit_estimate == 60
    assert pricing.remaining_budget(member) == 40


@pytest.mark.django_db
def test_a_refused_submit_says_how_much_is_left_and_who_to_ask(member, admin_user):
    admin_user.first_name, admin_user.last_name = "Ada", "Boss"
    admin_user.save()
    Budget.objects.create(user=member, monthly_limit=100)
    queue(member)
    with pytest.raises(BudgetExceeded) as refused:
        queue(member)
    assert refused.value.message == (
        "This generation costs 60 credits, but only 40 of your monthly budget of 100 credits "
        "are left this month. Ask an admin (Ada Boss) to raise it."
    )
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.filter(user=member).balance() == -60


@pytest.mark.django_db
def test_the_team_budget_limits_everyone_together(member, second_member):
    Budget.objects.create(user=None, monthly_limit=100)
    queue(member)
    assert pricing.remaining_budget(second_member) == 40
    with pytest.raises(BudgetExceeded, match="only 40 of the team's monthly budget"):
        queue(second_member)


@pytest.mark.django_db
def test_a_provider_cap_limits_only_that_provider(member):
    Budget.objects.create(user=None, provider="hunyuan_pro", monthly_limit=60)
    queue(member)
    with pytest.raises(BudgetExceeded, match="Hunyuan 3D Pro cap"):
        queue(member)
    rapid = queue(member, provider="hunyuan_rapid", options={"enable_pbr": False})
    assert rapid.credit_estimate == 35
    assert pricing.remaining_budget(member) is None
    assert pricing.remaining_budget(member, "hunyuan_pro") == 0


@pytest.mark.django_db
def test_a_released_hold_gives_the_budget_back(member):
    Budget.objects.create(user=member, monthly_limit=60)
    generation = queue(member)
    assert pricing.remaining_budget(member) == 0
    generation.cancel()
    assert pricing.remaining_budget(member) == 60
    queue(member)


@pytest.mark.django_db
def test_no_budget_means_no_limit(member):
    assert pricing.remaining_budget(member) is None
    queue(member)


@pytest.mark.django_db
def test_an_adjustment_counts_against_the_budget(member):
    Budget.objects.create(user=member, monthly_limit=100)
    LedgerEntry.objects.create(kind="adjustment", user=member, amount=-50, note="correction")
    assert pricing.remaining_budget(member) == 50
    with pytest.raises(BudgetExceeded):
        queue(member)


# --- the header warnings --------------------------------------------------------------


@pytest.mark.django_db
def test_no_banner_below_80_percent(member_client, member):
    Budget.objects.create(user=member, monthly_limit=100)
    LedgerEntry.objects.create(kind="adjustment", user=member, amount=-79, note="spent")
    response = member_client.get(reverse("generations:list"))
    assert 'id="budget-banner"' not in response.content.decode()


@pytest.mark.django_db
def test_the_banner_warns_at_80_percent(member_client, member):
    Budget.objects.create(user=member, monthly_limit=100)
    LedgerEntry.objects.create(kind="adjustment", user=member, amount=-80, note="spent")
    html = member_client.get(reverse("generations:list")).content.decode()
    assert 'id="budget-banner"' in html
    assert "You have used 80% of your monthly budget: 20 of 100 credits left" in html


@pytest.mark.django_db
def test_the_banner_says_when_the_budget_is_used_up(member_client, member):
    Budget.objects.create(user=None, monthly_limit=60)
    queue(member)
    html = member_client.get(reverse("generations:list")).content.decode()
    assert "You have used all of the team&#x27;s monthly budget (60 credits this month)" in html


@pytest.mark.django_db
def test_the_banner_adds_no_query_to_an_htmx_fragment(
    member_client, member, django_assert_max_num_queries
):
    generation = queue(member)
    url = reverse("generations:detail", args=[generation.pk])
    member_client.get(url, HTTP_HX_REQUEST="true")
    with django_assert_max_num_queries(20) as counted:
        member_client.get(url, HTTP_HX_REQUEST="true")
    assert not any("credits_budget" in q["sql"] for q in counted.captured_queries)


# --- the race -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_submits_for_the_last_60_credits_accept_exactly_one(
    django_user_model, monkeypatch
):
    from generations import tasks

    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *args, **kwargs: None)
    alice = make_user(django_user_model, "alice")
    bob = make_user(django_user_model, "bob")
    make_user(django_user_model, "boss", "Admins")
    Budget.objects.create(user=None, monthly_limit=100)
    LedgerEntry.objects.create(kind="adjustment", user=alice, amount=-40, note="earlier spend")
    assert pricing.remaining_budget(alice) == 60

    accepted, refused = [], []

    def submit(owner):
        try:
            accepted.append(queue(owner).pk)
        except BudgetExceeded as exc:
            refused.append(exc.message)

    assert at_once(*(partial(submit, [alice, bob][i % 2]) for i in range(20))) == []
    assert len(accepted) == 1
    assert len(refused) == 19
    assert all("only 0 of the team's monthly budget of 100 credits are left" in m for m in refused)
    assert all("Ask an admin (boss) to raise it." in m for m in refused)
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.balance() == -100
    assert pricing.remaining_budget(alice) == 0
    assert pricing.remaining_budget(bob) == 0
