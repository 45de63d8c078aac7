"""The figures of the spend review, read from the rollups.

Every function runs a fixed number of queries whatever the size of the ledger:
the rollups hold at most a few rows per day and group, and the two queries
that touch big tables (finished generations, the most expensive charges) are
served by the indexes created in ``credits/migrations/0002``.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from generations.catalogue import PROVIDERS
from generations.models import Generation, LedgerEntry, State

from .models import SpendRollup

Scope = SpendRollup.Scope
Grain = SpendRollup.Grain
KINDS = [kind for kind, _ in LedgerEntry.Kind.choices]
# The provider recorded on the convert tool's entries (generations.conversions).
CONVERT = "convert"


def day_bounds(start, end):
    """Aware datetimes [start 00:00, end+1 00:00) in the site's time zone."""
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


@dataclass
class Sums:
    """Ledger sums by kind for one group; amounts as stored (spend is negative)."""

    amount: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    entries: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, kind, amount, entries):
        self.amount[kind] = self.amount.get(kind, 0) + amount
        self.entries[kind] = self.entries.get(kind, 0) + entries

    @property
    def charged(self):
        return -self.amount["charge"]

    @property
    def refunded(self):
        return self.amount["refund"]

    @property
    def held(self):
        """Estimates still held (accepted, neither charged nor released yet)."""
        return -(self.amount["hold"] + self.amount["release"])

    @property
    def adjusted(self):
        return self.amount["adjustment"]

    @property
    def net(self):
        """Minus the sum of every entry: what counts against a budget."""
        return -sum(self.amount.values())

    @property
    def paid(self):
        """Charged minus refunded: what the upstream wallet lost."""
        return self.charged - self.refunded

    @property
    def generations(self):
        return self.entries["hold"]

    @property
    def submitted(self):
        return self.entries["charge"]

    @property
    def failed(self):
        return self.entries["refund"]


@dataclass
class Report:
    start: object
    end: object
    total: Sums
    days: list  # [(day, Sums)] for every day of the range, empty days included
    people: list  # [(username, Sums)] most spent first
    providers: list  # [(provider key, label, edition, Sums)] most spent first
    finished: int
    most_expensive: list  # charge entries with their generation and user

    @property
    def generations(self):
        """Sums of generation entries only (not the convert tool's, not adjustments)."""
        sums = Sums()
        for key, _label, _edition, group in self.providers:
            if key not in ("", CONVERT):
                for kind in KINDS:
                    sums.add(kind, group.amount[kind], group.entries[kind])
        return sums

    @property
    def failure_rate(self):
        """Share of submitted generations that failed upstream (and were refunded)."""
        generations = self.generations
        return generations.failed / generations.submitted if generations.submitted else None

    @property
    def refund_rate(self):
        """Share of charged credits that came back as refunds."""
        return self.total.refunded / self.total.charged if self.total.charged else None

    @property
    def failure_percent(self):
        rate = self.failure_rate
        return None if rate is None else 100 * rate

    @property
    def refund_percent(self):
        rate = self.refund_rate
        return None if rate is None else 100 * rate

    @property
    def cost_per_finished(self):
        """Credits paid (charges less refunds, failures included) per finished model."""
        return self.total.paid / self.finished if self.finished else None


def _month_after(day):
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _range(start, end):
    """Rows covering [start, end]: month rows for whole months, day rows for the rest."""
    first_full = start if start.day == 1 else _month_after(start)
    # The first day after the last whole month of the range.
    after_last_full = (
        _month_after(end) if _month_after(end) - timedelta(days=1) == end else end.replace(day=1)
    )
    if first_full >= after_last_full:
        return Q(grain=Grain.DAY, day__gte=start, day__lte=end)
    return (
        Q(grain=Grain.MONTH, day__gte=first_full, day__lt=after_last_full)
        | Q(grain=Grain.DAY, day__gte=start, day__lt=first_full)
        | Q(grain=Grain.DAY, day__gte=after_last_full, day__lte=end)
    )


def _rollups(start, end, user, provider, scope, by_day=False):
    if by_day:
        rows = SpendRollup.objects.filter(grain=Grain.DAY, day__gte=start, day__lte=end)
    else:
        rows = SpendRollup.objects.filter(_range(start, end))
    if user is None and not provider:
        return rows.filter(scope=scope)
    # With a filter, every figure comes from the finest grouping, narrowed.
    rows = rows.filter(scope=Scope.USER_PROVIDER)
    if user is not None:
        rows = rows.filter(user=user)
    if provider:
        rows = rows.filter(provider=provider)
    return rows


