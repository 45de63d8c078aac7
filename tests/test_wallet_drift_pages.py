"""Where attributed wallet drift and the narrowing show (issue 16, item 9): the wallet
reconciliation page (whether narrowing is on, what it costs, what was tied), the
generation's own page (for those who may review spend) and the spend review.

Built from a fixed day, so no test depends on the calendar.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from credits.models import DriftAttribution, DriftNarrowing, LedgerEntry, WalletSnapshot
from generations.models import State
from tests.test_credits_views import admin_client  # noqa: F401 - a fixture
from tests.test_credits_views import make_generation as generation

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARCH = {"start": "2026-03-01", "end": "2026-03-31"}


def at(minutes):
    return DAY + timedelta(minutes=minutes)


def snapshot(balance, minute, **fields):
    return WalletSnapshot.objects.create(balance=Decimal(balance), fetched_at=at(minute), **fields)


@pytest.fixture
def tied(member):
    """A generation charged 35 more than its price, tied by the reads around its submit."""
    gilded = generation(member, state=State.FINISHED, submitted_at=at(5))
    before = snapshot("1000.00", 4, bracket="before", bracket_generation=gilded)
    after = snapshot("930.00", 6, bracket="after", bracket_generation=gilded)
    return DriftAttribution.objects.create(
        generation=gilded,
        amount=Decimal("-35.00"),
        before=before,
        after=after,
        method=DriftAttribution.Method.NARROWED,
        created_at=at(6),
    )


def open_narrowing(submits=1):
    return DriftNarrowing.objects.create(
        drift=Decimal("-35.00"),
        since=snapshot("1100.00", -20),
        until=snapshot("1000.00", -10),
        candidates=2,
        submits=submits,
        started_at=at(-10),
    )


# --- the wallet reconciliation page --------------------------------------------------------


def test_the_wallet_page_says_narrowing_is_on_and_what_it_costs(admin_client, settings):  # noqa: F811
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 3
    open_narrowing(submits=4)
    html = admin_client.get(reverse("credits:wallet")).content.decode()
    assert "Narrowing is on since 2026-03-02 08:50" in html
    assert "could not be tied to one of its 2 candidates" in html
    assert "or 10 submits have been bracketed (4 so far)" in html
    assert "each bracketed submit takes 3 calls of the rate budget instead of one" in html
    assert "At 3 calls a minute, submits go at most 1 a minute instead of 3" in html
    assert "at most 10 bracketed submits (30 calls)" in html


def test_a_raised_limit_makes_narrowing_cheaper_on_the_page(admin_client, settings):  # noqa: F811
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 30
    html = admin_client.get(reverse("credits:wallet")).content.decode()
    assert "Narrowing is off: no drift is waiting to be tied." in html
    assert "At 30 calls a minute, submits go at most 10 a minute instead of 30" in html


def test_the_wallet_page_lists_attributed_drift_and_the_search_that_found_it(
    admin_client,  # noqa: F811
    tied,
):
    narrowing = open_narrowing(submits=2)
    narrowing.state = DriftNarrowing.State.TIED
    narrowing.attribution = tied
    narrowing.ended_at = at(6)
    narrowing.save()
    response = admin_client.get(reverse("credits:wallet"))
    html = response.content.decode()
    assert "Narrowing is off" in html
    assert f'tied it to <a href="/generations/{tied.generation_id}/">' in html
    assert "after 2 bracketed submits" in html
    assert response.context["attributions"] == [tied]
    table = html.split('id="attributed-drift"')[1].split("</table>")[0]
    assert f"#{tied.generation_id}</a>" in table
    assert '<span class="drift">-35.00</span>' in table
    assert "Wallet read just before and just after its submit" in table
    # The bracketing reads are named in the intervals table, tied to their generation.
    assert f"before the submit of #{tied.generation_id}" in html
    assert f'<strong>Tied to <a href="/generations/{tied.generation_id}/">' in html


# --- the generation's page -------------------------------------------------------------


def test_the_generations_page_shows_its_drift_to_those_who_review_spend(
    admin_client,  # noqa: F811
    client,
    member,
    tied,
):
    url = reverse("generations:detail", args=[tied.generation_id])
    html = admin_client.get(url).content.decode()
    assert 'id="wallet-drift"' in html
    assert "Charged 35 more than its price</strong> of 35" in html
    # Its owner, a member, may not review spend: not shown (nor from the admin's cache).
    client.force_login(member)
    html = client.get(url).content.decode()
    assert "Wallet drift" not in html and "more than its price" not in html


def test_a_new_attribution_shows_on_the_generations_page_at_once(
    admin_client,  # noqa: F811
    member,
):
    gilded = generation(member, state=State.FINISHED, submitted_at=at(5))
    url = reverse("generations:detail", args=[gilded.pk])
    assert 'id="wallet-drift"' not in admin_client.get(url).content.decode()
    DriftAttribution.objects.create(
        generation=gilded,
        amount=Decimal("-35.00"),
        before=snapshot("1000.00", 4),
        after=snapshot("930.00", 6),
        method=DriftAttribution.Method.ONLY_CHARGE,
    )
    html = admin_client.get(url).content.decode()
    assert "Charged 35 more than its price" in html
    assert "the only charge between two wallet reads" in html


# --- the spend review ------------------------------------------------------------------


def test_the_spend_review_lists_drift_attributed_in_its_range(admin_client, tied):  # noqa: F811
    response = admin_client.get(reverse("credits:spend"), MARCH)
    section = response.content.decode().split('id="attributed-drift"')[1].split("</section>")[0]
    assert f"#{tied.generation_id}</a>" in section
    assert '<span class="drift">-35.00</span>' in section
    february = {"start": "2026-02-01", "end": "2026-02-28"}
    section = admin_client.get(reverse("credits:spend"), february).content.decode()
    assert "No wallet drift was tied to a generation in this range." in section


def test_the_wallet_page_names_concept_jobs_and_steps_that_may_explain_a_drift(
    admin_client,  # noqa: F811
    member,
):
    from generations.models import ConceptJob

    snapshot("1000.00", 0)
    charged = generation(member, state=State.FINISHED, submitted_at=at(5))
    LedgerEntry.objects.create(
        kind="charge", user=member, generation=charged, amount=-35, provider="hunyuan_rapid",
        created_at=at(5),
    )  # fmt: skip
    unknown = ConceptJob.objects.create(
        owner=member,
        image_model="gemini_31_flash",
        prompt="a tin robot",
        credit_estimate=30,
        state=State.NEEDS_ATTENTION,
        created_at=at(3),
    )
    snapshot("935.00", 10)
    page = admin_client.get(reverse("credits:wallet")).content.decode()
    job_url = reverse("generations:concept", args=[unknown.pk])
    assert "Not tied to the generation: concept images, conversions or finishing steps" in page
    assert (
        f'<a href="{job_url}">concept job #{unknown.pk} on Gemini 3.1 Flash (concept images)</a>'
        " (member, needs attention, 30 credits)"
    ) in page
