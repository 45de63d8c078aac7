"""Upstream work that needs a person: the admins' list and the three ways to resolve it.

A generation, a conversion or finishing step (``Conversion``) or a concept job lands in
NEEDS_ATTENTION when we cannot know what happened upstream (a submit whose answer never
came, a worker killed mid-submit, a task the upstream forgot, polls that kept failing,
result files we refused). Its credits stay held (or charged). Nothing is resent by
itself; an admin reads the facts and decides:

- give the upstream task id (found in the upstream's dashboard): we poll it, and a hold
  becomes the charge as if the submit had been answered;
- mark it lost: it fails and its credits come back to the budget, once;
- resubmit it deliberately (only when it was never charged).

Each is one model method (``resolve_with_task_id``, ``resolve_as_lost``,
``resolve_by_resubmitting``), a conditional UPDATE from NEEDS_ATTENTION in the
transaction of its ledger entries, so a double post resolves once. Who resolved what,
and why, goes to the audit log: a generation through ``signals.generation_resolved``,
the others (whose resolution is a credit event: a charge, release or refund) through
``credits.audit.record``; the reviews app keeps the log and hears both.
"""

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from credits import audit
from credits.models import LedgerEntry

from .image_models import IMAGE_MODELS
from .models import ConceptJob, Conversion, Generation, IllegalTransition, State
from .signals import generation_resolved

# The most of each kind the page lists (oldest first); the count says if there are more.
PAGE_ROWS = 200


class ResolveForm(forms.Form):
    ACTIONS = [
        ("task_id", "Poll this upstream task id"),
        ("lost", "Mark lost and give the credits back"),
        ("resubmit", "Resubmit it (never charged)"),
    ]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect)
    task_id = forms.RegexField(
        regex=r"^[A-Za-z0-9-]{8,64}$",
        required=False,
        max_length=64,
        help_text="The task id shown in the upstream's dashboard.",
        error_messages={"invalid": "A task id is 8-64 letters, digits or dashes."},
    )
    note = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("action") == "task_id" and not data.get("task_id"):
            self.add_error("task_id", "Give the upstream task id to poll.")
        if data.get("action") == "lost" and not data.get("note"):
            self.add_error("note", "Say why it is lost (it is kept in the record).")
        return data


@dataclass
class Stuck:
    """One row of the page, whatever its kind."""

    row: object  # the Generation, Conversion or ConceptJob
    kind: str  # "generation", "conversion" or "concept": the resolve URL's and the id's
    what: str  # in words: "Generation", "Remesh", "FBX conversion", "Concept images"
    title: str  # what it was asked to do
    owner: object  # whose credits they are
    link: str
    link_text: str
    reason: str
    since: datetime | None
    credits: int
    charged: bool
    task_id: str
    raw: str = ""

    @property
    def element_id(self):
        # A generation keeps the id it always had (bookmarks, tests).
        return f"attention-{self.row.pk}" if self.kind == "generation" else self.key

    @property
    def key(self):
        return f"attention-{self.kind}-{self.row.pk}"

    @property
    def resolve_url(self):
        if self.kind == "generation":
            return reverse("generations:attention-resolve", args=[self.row.pk])
        return reverse("generations:attention-resolve-job", args=[self.kind, self.row.pk])


def _charged(**tie):
    return Exists(LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, **tie))


def _generation_row(generation):
    return Stuck(
        row=generation,
        kind="generation",
        what="Generation",
        title=f"{generation.provider_label}: “{generation.prompt[:160]}”"
        if generation.prompt
        else f"{generation.provider_label}, {generation.get_mode_display().lower()}",
        owner=generation.owner,
        link=reverse("generations:detail", args=[generation.pk]),
        link_text=f"generation #{generation.pk}",
        reason=generation.attention_reason,
        since=generation.state_changed_at,
        credits=generation.credit_estimate,
        charged=generation.charged,
        task_id=generation.upstream_task_id,
        raw=generation.last_raw_response,
    )


