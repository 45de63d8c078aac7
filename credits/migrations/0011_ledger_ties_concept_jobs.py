"""Tie concept jobs' ledger entries to their job by a column, as a conversion's are.

Until now a concept job's hold, charge, release and refund named it only in their note
("concept job <id>: ..."). ``LedgerEntry.concept_job`` ties them, with one entry of
each of those kinds per job (the constraint a conversion's entries have). Existing
entries are tied from their note, only where that job exists; an entry whose note
names a job that is not there stays untied. Were there ever two entries of one kind
for a job, the first is tied and the other keeps only its note, so the constraint
can be made on any ledger.

The ledger is append-only in the database too (0002's trigger refuses an UPDATE): the
trigger is set aside for the backfill's UPDATE and put back in the same transaction.
Its foreign key checks are made at once (``SET CONSTRAINTS ALL IMMEDIATE``), since
PostgreSQL refuses to alter a table that still has pending trigger events.
Migrating back drops the column; the entries and their notes stay as they were.
"""

import re
from collections import defaultdict

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

NOTE = re.compile(r"^concept job (\d+): ")
ONCE = {"hold", "charge", "release", "refund"}
TABLE = "generations_ledgerentry"  # credits.LedgerEntry's table (see 0006)
TRIGGER = "credits_ledger_append_only"


def tie_entries_to_their_concept_job(apps, schema_editor):
    LedgerEntry = apps.get_model("credits", "LedgerEntry")
    ConceptJob = apps.get_model("generations", "ConceptJob")
    named = (
        LedgerEntry.objects.filter(
            note__startswith="concept job ",
            generation__isnull=True,
            conversion__isnull=True,
            concept_job__isnull=True,
        )
        .order_by("id")
        .values_list("id", "kind", "note")
    )
    ties, seen = defaultdict(list), set()
    for pk, kind, note in named.iterator():
        match = NOTE.match(note)
        if match is None:
            continue
        job_id = int(match.group(1))
        if kind in ONCE:
            if (job_id, kind) in seen:
                continue  # the constraint allows one: the first is tied
            seen.add((job_id, kind))
        ties[job_id].append(pk)
    existing = set(ConceptJob.objects.filter(pk__in=list(ties)).values_list("pk", flat=True))
    if not existing:
        return
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
    for job_id in sorted(existing):
        LedgerEntry.objects.filter(pk__in=ties[job_id]).update(concept_job_id=job_id)
    if postgres:
        schema_editor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0010_drop_finished_generation_counts"),
        ("generations", "0015_jobs_poll_errors_and_attention_since"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="concept_job",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="ledger",
                to="generations.conceptjob",
            ),
        ),
        migrations.RunPython(tie_entries_to_their_concept_job, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind__in", ["hold", "charge", "release", "refund"])),
                fields=("concept_job", "kind"),
                name="ledger_one_entry_of_each_kind_per_concept_job",
            ),
        ),
    ]
