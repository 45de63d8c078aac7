"""Pages of "Start from an image": the concept form, the job's page, a pick made a model."""

import uuid

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from . import concepts, pricing
from .concept_forms import DEFAULT_MODEL, ConceptCostForm, ConceptForm, MakeModelForm
from .image_models import IMAGE_MODELS
from .models import ConceptImage, ConceptJob
from .views import can_act, queue_from_form, stream_download


def _get_job_for_user(request, pk, act=False):
    """The concept job if this user may see it, else 404; with ``act``, PermissionDenied
    unless the user may act on it (its owner or an admin), as for generations."""
    queryset = ConceptJob.objects.visible_to(request.user).select_related("owner", "edit_of")
    job = get_object_or_404(queryset, pk=pk)
    if act and not can_act(request.user, job):
        raise PermissionDenied("Only the owner or an admin can do this.")
    return job


class SelectionForm(forms.Form):
    """The GET parameters that choose the form: the model, and the image edited again."""

    image_model = forms.ChoiceField(choices=[(k, k) for k in IMAGE_MODELS], required=False)
    edit_of = forms.IntegerField(required=False, min_value=1)
    prompt = forms.CharField(required=False)

    def value(self, name):
        return self.cleaned_data.get(name) if self.is_valid() else None


def _edit_source(request, pk):
    """The concept image a job edits again: one the member may see, else 404."""
    if not pk:
        return None
    jobs = ConceptJob.objects.visible_to(request.user)
    return get_object_or_404(ConceptImage.objects.select_related("job"), pk=pk, job__in=jobs)


def _form_context(request, form, edit_of):
    return {
        "form": form,
        "edit_of": edit_of,
        "estimate": _estimate(form),
        "remaining": pricing.remaining_budget(request.user),
    }


def _estimate(form):
    data = getattr(form, "cleaned_data", {})
    count = data.get("count") or form["count"].value() or 1
    try:
        count = max(1, min(form.model.max_images, int(count)))
    except (TypeError, ValueError):
        count = 1
    # The table in force, as ConceptJob.objects.create_queued holds: the figure shown is held.
    price = pricing.image_estimate(form.model.key, form.options(), count)
    return {"total": price.total, "breakdown": price.breakdown}


@login_required
@permission_required("generations.add_generation", raise_exception=True)
def concept_new(request):
    """The "Start from an image" form; htmx swaps it when the model changes."""
    if request.method == "POST":
        selection = SelectionForm(request.POST)
        edit_of = _edit_source(request, selection.value("edit_of"))
        form = ConceptForm(request.POST, request.FILES, model_key=selection.value("image_model"))
        if form.is_valid():
            job = _create_job(request.user, form, edit_of)
            if job is not None:
                url = reverse("generations:concept", args=[job.pk])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    else:
        selection = SelectionForm(request.GET)
        edit_of = _edit_source(request, selection.value("edit_of"))
        key = selection.value("image_model") or (edit_of.job.image_model if edit_of else None)
        initial = {"form_token": uuid.uuid4(), "edit_of": edit_of.pk if edit_of else None}
        sent = ConceptCostForm(request.GET, model_key=key)
        if request.GET:  # what was typed survives a change of model
            sent.is_valid()
            initial.update({k: v for k, v in sent.data.items() if k in sent.fields and v})
            initial["form_token"] = uuid.uuid4()
        if edit_of and not initial.get("prompt"):
            initial["prompt"] = edit_of.job.prompt
        form = ConceptForm(initial=initial, model_key=key or DEFAULT_MODEL)
    context = _form_context(request, form, edit_of)
    if request.htmx:
        return render(request, "concepts/new.html#concept-form", context)
    return render(request, "concepts/new.html", context)


def _create_job(user, form, edit_of):
    """Save the job, or put the reason on the form (nothing typed is lost)."""
    return queue_from_form(
        form,
        ConceptJob.objects.create_queued,
        owner=user,
        image_model=form.model.key,
        prompt=form.cleaned_data["prompt"],
        options=form.options(),
        count=form.cleaned_data["count"],
        form_token=form.cleaned_data["form_token"],
        edit_of=edit_of,
        references=form.reference_images,
    )