def _conversion_row(job):
    if job.kind == Conversion.Kind.CONVERT:
        what = f"{job.output_format.upper()} conversion"
    else:
        what = job.get_kind_display()
    return Stuck(
        row=job,
        kind="conversion",
        what=what,
        title=job.description if job.kind != Conversion.Kind.CONVERT else what,
        owner=job.generation.owner,
        link=reverse("generations:detail", args=[job.generation_id]),
        link_text=f"generation #{job.generation_id}",
        reason=job.failure_reason,
        since=job.attention_since or job.created_at,
        credits=job.credit_estimate,
        charged=job.charged,
        task_id=job.upstream_task_id,
    )


def _concept_row(job):
    spec = IMAGE_MODELS.get(job.image_model)
    return Stuck(
        row=job,
        kind="concept",
        what="Concept images",
        title=f"{job.count} × {spec.label if spec else job.image_model}: “{job.prompt[:160]}”",
        owner=job.owner,
        link=reverse("generations:concept", args=[job.pk]),
        link_text=f"concept job #{job.pk}",
        reason=job.failure_reason,
        since=job.attention_since or job.created_at,
        credits=job.credit_estimate,
        charged=job.charged,
        task_id=job.upstream_task_id,
    )


def _generations():
    return Generation.objects.select_related("owner").annotate(
        charged=_charged(generation=OuterRef("pk"))
    )


def _conversions():
    return Conversion.objects.select_related("generation__owner", "requested_by").annotate(
        charged=_charged(conversion=OuterRef("pk"))
    )


def _concept_jobs():
    return ConceptJob.objects.select_related("owner").annotate(
        charged=_charged(concept_job=OuterRef("pk"))
    )


# The kinds a resolve URL names, other than generations (which keep their own URL).
JOBS = {"conversion": (_conversions, _conversion_row), "concept": (_concept_jobs, _concept_row)}


def stuck_rows():
    """Everything in NEEDS_ATTENTION, oldest first: three queries, however many rows."""
    waiting = State.NEEDS_ATTENTION
    rows = [
        *(_generation_row(g) for g in _generations().filter(state=waiting)[:PAGE_ROWS]),
        *(_conversion_row(c) for c in _conversions().filter(state=waiting)[:PAGE_ROWS]),
        *(_concept_row(j) for j in _concept_jobs().filter(state=waiting)[:PAGE_ROWS]),
    ]
    rows.sort(key=lambda stuck: (stuck.since, stuck.key))
    return rows


@login_required
@permission_required("generations.resolve_generation", raise_exception=True)
@require_GET
def attention_list(request):
    return render(
        request, "generations/attention.html", {"rows": stuck_rows(), "form": ResolveForm()}
    )


@login_required
@permission_required("generations.resolve_generation", raise_exception=True)
@require_POST
def attention_resolve(request, pk):
    generation = get_object_or_404(_generations(), pk=pk)
    return _resolve(request, _generation_row(generation))


@login_required
@permission_required("generations.resolve_generation", raise_exception=True)
@require_POST
def attention_resolve_job(request, kind, pk):
    if kind not in JOBS:
        raise Http404("No such kind of job.")
    queryset, make_row = JOBS[kind]
    return _resolve(request, make_row(get_object_or_404(queryset(), pk=pk)))


def _resolve(request, stuck):
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "generations/attention.html",
            {"rows": [stuck], "form": form, "bound_key": stuck.key},
            status=400,
        )
    action = form.cleaned_data["action"]
    note = form.cleaned_data["note"]
    job = stuck.row
    try:
        if action == "task_id":
            job.resolve_with_task_id(form.cleaned_data["task_id"], note)
        elif action == "lost":
            job.resolve_as_lost(note)
        else:
            job.resolve_by_resubmitting()
    except IllegalTransition as exc:
        messages.error(request, f"Not changed: {exc}")
        return redirect("generations:attention")
    label = dict(ResolveForm.ACTIONS)[action]
    details = {"note": note, **form.cleaned_data}
    if stuck.kind == "generation":
        generation_resolved.send(
            sender=Generation,
            request=request,
            action=f"resolve:{action}",
            generation=job,
            details=details,
        )
        messages.success(request, f"Generation #{job.pk}: {label}.")
    else:
        summary = f"{stuck.what} #{job.pk} ({stuck.link_text}): {label}"
        audit.record(
            request.user,
            f"resolve:{action}",
            summary,
            target=job,
            details={**details, "kind": stuck.kind, "credits": stuck.credits},
        )
        messages.success(request, f"{summary}.")
    return redirect("generations:attention")
