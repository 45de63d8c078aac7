"""Prices as versioned data, monthly budgets, and the ledger's rollups.

The ledger itself (``generations.LedgerEntry``) is the truth; everything here
either feeds the estimate (``PriceTable``), limits what may be held
(``Budget``), or is a summary that is kept exactly equal to sums of the ledger
(``SpendRollup``) so that pages never scan the ledger.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class PriceTableQuerySet(models.QuerySet):
    def active(self):
        """The newest version, or None: the catalogue's defaults apply."""
        return self.order_by("-version").first()


class PriceTable(models.Model):
    """One version of every price, in the shape of ``catalogue.PRICE_TABLE``.

    Versions are never edited: a change is a new row with the next number, so
    every generation's ``price_version`` still names the prices it was charged.
    """

    version = models.PositiveIntegerField(unique=True)
    table = models.JSONField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PriceTableQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        permissions = [("manage_prices", "Can publish a new price table version")]

    def __str__(self):
        return f"Price table v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("Price table versions are never edited; save a new version")
        super().save(*args, **kwargs)


class Budget(models.Model):
    """A monthly credit limit.

    ``user`` empty: the team-wide budget; ``provider`` set: a cap on that
    provider only (for the user, or for the team). Spend against a budget is
    minus the sum of the matching ledger entries this calendar month (UTC), so
    a held estimate counts until it is released.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="credit_budgets",
    )
    provider = models.CharField(max_length=40, blank=True)
    monthly_limit = models.PositiveIntegerField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user__username", "provider"]
        permissions = [
            ("manage_budgets", "Can set monthly budgets"),
            ("make_adjustment", "Can add ledger adjustments"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "provider"],
                condition=models.Q(user__isnull=False),
                name="budget_one_per_user_and_provider",
            ),
            models.UniqueConstraint(
                fields=["provider"],
                condition=models.Q(user__isnull=True),
                name="budget_one_team_budget_per_provider",
            ),
        ]

    def __str__(self):
        who = self.user.get_username() if self.user_id else "Team"
        what = f" on {self.provider}" if self.provider else ""
        return f"{who}{what}: {self.monthly_limit} credits a month"

    @property
    def is_team(self):
        return self.user_id is None


class SpendRollup(models.Model):
    """Sums of ledger entries by day (and month), kind and one grouping, kept in the
    insert's transaction.

    Each ledger entry adds to eight rows: for its day and for its month, one per
    ``scope``: the team, its user, its provider and edition, and its user with
    provider and edition. Month rows let a long range read a dozen rows per group
    instead of hundreds. ``key`` names the group so that one upsert can find the
    row (NULL is never equal to NULL in a unique index). Invariant: for every
    row, ``amount`` and ``entries`` equal the sum and count of the ledger entries
    of that day (or month), kind and group (tested by Hypothesis in
    tests/test_credits_ledger.py).
    """

    class Grain(models.TextChoices):
        DAY = "d", "Day"
        MONTH = "m", "Month"  # `day` is the first of the month

    class Scope(models.TextChoices):
        TEAM = "t", "Team"
        USER = "u", "User"
        PROVIDER = "p", "Provider and edition"
        USER_PROVIDER = "up", "User, provider and edition"

    key = models.CharField(max_length=120)
    grain = models.CharField(max_length=1, choices=Grain.choices, default=Grain.DAY)
    scope = models.CharField(max_length=2, choices=Scope.choices)
    day = models.DateField()
    kind = models.CharField(max_length=12)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING
    )
    provider = models.CharField(max_length=40, blank=True)
    edition = models.CharField(max_length=20, blank=True)
    amount = models.BigIntegerField(default=0)
    entries = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "key", "day", "kind"], name="rollup_one_row_per_group"
            )
        ]
        indexes = [
            # Every page query reads one grain and scope over a date range.
            models.Index(fields=["grain", "scope", "day"], name="rollup_scope_day_idx"),
        ]

    def __str__(self):
        return f"{self.key} {self.day} {self.kind}: {self.amount}"
