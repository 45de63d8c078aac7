"""Generations that need a person: the admins' list and the three ways to resolve one.

A generation lands in NEEDS_ATTENTION when we cannot know what happened
upstream (a submit whose answer never came, a worker killed mid-submit, a task
the upstream forgot, result files we refused). Nothing is resent by itself; an
admin reads the facts and decides:

- give the upstream task id (found in the upstream's dashboard): we poll it;
- mark it lost: it fails and its credits come back to the budget;
- resubmit it deliberately (only when it was never charged).
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from .models import Generation, IllegalTransition, State
from .signals import generation_resolved


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


@login_required
@permission_required("generations.resolve_generation", raise_exception=True)
@require_GET
def attention_list(request):
    generations = (
        Generation.objects.filter(state=State.NEEDS_ATTENTION)
        .select_related("owner")
        .order_by("state_changed_at")[:200]
    )
    return render(
        request,
        "generations/attention.html",
        {"generations": generations, "form": ResolveForm()},
    )


@login_required
@permission_required("generations.resolve_generation", raise_exception=True)
@require_POST
def attention_resolve(request, pk):
    generation = get_object_or_404(Generation, pk=pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "generations/attention.html",
            {"generations": [generation], "form": form, "bound_pk": generation.pk},
            status=400,
        )
    action = form.cleaned_data["action"]
    note = form.cleaned_data["note"]
    try:
        if action == "task_id":
            generation.resolve_with_task_id(form.cleaned_data["task_id"], note)
        elif action == "lost":
            generation.resolve_as_lost(note)
        else:
            generation.resolve_by_resubmitting()
    except IllegalTransition as exc:
        messages.error(request, f"Not changed: {exc}")
        return redirect("generations:attention")
    generation_resolved.send(
        sender=Generation,
        request=request,
        action=f"resolve:{action}",
        generation=generation,
        details={"note": note, **form.cleaned_data},
    )
    messages.success(request, f"Generation #{generation.pk}: {dict(ResolveForm.ACTIONS)[action]}.")
    return redirect("generations:attention")
