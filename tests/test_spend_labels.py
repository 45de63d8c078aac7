"""The spend review names what was paid for as people do: an image model's label for a
concept job's entries, a step's label for a finishing step's, "Convert to FBX" for a
conversion, on the page and in the CSV export, in a constant number of queries."""

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from credits import spend
from credits.models import LedgerEntry, SpendRollup
from credits.rollups import rebuild_postgresql
from generations.models import ConceptJob, Conversion, Generation, State

pytestmark = pytest.mark.django_db

SPEND = reverse("credits:spend")


def charged_step(owner, kind, cost, output_format="glb", fail=False, when=None):
    """A conversion or finishing step held, charged (and refunded) by its own methods."""
    when = when or timezone.now()
    source = Generation.objects.create(
        owner=owner, provider="hunyuan_rapid", prompt="a chair", credit_estimate=35,
        state=State.FINISHED, finished_at=when,
    )  # fmt: skip
    job = Conversion.objects.create(
        generation=source,
        requested_by=owner,
        kind=kind,
        output_format=output_format,
        via=Conversion.Via.UPSTREAM,
        state=State.QUEUED,
        credit_estimate=cost,
        due_at=when,
    )
    job.hold(f"held for {kind}")
    job.claim_for_submit(when + timedelta(minutes=1))
    job.mark_submitted(f"task-{uuid.uuid4().hex[:8]}", when)
    if fail:
        job.mark_failed("The upstream failed it.")
    return job


def charged_concept(owner, image_model="gemini_3_pro", options=None, count=2, fail=False):
    """A concept job queued (its price held), submitted (charged) and perhaps failed."""
    job = ConceptJob.objects.create_queued(
        owner=owner,
        image_model=image_model,
        prompt="a ceramic fox",
        options=options or {},
        count=count,
        form_token=uuid.uuid4(),
    )
    job.claim_for_submit(timezone.now() + timedelta(minutes=1))
    job.mark_submitted(f"task-{uuid.uuid4().hex[:8]}", timezone.now())
    if fail:
        job.mark_failed("The upstream failed it.")
    return job


def charged_generation(owner, cost=35, provider="hunyuan_rapid", fail=False):
    generation = Generation.objects.create(
        owner=owner, provider=provider, prompt="a lamp", credit_estimate=cost,
        state=State.FAILED if fail else State.FINISHED, finished_at=timezone.now(),
    )  # fmt: skip
    for kind, amount in [("hold", -cost), ("release", cost), ("charge", -cost)]:
        LedgerEntry.objects.create(
            kind=kind, user=owner, generation=generation, amount=amount, provider=provider
        )
    if fail:
        LedgerEntry.objects.create(
            kind="refund", user=owner, generation=generation, amount=cost, provider=provider
        )
    return generation


@pytest.fixture
def mixed(member, second_member):
    """A month of every kind of job: what each is called is what the tests read."""
    return {
        "generation": charged_generation(member, 60, provider="hunyuan_pro"),
        "concept": charged_concept(member, options={"resolution": "4K"}),  # 160
        "flash": charged_concept(second_member, "gemini_25_flash", count=3, fail=True),  # 15
        "remesh": charged_step(member, "remesh", 20),
        "texture": charged_step(second_member, "texture", 40),
        "fbx": charged_step(member, "convert", 10, output_format="fbx"),
    }


def test_the_page_names_image_models_steps_and_conversions(admin_client, mixed):
    report = spend.report(timezone.localdate().replace(day=1), timezone.localdate())
    rows = {label: (edition, s.submitted, s.paid) for label, edition, s in report.provider_rows}
    assert rows == {
        "Hunyuan 3D Pro": ("", 1, 60),
        "Gemini 3 Pro (concept images)": ("", 1, 160),
        "Gemini 2.5 Flash (concept images)": ("", 1, 0),
        "Remesh": ("", 1, 20),
        "Texture edit": ("", 1, 40),
        "Convert to FBX": ("", 1, 10),
    }
    page = admin_client.get(SPEND).content.decode()
    by_provider = page.split("By provider, image model and step")[1].split("Most expensive")[0]
    for words in ["Gemini 3 Pro (concept images)", "Remesh", "Texture edit", "Convert to FBX"]:
        assert f"<td>{words}</td>" in by_provider
    assert "gemini_3_pro" not in by_provider and "Convert tool" not in page


