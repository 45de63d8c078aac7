"""The admins' pages: spend review, CSV export, wallet reconciliation, budgets, adjustments."""

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from credits.models import Budget, LedgerEntry, WalletSnapshot
from credits.roles import grant_admin_permissions
from generations.models import Generation, State

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    # A transactional test elsewhere may have flushed the data migrations away.
    grant_admin_permissions(apps)
    admin_user = type(admin_user).objects.get(pk=admin_user.pk)  # fresh permission cache
    client.force_login(admin_user)
    return client


def make_generation(owner, provider="hunyuan_rapid", estimate=35, edition="", **fields):
    return Generation.objects.create(
        owner=owner,
        provider=provider,
        edition=edition,
        prompt="a chair",
        credit_estimate=estimate,
        form_token=uuid.uuid4(),
        **fields,
    )


def spend(owner, estimate=35, provider="hunyuan_rapid", edition="", fail=False, when=None):
    """A generation that went through hold, charge (and refund) at ``when``."""
    when = when or timezone.now()
    generation = make_generation(
        owner,
        provider=provider,
        estimate=estimate,
        edition=edition,
        state=State.FAILED if fail else State.FINISHED,
        finished_at=when,
    )
    entries = [("hold", -estimate), ("release", estimate), ("charge", -estimate)]
    if fail:
        entries.append(("refund", estimate))
    for kind, amount in entries:
        LedgerEntry.objects.create(
            kind=kind,
            user=owner,
            generation=generation,
            amount=amount,
            provider=provider,
            created_at=when,
        )
    return generation


# --- permissions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["credits:spend", "credits:ledger-csv", "credits:wallet", "credits:prices"]
)
def test_members_and_reviewers_cannot_see_spend(client, member, reviewer, name):
    for user in (member, reviewer):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", ["credits:budgets", "credits:adjust"])
def test_members_and_reviewers_cannot_set_budgets_or_adjust(client, member, reviewer, name):
    for user in (member, reviewer):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 403
        assert client.post(reverse(name), {}).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("credits:spend"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- spend review --------------------------------------------------------------------


def test_the_spend_page_sums_the_ledger_by_person_provider_and_day(
    admin_client, member, second_member
):
    today = timezone.localdate()
    spend(member, 60, provider="hunyuan_pro", edition="3.1")
    spend(member, 35, fail=True)
    spend(second_member, 55)
    LedgerEntry.objects.create(kind="adjustment", user=second_member, amount=5, note="goodwill")
    LedgerEntry.objects.create(kind="charge", user=member, amount=-10, provider="convert")
    response = admin_client.get(reverse("credits:spend"))
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.start, report.end) == (today.replace(day=1), today)
    assert (report.total.charged, report.total.refunded, report.total.paid) == (160, 35, 125)
    assert report.total.net == 120
    assert (report.total.submitted, report.total.failed) == (4, 1)
    # The failure rate is of generations: the convert tool's charge is not one.
    assert (report.generations.submitted, report.generations.failed) == (3, 1)
    assert report.failure_rate == pytest.approx(1 / 3)
    assert report.refund_rate == pytest.approx(35 / 160)
    assert report.finished == 2
    assert report.cost_per_finished == pytest.approx(62.5)
    people = {name: (s.charged, s.refunded, s.net) for name, s in report.people}
    assert people == {"member": (105, 35, 70), "member2": (55, 0, 50)}
    providers = {(label, ed): (s.submitted, s.paid) for _, label, ed, s in report.providers}
    assert providers == {
        ("Hunyuan 3D Pro", "3.1"): (1, 60),
        ("Hunyuan 3D Rapid", ""): (2, 55),
        # A "convert" entry without its conversion: one from before steps were told apart.
        ("Conversions and finishing steps", ""): (1, 10),
        ("No provider (adjustments)", ""): (0, 0),
    }
    assert dict((d, s.paid) for d, s in report.days)[today] == 125
    assert [e.cost for e in report.most_expensive] == [60, 55, 35, 10]
    html = response.content.decode()
    assert "<svg" in html and 'class="bar"' in html
    assert 'src="http' not in html and 'href="http' not in html  # nothing from a CDN


def test_a_date_range_and_a_person_narrow_every_figure(admin_client, member, second_member):
    long_ago = timezone.now() - timedelta(days=40)
    spend(member, 60, provider="hunyuan_pro", when=long_ago)
    spend(member, 35)
    spend(second_member, 55, when=long_ago)
    start = (long_ago - timedelta(days=1)).date()
    end = (long_ago + timedelta(days=1)).date()
    report = admin_client.get(
        reverse("credits:spend"), {"start": start, "end": end, "user": "member"}
    ).context["report"]
    assert report.total.charged == 60
    assert [name for name, _ in report.people] == ["member"]
    assert [(label, s.charged) for _, label, _, s in report.providers] == [("Hunyuan 3D Pro", 60)]
    assert len(report.days) == 3
    assert report.finished == 1


