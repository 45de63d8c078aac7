from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from generations.catalogue import PROVIDERS

from .models import Decision, NotificationKind


def _provider_choices():
    return [("", "Any provider")] + [(key, spec.label) for key, spec in PROVIDERS.items()]


class PageForm(forms.Form):
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def page_number(self):
        return (self.cleaned_data.get("page") if self.is_valid() else None) or 1


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    comment = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )
    # The latest decision the reviewer saw (0: none), against double decisions.
    based_on = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    # "queue" when posted from the reviewer queue (the answer is a queue item).
    origin = forms.ChoiceField(
        choices=[("panel", "panel"), ("queue", "queue")], required=False, widget=forms.HiddenInput
    )

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("decision") in (Decision.REJECTED, Decision.CHANGES_REQUESTED)
            and not (cleaned.get("comment") or "").strip()
        ):
            self.add_error(
                "comment", "Say why: a comment is required to reject or request changes."
            )
        return cleaned


class BatchApproveForm(forms.Form):
    generations = forms.TypedMultipleChoiceField(coerce=int, choices=())
    comment = forms.CharField(required=False, max_length=4000)

    def __init__(self, *args, awaiting_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["generations"].choices = [(pk, pk) for pk in awaiting_ids]
        self.fields["generations"].error_messages["invalid_choice"] = (
            "Generation %(value)s is no longer awaiting review."
        )


class QueueFilterForm(PageForm):
    AGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}

    provider = forms.ChoiceField(required=False, choices=_provider_choices)
    owner = forms.ModelChoiceField(
        required=False,
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        empty_label="Anyone",
        to_field_name="username",
    )
    age = forms.ChoiceField(
        required=False,
        label="Waiting",
        choices=[
            ("", "Any time"),
            ("1h", "Over an hour"),
            ("1d", "Over a day"),
            ("7d", "Over a week"),
        ],
    )

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data["provider"]:
            queryset = queryset.filter(provider=data["provider"])
        if data["owner"]:
            queryset = queryset.filter(owner=data["owner"])
        if data["age"]:
            queryset = queryset.filter(finished_at__lte=timezone.now() - self.AGES[data["age"]])
        return queryset


class LibraryFilterForm(PageForm):
    q = forms.CharField(required=False, max_length=200, label="Search prompts and tags")
    tag = forms.CharField(required=False, max_length=40)
    provider = forms.ChoiceField(required=False, choices=_provider_choices)
    approved_from = forms.DateField(
        required=False, label="Approved from", widget=forms.DateInput(attrs={"type": "date"})
    )
    approved_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=4000, label="Comment", widget=forms.Textarea(attrs={"rows": 3})
    )


class TagForm(forms.Form):
    name = forms.SlugField(max_length=40, label="Add a tag", allow_unicode=True)

    def clean_name(self):
        return self.cleaned_data["name"].lower()


class CompareForm(forms.Form):
    other = forms.IntegerField(required=False, min_value=1, label="Compare with generation #")


class AuditFilterForm(PageForm):
    action = forms.CharField(required=False, max_length=60)


class PreferencesForm(forms.Form):
    """Two switches per kind of notification: in the app, and by email."""

    def __init__(self, *args, current=None, **kwargs):
        super().__init__(*args, **kwargs)
        current = current or {}
        for kind in NotificationKind:
            in_app, email = current.get(kind.value, (True, True))
            self.fields[f"{kind.value}_in_app"] = forms.BooleanField(
                required=False, initial=in_app, label="In the app"
            )
            self.fields[f"{kind.value}_email"] = forms.BooleanField(
                required=False, initial=email, label="By email"
            )

    def rows(self):
        return [
            (kind, self[f"{kind.value}_in_app"], self[f"{kind.value}_email"])
            for kind in NotificationKind
        ]
