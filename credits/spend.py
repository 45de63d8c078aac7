"""The figures of the spend review, read from the rollups.

Every function runs a fixed number of queries whatever the size of the ledger:
the rollups hold at most a few rows per day and group, the most expensive charges
are served by an index created in ``credits/migrations/0002``, and the finished
generations are counted from ``generation_final_idx`` (index only).
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.safestring import mark_safe

from generations.catalogue import PROVIDERS
from generations.image_models import IMAGE_MODELS
from generations.models import Conversion, Generation, State

from .models import LedgerEntry, SpendRollup

Scope = SpendRollup.Scope
Grain = SpendRollup.Grain
KINDS = [kind for kind, _ in LedgerEntry.Kind.choices]
# The provider recorded on the entries of upstream conversions and finishing steps
# (Conversion._ledger); the rollups' edition says which (rollups.edition_of).
CONVERT = "convert"
STEP_LABELS = dict(Conversion.Kind.choices)


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

    @classmethod
    def of(cls, row):
        """From a pivoted rollup row's sums: the amount of each kind, then the counts."""
        amounts, counts = row[: len(KINDS)], row[len(KINDS) :]
        return cls(
            amount={kind: value or 0 for kind, value in zip(KINDS, amounts, strict=True)},
            entries={kind: value or 0 for kind, value in zip(KINDS, counts, strict=True)},
        )

    def add_sums(self, other):
        for kind, value in other.amount.items():
            self.amount[kind] += value
        for kind, value in other.entries.items():
            self.entries[kind] += value

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
    provider: str = ""  # the filter's, if any

    @property
    def provider_filter(self):
        return item_label(self.provider) if self.provider else ""

    @property
    def provider_rows(self):
        """[(what, edition or "", Sums)] for the page: an edition only where it is one."""
        return [
            (label, edition if key in PROVIDERS else "", sums)
            for key, label, edition, sums in self.providers
        ]

    @property
    def generations(self):
        """Sums of generation entries only (not concept images, conversions, finishing
        steps or adjustments)."""
        sums = Sums()
        for key, _label, _edition, group in self.providers:
            if key in PROVIDERS:
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


# One column per kind and figure: a row per group instead of one per group and kind.
PIVOT = {
    **{f"amount_{kind}": Sum("amount", filter=Q(kind=kind)) for kind in KINDS},
    **{f"entries_{kind}": Sum("entries", filter=Q(kind=kind)) for kind in KINDS},
}


def _pivot(rows, *group):
    """[(*group values, Sums)] of rollup rows grouped by ``group``."""
    width = len(group)
    return [
        (*row[:width], Sums.of(row[width:]))
        for row in rows.values(*group).annotate(**PIVOT).values_list(*group, *PIVOT)
    ]


def item_label(provider, edition=""):
    """What a ledger entry paid for, in words, from its provider and the rollups' edition
    (``rollups.edition_of``): "Hunyuan 3D Pro", "Gemini 3 Pro (concept images)",
    "Remesh", "Convert to FBX"."""
    spec = PROVIDERS.get(provider)
    if spec:
        return spec.label
    model = IMAGE_MODELS.get(provider)
    if model:
        return f"{model.label} (concept images)"
    if provider == CONVERT:
        if edition in STEP_LABELS and edition != Conversion.Kind.CONVERT:
            return STEP_LABELS[edition]
        # A "convert" entry without its conversion has no edition (credits 0012).
        return f"Convert to {edition.upper()}" if edition else "Conversions and finishing steps"
    return "No provider (adjustments)" if provider == "" else provider


def job_edition(kind, output_format):
    """The rollups' edition of a conversion's entries (``rollups.edition_of``)."""
    if kind is None:
        return ""
    return output_format if kind == Conversion.Kind.CONVERT else kind


