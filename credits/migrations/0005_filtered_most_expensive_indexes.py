"""Indexes for the spend page's "most expensive" list when filtered by provider or person.

``spend.report`` asks for the ten most expensive charges in a date range,
``WHERE kind = 'charge' AND provider = %s`` (or ``AND user_id = %s``)
``ORDER BY amount, created_at DESC LIMIT 10``. The unfiltered index
(credits_ledger_charge_amount_idx) walks every provider's charges to find ten of
one: 295 ms for a year of TRELLIS.2 on 1M entries. With the filter column first,
the walk reads only that provider's (or person's) charges, cheapest-first, and
stops after ten in range.
"""

from django.db import migrations

INDEXES = [
    (
        "credits_ledger_charge_provider_amount_idx",
        "generations_ledgerentry (provider, amount, created_at DESC) WHERE kind = 'charge'",
    ),
    (
        "credits_ledger_charge_user_amount_idx",
        "generations_ledgerentry (user_id, amount, created_at DESC) WHERE kind = 'charge'",
    ),
]


def forward(apps, schema_editor):
    for name, target in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def backward(apps, schema_editor):
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("credits", "0004_roll_up_finished_generations")]

    operations = [migrations.RunPython(forward, backward)]