def test_a_reversed_range_is_refused_in_words(admin_client):
    response = admin_client.get(
        reverse("credits:spend"), {"start": "2026-03-10", "end": "2026-03-01"}
    )
    assert response.status_code == 200
    assert "The start date must not be after the end date." in response.content.decode()


def test_a_refused_range_shows_the_forms_error_and_no_other_range(admin_client, member):
    spend(member, 35)  # this month's spend must not be shown in place of the range asked for
    response = admin_client.get(reverse("credits:spend"), {"start": "2020-01-01"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Choose a range of at most" in html and 'role="alert"' in html
    assert response.context["report"] is None
    assert "Correct the range above to see the report." in html
    assert "credits paid" not in html and "Export ledger" not in html


def test_the_csv_export_refuses_a_refused_range_in_words(admin_client):
    response = admin_client.get(
        reverse("credits:ledger-csv"), {"start": "2026-03-10", "end": "2026-03-01"}
    )
    assert response.status_code == 400
    assert b"The start date must not be after the end date." in response.content


def test_the_spend_page_query_count_does_not_grow_with_entries(
    admin_client, member, second_member, django_assert_max_num_queries
):
    spend(member, 35)
    with django_assert_max_num_queries(20) as few:
        admin_client.get(reverse("credits:spend"))
    for day in range(40):
        when = timezone.now() - timedelta(days=day % 20)
        spend(member if day % 2 else second_member, 35 + day, fail=day % 3 == 0, when=when)
    # An explicit range around every entry, whatever today's date (no calendar month).
    today = timezone.localdate()
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client.get(
            reverse("credits:spend"), {"start": today - timedelta(days=25), "end": today}
        )
    assert response.context["report"].total.submitted == 41


# --- CSV -------------------------------------------------------------------------------


def test_the_csv_export_lists_the_filtered_ledger(admin_client, member, second_member):
    generation = spend(member, 60, provider="hunyuan_pro", edition="3.0", fail=True)
    spend(second_member, 35)
    LedgerEntry.objects.create(kind="adjustment", user=member, amount=-3, note='a "quoted" note')
    response = admin_client.get(reverse("credits:ledger-csv"), {"user": "member"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == [
        "id",
        "created_at",
        "kind",
        "user",
        "provider",
        "edition",
        "generation",
        "conversion",
        "amount",
        "note",
        "item",
        "concept_job",
    ]
    assert [(r[2], r[3], r[4], r[5], r[6], r[8], r[9], r[10]) for r in rows[1:]] == [
        ("hold", "member", "hunyuan_pro", "3.0", str(generation.pk), "-60", "", "Hunyuan 3D Pro"),
        ("release", "member", "hunyuan_pro", "3.0", str(generation.pk), "60", "", "Hunyuan 3D Pro"),
        ("charge", "member", "hunyuan_pro", "3.0", str(generation.pk), "-60", "", "Hunyuan 3D Pro"),
        ("refund", "member", "hunyuan_pro", "3.0", str(generation.pk), "60", "", "Hunyuan 3D Pro"),
        ("adjustment", "member", "", "", "", "-3", 'a "quoted" note', "No provider (adjustments)"),
    ]


# --- wallet reconciliation ----------------------------------------------------------------


def snapshot(balance, minutes_ago):
    return WalletSnapshot.objects.create(
        balance=Decimal(balance), fetched_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


def test_matching_wallet_and_ledger_report_zero_drift(admin_client, member):
    snapshot("1000.00", 20)
    spend(member, 60, when=timezone.now() - timedelta(minutes=15))
    spend(member, 35, fail=True, when=timezone.now() - timedelta(minutes=12))
    snapshot("940.00", 10)
    snapshot("940.00", 1)
    response = admin_client.get(reverse("credits:wallet"))
    intervals = response.context["intervals"]
    assert [(i.actual, i.expected, i.drift) for i in intervals] == [
        (Decimal("0.00"), 0, Decimal("0.00")),
        (Decimal("-60.00"), -60, Decimal("0.00")),
    ]
    assert all(i.candidates == [] for i in intervals)
    assert 'class="drift"' not in response.content.decode()


def test_drift_is_reported_with_the_candidate_generations(admin_client, member, second_member):
    snapshot("1000.00", 30)
    charged = spend(member, 60, when=timezone.now() - timedelta(minutes=25))
    unknown = make_generation(
        second_member,
        estimate=55,
        state=State.NEEDS_ATTENTION,
        state_changed_at=timezone.now() - timedelta(minutes=22),
    )
    make_generation(second_member, estimate=20)  # queued, nothing to do with the drift
    snapshot("885.00", 20)  # the upstream took 115: 60 ours, 55 we never recorded
    response = admin_client.get(reverse("credits:wallet"))
    (interval,) = response.context["intervals"]
    assert (interval.actual, interval.expected, interval.drift) == (
        Decimal("-115.00"),
        -60,
        Decimal("-55.00"),
    )
    assert {g.pk for g in interval.candidates} == {charged.pk, unknown.pk}
    html = response.content.decode()
    assert '<span class="drift">-55.00</span>' in html
    assert f"#{unknown.pk}</a>" in html


def test_a_low_balance_and_402_refusals_are_shown(admin_client, member, settings):
    settings.LOW_BALANCE_WARNING = 500
    snapshot("499.00", 5)
    refused = make_generation(
        member,
        state=State.FAILED,
        finished_at=timezone.now(),
        failure_reason="The upstream wallet does not have enough credits: balance 12 < 35",
    )
    make_generation(
        member, state=State.FAILED, finished_at=timezone.now(), failure_reason="bad prompt"
    )
    response = admin_client.get(reverse("credits:wallet"))
    assert response.context["low_balance"] is True
    assert [g.pk for g in response.context["refused_402"]] == [refused.pk]
    assert 'id="low-balance"' in response.content.decode()
    settings.LOW_BALANCE_WARNING = 100
    assert admin_client.get(reverse("credits:wallet")).context["low_balance"] is False


# --- budgets and adjustments ----------------------------------------------------------------


def test_an_admin_sets_changes_and_removes_budgets(admin_client, member):
    url = reverse("credits:budgets")
    assert admin_client.post(url, {"user": member.pk, "monthly_limit": 300}).status_code == 302
    assert admin_client.post(url, {"monthly_limit": 1000}).status_code == 302
    admin_client.post(url, {"provider": "tripo_p1", "monthly_limit": 200})
    admin_client.post(url, {"user": member.pk, "monthly_limit": 250})
    rows = {(b.user_id, b.provider): b.monthly_limit for b in Budget.objects.all()}
    assert rows == {(member.pk, ""): 250, (None, ""): 1000, (None, "tripo_p1"): 200}
    admin_client.post(url, {"provider": "tripo_p1", "monthly_limit": ""})
    assert not Budget.objects.filter(provider="tripo_p1").exists()
    html = admin_client.get(url).content.decode()
    assert "The whole team" in html and "250" in html


def test_a_negative_budget_is_refused(admin_client):
    response = admin_client.post(reverse("credits:budgets"), {"monthly_limit": -1})
    assert response.status_code == 200
    assert not Budget.objects.exists()


def test_an_adjustment_needs_a_reason_and_is_a_new_entry(admin_client, member):
    url = reverse("credits:adjust")
    response = admin_client.post(url, {"user": member.pk, "amount": 25, "reason": "   "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not LedgerEntry.objects.exists()
    response = admin_client.post(
        url, {"user": member.pk, "amount": 25, "reason": "refund for a broken model"}
    )
    assert response.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.user, entry.amount) == ("adjustment", member, 25)
    assert entry.note == "refund for a broken model (by boss)"


def test_an_adjustment_of_zero_is_refused(admin_client, member):
    response = admin_client.post(
        reverse("credits:adjust"), {"user": member.pk, "amount": 0, "reason": "nothing"}
    )
    assert "An adjustment of 0 credits changes nothing." in response.content.decode()


# --- any range: day and month rollups together equal the ledger ----------------------


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=12),
    first=st.integers(min_value=-5, max_value=125),
    length=st.integers(min_value=0, max_value=130),
)
def test_any_range_sums_exactly_the_entries_in_it(member, offsets, first, length):
    from django.db import transaction

    from credits import spend as spend_module

    base = timezone.now().replace(hour=12) - timedelta(days=120)
    with transaction.atomic():
        for n, offset in enumerate(offsets):
            LedgerEntry.objects.create(
                kind="adjustment",
                user=member,
                amount=-(n + 1),
                created_at=base + timedelta(days=offset),
            )
        start = (base + timedelta(days=first)).date()
        end = start + timedelta(days=length)
        report = spend_module.report(start, end)
        expected = -sum(
            n + 1
            for n, offset in enumerate(offsets)
            if start <= (base + timedelta(days=offset)).date() <= end
        )
        assert report.total.adjusted == expected
        assert sum(s.adjusted for _, s in report.people) == expected
        assert sum(s.adjusted for *_, s in report.providers) == expected
        transaction.set_rollback(True)


def test_budget_price_and_ledger_changes_are_audited(admin_client, admin_user, member):
    from credits import prices
    from generations.catalogue import PRICE_TABLE
    from reviews.models import AuditLog

    admin_client.post(reverse("credits:budgets"), {"user": member.pk, "monthly_limit": 300})
    admin_client.post(
        reverse("credits:adjust"), {"user": member.pk, "amount": -4, "reason": "pilot spend"}
    )
    prices.publish(PRICE_TABLE, user=admin_user, note="first version")
    logged = [(row.actor_name, row.action, row.summary) for row in AuditLog.objects.order_by("id")]
    assert [row for row in logged if row[1].startswith(("budget", "ledger", "prices"))] == [
        ("boss", "budget.set", "Budget of member: None -> 300"),
        ("boss", "ledger.adjust", "Adjusted member by -4 credits: pilot spend"),
        ("boss", "prices.publish", "Published price table v1: first version"),
    ]
