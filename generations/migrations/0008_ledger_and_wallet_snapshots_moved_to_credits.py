"""The ledger and the wallet snapshots now belong to the credits app (its 0006).

State only: the tables stay where they are, under their old names, and the
credits app's models read them. The "view_spend" permission moves with the
ledger (the rows are moved by credits 0007).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0007_web_speed_indexes"),
        ("credits", "0006_ledger_and_wallet_snapshots_move_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="LedgerEntry"),
                migrations.DeleteModel(name="WalletSnapshot"),
            ],
            database_operations=[],
        ),
        migrations.AlterModelOptions(
            name="generation",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("view_all_generations", "Can see every member's generations"),
                    ("review_generation", "Can review finished generations"),
                    ("resolve_generation", "Can resolve generations that need attention"),
                ],
            },
        ),
    ]
