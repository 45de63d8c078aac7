"""The credit ledger, the upstream wallet as we saw it, prices, budgets and rollups.

The ledger (``LedgerEntry``) is the truth; everything else here either records
the upstream's side (``WalletSnapshot``), feeds the estimate (``PriceTable``),
limits what may be held (``Budget``), or is a summary that is kept exactly
equal to sums of the ledger (``SpendRollup``) so that pages never scan the
ledger.

``generations`` calls this app to hold and charge; this module names its
models only by string, so it imports nothing of ``generations``.
"""

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q, Sum
from django.utils import timezone


class LedgerEntryQuerySet(models.QuerySet):
    def balance(self):
        return self.aggregate(total=Sum("amount"))["total"] or 0

    def append_once(self, **fields):
        """Append one entry; a second hold, charge, release or refund of the same
        generation (or conversion, or concept job) is a no-op.

        The savepoint keeps a duplicate from breaking the caller's transaction; the
        unique constraints are what make a second charge or refund impossible.
        """
        try:
            with transaction.atomic():
                self.create(**fields)
        except IntegrityError:
            pass

    def update(self, **kwargs):
        raise TypeError("Ledger entries are append-only")

    def delete(self):
        raise TypeError("Ledger entries are append-only")


class LedgerEntry(models.Model):
    """An append-only record of credits. Balances are sums of entries, never counters."""

    class Kind(models.TextChoices):
        HOLD = "hold", "Hold"
        CHARGE = "charge", "Charge"
        RELEASE = "release", "Release"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    generation = models.ForeignKey(
        "generations.Generation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger",
    )
    # A charged conversion through the upstream's convert tool (FBX, USDZ).
    conversion = models.ForeignKey(
        "generations.Conversion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger",
    )
    # A concept job ("Start from an image"); its entries name it in their note as well.
    concept_job = models.ForeignKey(
        "generations.ConceptJob",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger",
    )
    # Negative spends credits, positive gives them back.
    amount = models.IntegerField()
    provider = models.CharField(max_length=40, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        # The table was made when the ledger lived in the generations app; it moved
        # here without being renamed (migration 0006), and raw SQL names it.
        db_table = "generations_ledgerentry"
        ordering = ["id"]
        permissions = [("view_spend", "Can review credit spend")]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=Q(kind__in=["hold", "charge", "release", "refund"], conversion=None),
                name="ledger_one_entry_of_each_kind_per_generation",
            ),
            models.UniqueConstraint(
                fields=["conversion", "kind"],
                condition=Q(kind__in=["hold", "charge", "release", "refund"]),
                name="ledger_one_entry_of_each_kind_per_conversion",
            ),
            # A concept job's entries have no generation (NULLs are never equal in a
            # unique index), so the generation constraint above never counts them.
            models.UniqueConstraint(
                fields=["concept_job", "kind"],
                condition=Q(kind__in=["hold", "charge", "release", "refund"]),
                name="ledger_one_entry_of_each_kind_per_concept_job",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.note})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("Ledger entries are append-only")
        from .rollups import record

        # The rollups (SpendRollup) change in the insert's own transaction, so they
        # always equal the sums of the entries.
        with transaction.atomic():
            super().save(*args, **kwargs)
            record(self)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger entries are append-only")


class WalletSnapshot(models.Model):
    """The upstream wallet as fetched at one moment (for reconciliation and the rate limit)."""

    balance = models.DecimalField(max_digits=14, decimal_places=2)
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Bracket(models.TextChoices):
        BEFORE = "before", "Just before a submit"
        AFTER = "after", "Just after a submit"

    # Set on the two reads that bracket one submit while drift is being narrowed
    # (DriftNarrowing); empty on the regular reads.
    bracket = models.CharField(max_length=6, choices=Bracket.choices, blank=True)
    bracket_generation = models.ForeignKey(
        "generations.Generation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        db_table = "generations_walletsnapshot"  # kept from the generations app, as above
        ordering = ["-fetched_at"]

    def __str__(self):
        return f"{self.balance} credits at {self.fetched_at:%Y-%m-%d %H:%M}"


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


class DriftAttribution(models.Model):
    """Wallet drift tied to one generation: between ``before`` and ``after`` the wallet
    moved by ``amount`` more than our ledger says, and the generation is the only one
    that can explain it (the only charge in the interval, or the one submit that two
    wallet reads bracketed while drift was being narrowed).

    Informational: the ledger is never changed for it (an admin may add an adjustment).
    """

    class Method(models.TextChoices):
        ONLY_CHARGE = "only", "the only charge between two wallet reads"
        NARROWED = "narrowed", "wallet read just before and just after its submit"

    generation = models.ForeignKey(
        "generations.Generation", on_delete=models.PROTECT, related_name="wallet_drift"
    )
    # Negative: the upstream took more than our ledger charged for it.
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    before = models.ForeignKey(WalletSnapshot, on_delete=models.PROTECT, related_name="+")
    # One interval is tied once, whoever examines it.
    after = models.OneToOneField(
        WalletSnapshot, on_delete=models.PROTECT, related_name="attribution"
    )
    method = models.CharField(max_length=10, choices=Method.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Drift {self.amount} on generation {self.generation_id}"

    @property
    def overcharge(self):
        """Credits taken beyond its price (positive when it was charged more)."""
        return -self.amount


class DriftNarrowing(models.Model):
    """The search for the generation behind a drift that its interval could not tie to
    one (two or more candidates): while it is open, every submit goes between two
    wallet reads, so the next drift is confined to one submit. It ends when a drift is
    tied, or after ``reconcile.MAX_NARROWED_SUBMITS`` bracketed submits without one."""

    class State(models.TextChoices):
        OPEN = "open", "Narrowing"
        TIED = "tied", "Tied to a generation"
        GAVE_UP = "gave_up", "Stopped without a tie"

    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    # The drifting interval that opened it.
    drift = models.DecimalField(max_digits=14, decimal_places=2)
    since = models.ForeignKey(WalletSnapshot, on_delete=models.PROTECT, related_name="+")
    until = models.ForeignKey(WalletSnapshot, on_delete=models.PROTECT, related_name="+")
    candidates = models.PositiveIntegerField(default=0)
    # Submits bracketed by two wallet reads so far.
    submits = models.PositiveIntegerField(default=0)
    attribution = models.OneToOneField(
        DriftAttribution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # At most one search at a time: two wallet reads finding drift at once open one.
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="open"), name="drift_one_open_narrowing"
            )
        ]

    def __str__(self):
        return f"{self.get_state_display()} (drift {self.drift})"
