"""The ledger and the wallet snapshots move here from the generations app.

Only Django's idea of which app owns them changes: the tables keep their names
(``db_table``), their rows, constraints, indexes and triggers, so nothing is
copied and nothing is lost (``SeparateDatabaseAndState`` with no database
operations). ``generations`` 0008 drops them from its own state after this.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0005_filtered_most_expensive_indexes"),
        ("generations", "0007_web_speed_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WalletSnapshot",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("balance", models.DecimalField(decimal_places=2, max_digits=14)),
                        ("rate_limit", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "fetched_at",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                    ],
                    options={
                        "db_table": "generations_walletsnapshot",
                        "ordering": ["-fetched_at"],
                    },
                ),
                migrations.CreateModel(
                    name="LedgerEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("hold", "Hold"),
                                    ("charge", "Charge"),
                                    ("release", "Release"),
                                    ("refund", "Refund"),
                                    ("adjustment", "Adjustment"),
                                ],
                                max_length=12,
                            ),
                        ),
                        ("amount", models.IntegerField()),
                        ("provider", models.CharField(blank=True, max_length=40)),
                        ("note", models.CharField(blank=True, max_length=300)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "conversion",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="ledger",
                                to="generations.conversion",
                            ),
                        ),
                        (
                            "generation",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="ledger",
                                to="generations.generation",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "generations_ledgerentry",
                        "ordering": ["id"],
                        "permissions": [("view_spend", "Can review credit spend")],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(
                                    ("conversion", None),
                                    ("kind__in", ["hold", "charge", "release", "refund"]),
                                ),
                                fields=("generation", "kind"),
                                name="ledger_one_entry_of_each_kind_per_generation",
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(
                                    ("kind__in", ["hold", "charge", "release", "refund"])
                                ),
                                fields=("conversion", "kind"),
                                name="ledger_one_entry_of_each_kind_per_conversion",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        )
    ]