def report(start, end, user=None, provider="", top=10):
    total = Sums()
    by_day = {}
    for day, sums in _pivot(_rollups(start, end, user, provider, Scope.TEAM, by_day=True), "day"):
        by_day[day] = sums
        total.add_sums(sums)
    days = []
    for n in range((end - start).days + 1):
        day = start + timedelta(days=n)
        days.append((day, by_day.get(day) or Sums()))

    people = _pivot(_rollups(start, end, user, provider, Scope.USER), "user__username")
    providers = _pivot(_rollups(start, end, user, provider, Scope.PROVIDER), "provider", "edition")

    since, until = day_bounds(start, end)
    charges = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.CHARGE, created_at__gte=since, created_at__lt=until
    )
    if user is not None:
        charges = charges.filter(user=user)
    if provider:
        charges = charges.filter(provider=provider)
    # Only the columns the page shows: a generation row also holds its options and
    # the upstream's raw answers, which would be read and decoded for nothing.
    most_expensive = list(
        charges.select_related("generation", "conversion", "user")
        .only(
            "amount",
            "created_at",
            "provider",
            "concept_job_id",
            "generation__provider",
            "generation__edition",
            "generation__state",
            "conversion__kind",
            "conversion__output_format",
            "conversion__generation_id",
            "user__username",
        )
        .order_by("amount", "-created_at")[:top]
    )
    for entry in most_expensive:
        entry.cost = -entry.amount
        job = entry.conversion
        if job is not None:
            entry.what = item_label(entry.provider, job_edition(job.kind, job.output_format))
        else:
            edition = entry.generation.edition if entry.generation_id else ""
            entry.what = f"{item_label(entry.provider)} {edition}".strip()

    finished = Generation.objects.filter(
        state=State.FINISHED, finished_at__gte=since, finished_at__lt=until
    )
    if user is not None:
        finished = finished.filter(owner=user)
    if provider:
        finished = finished.filter(provider=provider)
    finished = finished.count()

    return Report(
        start=start,
        end=end,
        total=total,
        days=days,
        people=sorted(people, key=lambda item: (-item[1].net, item[0] or "")),
        providers=sorted(
            ((p, item_label(p, e), e, sums) for p, e, sums in providers),
            key=lambda item: (-item[3].net, item[1], item[2]),
        ),
        finished=finished,
        most_expensive=most_expensive,
        provider=provider,
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
        # For the columns after these: what was paid for in words (csv_item), the concept job.
        "conversion__kind",
        "conversion__output_format",
        "concept_job_id",
    )


def csv_item(row):
    """What a ``ledger_rows`` row paid for, in words: the export's last column."""
    return item_label(row[4], job_edition(row[10], row[11]))


def chart_svg(days, width=960, height=220, pad=28):
    """The daily chart as server-side SVG: credits paid each day (no JS, no CDN).

    Built in Python rather than a template loop: a year is 365 bars. Every value
    written is a number or a date this function formats, never user input, so the
    markup is assembled with f-strings and marked safe as a whole (escaping each
    of the ~2,000 values with ``format_html`` cost more than the rest of the page).
    """
    values = [max(0, sums.paid) for _, sums in days]
    peak = max(values, default=0)
    scale = peak or 1
    slot = (width - pad) / max(1, len(values))
    inner = height - pad
    bar_width = f"{max(1.0, slot * 0.8):.1f}"
    label_every = max(1, len(values) // 10)
    bars, labels = [], []
    for index, ((day, _sums), value) in enumerate(zip(days, values, strict=True)):
        bar_height = inner * value / scale
        x = f"{pad + index * slot + slot * 0.1:.1f}"
        bars.append(
            f'<rect class="bar" x="{x}" y="{inner - bar_height:.1f}" width="{bar_width}" '
            f'height="{bar_height:.1f}"><title>{day:%a %-d %b}: {value} credits</title></rect>'
        )
        if index % label_every == 0:
            labels.append(f'<text x="{x}" y="{height - 8}">{day:%-d %b}</text>')
    first, last = (days[0][0], days[-1][0]) if days else ("", "")
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-title">'
        f'<title id="chart-title">Credits paid per day, {first} to {last}; '
        f"highest {peak}</title>"
        f'<line class="axis" x1="{pad}" y1="{inner}" x2="{width}" y2="{inner}"/>'
        f'<text x="0" y="12">{peak}</text><text x="0" y="{inner}">0</text>'
        f"{''.join(bars)}{''.join(labels)}</svg>"
    )