def test_the_most_expensive_charges_say_what_they_were_and_link_to_it(admin_client, mixed):
    page = admin_client.get(SPEND).content.decode()
    table = page.split("<h2>Most expensive</h2>")[1].split("</table>")[0]
    concept = mixed["concept"]
    concept_url = reverse("generations:concept", args=[concept.pk])
    assert f'<a href="{concept_url}">concept job #{concept.pk}</a>' in table
    assert "<td>Gemini 3 Pro (concept images)</td>" in table
    remesh = mixed["remesh"]
    source_url = reverse("generations:detail", args=[remesh.generation_id])
    assert f'Remesh of <a href="{source_url}">#{remesh.generation_id}</a>' in table
    assert "<td>Convert to FBX</td>" in table
    assert "<td>Hunyuan 3D Pro</td>" in table
    assert "conversion #" not in table


def test_the_failure_rate_is_of_generations_only(member, second_member):
    charged_generation(member, fail=True)
    charged_generation(member)
    charged_concept(member, fail=True)
    charged_step(second_member, "repair", 60, fail=True)
    report = spend.report(timezone.localdate().replace(day=1), timezone.localdate())
    assert (report.generations.submitted, report.generations.failed) == (2, 1)
    assert (report.total.submitted, report.total.failed) == (4, 3)


def test_the_filter_takes_an_image_model_or_the_steps_and_says_which(admin_client, mixed):
    response = admin_client.get(SPEND, {"provider": "gemini_3_pro"})
    report = response.context["report"]
    assert [label for label, _e, _s in report.provider_rows] == ["Gemini 3 Pro (concept images)"]
    assert report.total.charged == 160
    assert ", Gemini 3 Pro (concept images)." in response.content.decode()
    steps = admin_client.get(SPEND, {"provider": "convert"}).context["report"]
    assert sorted(label for label, _e, _s in steps.provider_rows) == [
        "Convert to FBX",
        "Remesh",
        "Texture edit",
    ]


def test_the_csv_export_says_what_each_entry_paid_for(admin_client, mixed):
    response = admin_client.get(reverse("credits:ledger-csv"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-2:] == ["item", "concept_job"]
    charges = {(row[4], row[7] != "", row[10], row[11]) for row in rows[1:] if row[2] == "charge"}
    assert charges == {
        ("hunyuan_pro", False, "Hunyuan 3D Pro", ""),
        ("gemini_3_pro", False, "Gemini 3 Pro (concept images)", str(mixed["concept"].pk)),
        ("gemini_25_flash", False, "Gemini 2.5 Flash (concept images)", str(mixed["flash"].pk)),
        ("convert", True, "Remesh", ""),
        ("convert", True, "Texture edit", ""),
        ("convert", True, "Convert to FBX", ""),
    }


def test_the_page_reads_as_many_queries_whatever_the_jobs(client, admin_user, member):
    def count():
        cache.clear()  # a miss: every fragment rendered
        client.get(SPEND)
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(SPEND).status_code == 200
        return len(queries)

    client.force_login(admin_user)
    charged_concept(member)
    charged_step(member, "remesh", 20)
    before = count()
    for kind in ("texture", "render", "repair", "optimize"):
        charged_step(member, kind, 20)
        charged_concept(member, "seedream_v5_lite")
    charged_step(member, "convert", 10, output_format="usdz")
    assert count() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the rebuild is PostgreSQL's")
def test_the_rollup_rebuild_tells_the_steps_apart_as_each_entry_did(mixed):
    def rows():
        return sorted(
            SpendRollup.objects.filter(entries__gt=0).values_list(
                "grain", "key", "day", "kind", "provider", "edition", "amount", "entries"
            )
        )

    recorded = rows()
    assert ("convert", "remesh") in {(r[4], r[5]) for r in recorded}
    with connection.cursor() as cursor:
        rebuild_postgresql(cursor)
    assert rows() == recorded


def test_the_migration_splits_rollups_recorded_before_steps_were_told_apart(member, mixed):
    """credits 0012 on rows as the rollups kept them before: one "convert" group."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("credits.migrations.0012_rollups_tell_conversions_and_steps_apart")

    def rows():
        return sorted(
            SpendRollup.objects.filter(entries__gt=0).values_list(
                "grain", "key", "day", "kind", "scope", "user", "provider", "edition", "amount",
                "entries",
            )
        )  # fmt: skip

    recorded = rows()
    migration.put_together(apps, None)
    together = rows()
    editions = {(r[6], r[7]) for r in together if r[6] == "convert"}
    assert editions == {("convert", "")}
    assert sum(r[8] for r in together if r[4] == "p") == sum(r[8] for r in recorded if r[4] == "p")
    migration.split_by_step(apps, None)
    assert rows() == recorded
