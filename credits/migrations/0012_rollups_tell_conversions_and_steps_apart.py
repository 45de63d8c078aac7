"""The spend rollups tell upstream conversions and finishing steps apart.

Their ledger entries all have the provider "convert" (``Conversion._ledger``); until now
their rollup rows had no edition, so the spend review showed them as one "Convert tool"
line. ``rollups.edition_of`` now gives a conversion's entries its format ("fbx") and a
finishing step's its kind ("remesh"). This recomputes the "convert" rows of the two
groupings that carry the edition (by provider and edition, by person, provider and
edition) from the ledger, the same way; the team's and each person's rows do not change.
A "convert" entry without a conversion keeps the empty edition.

Migrating back puts them together again under the empty edition.
"""

from collections import defaultdict

from django.db import migrations
from django.utils import timezone

GROUPED = ("p", "up")  # SpendRollup.Scope.PROVIDER, USER_PROVIDER


def _edition(kind, output_format):
    if kind is None:
        return ""
    return output_format if kind == "convert" else kind


def _day(moment):
    # rollups.day_of: the calendar day in the site's time zone.
    return timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()


def _rebuild(apps, split):
    SpendRollup = apps.get_model("credits", "SpendRollup")
    LedgerEntry = apps.get_model("credits", "LedgerEntry")
    SpendRollup.objects.filter(provider="convert", scope__in=GROUPED).delete()
    sums = defaultdict(lambda: [0, 0])
    entries = LedgerEntry.objects.filter(provider="convert").values_list(
        "created_at", "kind", "user_id", "amount", "conversion__kind", "conversion__output_format"
    )
    for created_at, kind, user_id, amount, job_kind, job_format in entries.iterator():
        edition = _edition(job_kind, job_format) if split else ""
        day = _day(created_at)
        for grain, bucket in (("d", day), ("m", day.replace(day=1))):
            for scope, key, user in (
                ("p", f"p|convert|{edition}", None),
                ("up", f"u{user_id}|convert|{edition}", user_id),
            ):
                row = sums[(grain, key, bucket, kind, scope, user, edition)]
                row[0] += amount
                row[1] += 1
    SpendRollup.objects.bulk_create(
        [
            SpendRollup(
                grain=grain,
                key=key,
                day=bucket,
                kind=kind,
                scope=scope,
                user_id=user,
                provider="convert",
                edition=edition,
                amount=amount,
                entries=count,
            )
            for (grain, key, bucket, kind, scope, user, edition), (amount, count) in sums.items()
        ],
        batch_size=1000,
    )


def split_by_step(apps, schema_editor):
    _rebuild(apps, split=True)


def put_together(apps, schema_editor):
    _rebuild(apps, split=False)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0011_ledger_ties_concept_jobs"),
        ("generations", "0014_finishing_steps"),
    ]

    operations = [migrations.RunPython(split_by_step, put_together)]