@login_required
@require_GET
def concept_list(request):
    """Concept jobs the user may see, newest first, 24 a page, each with its first image."""
    jobs = (
        ConceptJob.objects.visible_to(request.user)
        .select_related("owner")
        .prefetch_related("images")
        .order_by("-created_at", "-id")
    )
    page = Paginator(jobs, 24).get_page(PageForm(request.GET).number())
    return render(request, "concepts/list.html", {"page": page})


class PageForm(forms.Form):
    page = forms.IntegerField(required=False, min_value=1)

    def number(self):
        return self.cleaned_data.get("page") if self.is_valid() else None


@login_required
@require_GET
def concept_cost(request):
    """The live cost of the form as it stands, next to the remaining monthly budget."""
    selection = SelectionForm(request.GET)
    form = ConceptCostForm(request.GET, model_key=selection.value("image_model"))
    form.is_valid()
    return render(request, "concepts/new.html#cost", _form_context(request, form, None))


@login_required
@require_GET
def concept_detail(request, pk):
    """The job's page: progress (polled by htmx until final), then its images to pick from."""
    job = _get_job_for_user(request, pk)
    return _job_page(request, job, MakeModelForm(job_images=list(job.images.all())))


def _job_page(request, job, model_form, status=200):
    spec, edition, mode = model_form.combination()
    context = {
        "job": job,
        "lineage": job.lineage(),
        "job_images": list(job.images.all()),
        "references": list(job.references.all()),
        "can_act": can_act(request.user, job),
        "model_form": model_form,
        "model_estimate": pricing.estimate(spec.key, mode, {}, edition or None),
        "remaining": pricing.remaining_budget(request.user),
    }
    if request.htmx and request.method == "GET":
        response = render(request, "concepts/detail.html#concept-status", context)
        return HttpResponseStopPolling(response.content) if job.is_final else response
    return render(request, "concepts/detail.html", context, status=status)


@login_required
@require_GET
def concept_model_cost(request, pk):
    """The live cost of making a model of the picked image on the chosen target."""
    job = _get_job_for_user(request, pk)
    form = MakeModelForm(request.GET, job_images=list(job.images.all()))
    spec, edition, mode = form.combination()
    context = {
        "model_estimate": pricing.estimate(spec.key, mode, {}, edition or None),
        "remaining": pricing.remaining_budget(request.user),
    }
    return render(request, "concepts/detail.html#model-cost", context)


@login_required
@permission_required("generations.add_generation", raise_exception=True)
@require_POST
def concept_make_model(request, pk):
    """Send the picked image (or one per view) to image-to-3D: a generation with lineage."""
    job = _get_job_for_user(request, pk, act=True)
    form = MakeModelForm(request.POST, job_images=list(job.images.all()))
    if form.is_valid():
        spec, edition, mode = form.combination()
        try:
            generation = queue_from_form(
                form,
                concepts.make_model,
                owner=request.user,
                spec=spec,
                edition=edition,
                mode=mode,
                picks=form.picks,
                form_token=form.cleaned_data["form_token"],
            )
        except concepts.images.ImageRejected as exc:
            form.add_error("image", f"{spec.label} cannot take this image: {exc.message}")
        else:
            if generation is not None:
                return redirect("generations:detail", generation.pk)
    return _job_page(request, job, form, status=400)


@login_required
@require_GET
def concept_image(request, pk, image_pk, reference=False):
    """A stored concept image (or an image the job edits), inline, authorised like its
    job's page."""
    job = _get_job_for_user(request, pk)
    image = get_object_or_404(job.references if reference else job.images, pk=image_pk)
    extension = {"jpeg": "jpg"}.get(image.format, image.format)
    kind = "reference" if reference else "image"
    filename = f"concept-{job.pk}-{kind}-{image.position + 1}.{extension}"
    response = stream_download(image.file, filename, image.format, inline=True)
    response["Cache-Control"] = "private, max-age=3600"
    return response