def report(start, end, user=None, provider="", top=10):
    total = Sums()
    by_day = {}
    for row in (
        _rollups(start, end, user, provider, Scope.TEAM, by_day=True)
        .values("day", "kind")
        .annotate(amount_sum=Sum("amount"), entries_sum=Sum("entries"))
    ):
        by_day.setdefault(row["day"], Sums()).add(
            row["kind"], row["amount_sum"], row["entries_sum"]
        )
        total.add(row["kind"], row["amount_sum"], row["entries_sum"])
    days = []
    day = start
    while day <= end:
        days.append((day, by_day.get(day, Sums())))
        day += timedelta(days=1)

    people = {}
    for row in (
        _rollups(start, end, user, provider, Scope.USER)
        .values("user__username", "kind")
        .annotate(amount_sum=Sum("amount"), entries_sum=Sum("entries"))
    ):
        people.setdefault(row["user__username"], Sums()).add(
            row["kind"], row["amount_sum"], row["entries_sum"]
        )

    providers = {}
    for row in (
        _rollups(start, end, user, provider, Scope.PROVIDER)
        .values("provider", "edition", "kind")
        .annotate(amount_sum=Sum("amount"), entries_sum=Sum("entries"))
    ):
        providers.setdefault((row["provider"], row["edition"]), Sums()).add(
            row["kind"], row["amount_sum"], row["entries_sum"]
        )

    since, until = day_bounds(start, end)
    finished = Generation.objects.filter(
        state=State.FINISHED, finished_at__gte=since, finished_at__lt=until
    )
    charges = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.CHARGE, created_at__gte=since, created_at__lt=until
    )
    if user is not None:
        finished = finished.filter(owner=user)
        charges = charges.filter(user=user)
    if provider:
        finished = finished.filter(provider=provider)
        charges = charges.filter(provider=provider)
    most_expensive = list(
        charges.select_related("generation", "user", "conversion").order_by(
            "amount", "-created_at"
        )[:top]
    )
    for entry in most_expensive:
        entry.cost = -entry.amount

    def label(key):
        spec = PROVIDERS.get(key)
        if spec:
            return spec.label
        return {CONVERT: "Convert tool", "": "No provider (adjustments)"}.get(key, key)

    return Report(
        start=start,
        end=end,
        total=total,
        days=days,
        people=sorted(people.items(), key=lambda item: (-item[1].net, item[0] or "")),
        providers=sorted(
            ((p, label(p), e, sums) for (p, e), sums in providers.items()),
            key=lambda item: (-item[3].net, item[1], item[2]),
        ),
        finished=finished.count(),
        most_expensive=most_expensive,
    )


def ledger_rows(start, end, user=None, provider=""):
    """The ledger entries of a range, oldest first, for the CSV export (streamed)."""
    since, until = day_bounds(start, end)
    entries = LedgerEntry.objects.filter(created_at__gte=since, created_at__lt=until)
    if user is not None:
        entries = entries.filter(user=user)
    if provider:
        entries = entries.filter(provider=provider)
    return entries.order_by("created_at", "id").values_list(
        "id",
        "created_at",
        "kind",
        "user__username",
        "provider",
        "generation__edition",
        "generation_id",
        "conversion_id",
        "amount",
        "note",
    )


def chart_svg(days, width=960, height=220, pad=28):
    """The daily chart as server-side SVG: credits paid each day (no JS, no CDN).

    Built in Python rather than a template loop: a year is 365 bars.
    """
    values = [max(0, sums.paid) for _, sums in days]
    peak = max(values, default=0)
    scale = peak or 1
    slot = (width - pad) / max(1, len(values))
    inner = height - pad
    label_every = max(1, len(values) // 10)
    bars, labels = [], []
    for index, ((day, _sums), value) in enumerate(zip(days, values, strict=True)):
        bar_height = inner * value / scale
        x = pad + index * slot + slot * 0.1
        bars.append(
            (
                f"{x:.1f}",
                f"{inner - bar_height:.1f}",
                f"{max(1.0, slot * 0.8):.1f}",
                f"{bar_height:.1f}",
                f"{day:%a %-d %b}: {value} credits",
            )
        )
        if index % label_every == 0:
            labels.append((f"{x:.1f}", height - 8, f"{day:%-d %b}"))
    first, last = (days[0][0], days[-1][0]) if days else ("", "")
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="chart-title">'
        '<title id="chart-title">Credits paid per day, {} to {}; highest {}</title>'
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text x="0" y="12">{}</text><text x="0" y="{}">0</text>{}{}</svg>',
        width,
        height,
        first,
        last,
        peak,
        pad,
        inner,
        width,
        inner,
        peak,
        inner,
        format_html_join(
            "",
            '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            bars,
        ),
        format_html_join("", '<text x="{}" y="{}">{}</text>', labels),
    )
