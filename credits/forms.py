from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from generations.catalogue import PRICE_LABELS, PROVIDERS
from generations.image_models import IMAGE_MODELS

from . import prices
from .models import Budget, LedgerEntry
from .spend import CONVERT

MAX_RANGE_DAYS = 366 * 3


def _provider_choices(blank):
    return [("", blank)] + [(key, spec.label) for key, spec in PROVIDERS.items()]


def _spend_choices():
    """The spend review's filter: a provider, an image model, or the conversions and
    finishing steps (their entries' provider, Conversion._ledger)."""
    return [
        *_provider_choices("Every provider"),
        ("Concept images", [(key, model.label) for key, model in IMAGE_MODELS.items()]),
        ("Other", [(CONVERT, "Conversions and finishing steps")]),
    ]


def _users():
    return get_user_model().objects.filter(is_active=True).order_by("username")


class SpendFilterForm(forms.Form):
    """The GET parameters of the spend page and the CSV export. Empty: this month."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Everyone", to_field_name="username"
    )
    provider = forms.ChoiceField(choices=(), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = _users()
        self.fields["provider"].choices = _spend_choices()

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        start = data.get("start") or today.replace(day=1)
        end = data.get("end") or today
        if start > end:
            raise forms.ValidationError("The start date must not be after the end date.")
        if (end - start).days > MAX_RANGE_DAYS:
            raise forms.ValidationError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")
        data["start"], data["end"] = start, end
        return data

    def filters(self):
        """(start, end, user, provider) of a valid form; of an empty one, this month for
        everyone. A bound form that is not valid has no range: show its errors instead."""
        if self.is_valid():
            data = self.cleaned_data
            return data["start"], data["end"], data["user"], data["provider"]
        today = timezone.localdate()
        return today.replace(day=1), today, None, ""


def price_words(path):
    """(group, label) of one price of the table, as the admins' form shows it."""
    section, rest = path[0], path[1:]
    if section in PROVIDERS:
        return PROVIDERS[section].label, " / ".join(rest)
    if section == "finishing":
        return "Finishing steps", PRICE_LABELS.get(path, " / ".join(rest))
    if section == "images" and rest[0] in IMAGE_MODELS:
        model = IMAGE_MODELS[rest[0]]
        words = model.price_labels()
        return f"Concept images: {model.label}", words.get(rest[-1], " / ".join(rest[1:]))
    return section, " / ".join(rest)


class PriceTableForm(forms.Form):
    """Every price of the active table as its own field; saving publishes a new version."""

    note = forms.CharField(
        max_length=300,
        required=False,
        help_text="Why the prices change (shown in the version history).",
    )

    def __init__(self, *args, table=None, **kwargs):
        super().__init__(*args, **kwargs)
        if table is None:
            table = prices.active()[1]
        self.paths = []
        for path, value in prices.leaves(table):
            name = "price__" + "__".join(path)
            self.fields[name] = forms.IntegerField(
                min_value=0, initial=value, label=price_words(path)[1]
            )
            self.paths.append((name, path))

    def groups(self):
        """[(group label, [bound field, ...])] for the template: a provider, the finishing
        steps, an image model."""
        grouped = {}
        for name, path in self.paths:
            grouped.setdefault(price_words(path)[0], []).append(self[name])
        return list(grouped.items())

    def table(self):
        return prices.from_leaves((path, self.cleaned_data[name]) for name, path in self.paths)


class BudgetForm(forms.Form):
    """Set (or clear) one budget: a person's or the team's, optionally for one provider."""

    user = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="The whole team",
        help_text="Leave empty for the team-wide budget.",
    )
    provider = forms.ChoiceField(
        choices=(), required=False, help_text="Optional: cap one provider only."
    )
    monthly_limit = forms.IntegerField(
        min_value=0, required=False, help_text="Credits a calendar month. Empty removes it."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = _users()
        self.fields["provider"].choices = _provider_choices("Every provider")

    def save(self, actor):
        from .audit import record

        data = self.cleaned_data
        user, provider, limit = data["user"], data["provider"] or "", data["monthly_limit"]
        existing = Budget.objects.filter(user=user, provider=provider).first()
        before = existing.monthly_limit if existing else None
        if limit is None:
            if existing is not None:
                existing.delete()
        elif existing is None:
            Budget.objects.create(
                user=user, provider=provider, monthly_limit=limit, updated_by=actor
            )
        else:
            existing.monthly_limit = limit
            existing.updated_by = actor
            existing.updated_at = timezone.now()
            existing.save()
        who = user.get_username() if user else "team"
        what = f" on {provider}" if provider else ""
        record(
            actor,
            "budget.set" if limit is not None else "budget.remove",
            f"Budget of {who}{what}: {before} -> {limit}",
            target=user,
            details={"user": who, "provider": provider, "before": before, "after": limit},
        )
        return before, limit


class AdjustmentForm(forms.Form):
    """An admin's correction of a person's credits; the reason is mandatory and kept."""

    user = forms.ModelChoiceField(queryset=None)
    amount = forms.IntegerField(
        help_text="Negative spends credits, positive gives them back (counts against budgets)."
    )
    reason = forms.CharField(max_length=250, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = _users()

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment of 0 credits changes nothing.")
        return amount

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why: the reason is kept with the entry.")
        return reason

    def save(self, actor):
        from .audit import record

        data = self.cleaned_data
        entry = LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.ADJUSTMENT,
            user=data["user"],
            amount=data["amount"],
            note=f"{data['reason']} (by {actor.get_username()})"[:300],
        )
        record(
            actor,
            "ledger.adjust",
            f"Adjusted {data['user'].get_username()} by {data['amount']} credits: {data['reason']}",
            target=entry,
            details={"user": data["user"].get_username(), "amount": data["amount"]},
        )
        return entry
