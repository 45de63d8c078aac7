"""Refuse UPDATE and DELETE of ledger entries in the database itself, and index the ledger.

The model already refuses both; the trigger also stops raw SQL, a shell, or a
future bug. TRUNCATE is not refused (the test runner empties tables with it).
The indexes serve the spend review (most expensive charges, finished counts),
the CSV export and reconciliation (entries by time). They live on the
generations app's tables but belong to this app's queries.
"""

from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION credits_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_ledger_append_only ON generations_ledgerentry;
CREATE TRIGGER credits_ledger_append_only
    BEFORE UPDATE OR DELETE ON generations_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION credits_ledger_append_only();
"""

DROP_TRIGGER_SQL = """
DROP TRIGGER IF EXISTS credits_ledger_append_only ON generations_ledgerentry;
DROP FUNCTION IF EXISTS credits_ledger_append_only();
"""

INDEXES = [
    ("credits_ledger_created_idx", "generations_ledgerentry (created_at)"),
    (
        "credits_ledger_charge_amount_idx",
        # Most expensive first, newest first among equals: LIMIT 10 stops early.
        "generations_ledgerentry (amount, created_at DESC) WHERE kind = 'charge'",
    ),
    (
        "credits_ledger_adjustment_idx",
        "generations_ledgerentry (id) WHERE kind = 'adjustment'",
    ),
    ("credits_generation_final_idx", "generations_generation (state, finished_at)"),
]


def forward(apps, schema_editor):
    for name, target in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL, params=None)


def backward(apps, schema_editor):
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0001_initial"),
        ("generations", "0004_conversions_and_price_version"),
    ]

    operations = [migrations.RunPython(forward, backward)]
