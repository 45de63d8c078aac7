"""Concept jobs ("Start from an image") through the API: the image models, an estimate,
a job made, followed and listed, its images downloaded, and picked images made a model.

The same forms and model methods as the pages (generations/concept_views.py):
``ConceptForm`` and ``ConceptJob.objects.create_queued`` for a job, ``MakeModelForm``
and ``concepts.make_model`` for a model, ``ConceptJob.objects.visible_to`` for who sees
what; an Idempotency-Key makes one job of a retry (``views.once``).
"""

from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from credits import budgets
from generations import concepts, images
from generations.models import BudgetExceeded, ConceptImage, ConceptJob, ConceptPick

from . import catalogue, inputs
from .serializers import (
    ConceptEstimateRequestSerializer,
    ConceptEstimateSerializer,
    ConceptJobSerializer,
    ConceptRequestSerializer,
    GenerationDetailSerializer,
    MakeModelRequestSerializer,
)
from .views import (
    ADD,
    ERRORS,
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_ERRORS,
    Pages,
    budget_refused,
    can_act,
    download,
    generation_detail,
    get_generation,
    once,
    require,
)

NOT_READY = "Concept job {pk} is {state}: its images can be picked once it has finished."  # 409


def _jobs(queryset):
    images_with_picks = Prefetch(
        "images",
        queryset=ConceptImage.objects.prefetch_related(
            Prefetch("picks", queryset=ConceptPick.objects.only("id", "image_id", "generation_id"))
        ),
    )
    return queryset.select_related("owner").prefetch_related(images_with_picks, "references")


def _get_job(request, pk, act=False):
    """The job if this user may see it (as on its page), else 404; with ``act`` 403 unless
    it is theirs or they are an admin."""
    job = get_object_or_404(_jobs(ConceptJob.objects.visible_to(request.user)), pk=pk)
    if act and not can_act(request.user, job):
        raise PermissionDenied("Only the owner or an admin can do this.")
    return job


def _job_response(request, job, status_code=status.HTTP_200_OK):
    data = ConceptJobSerializer(job, context={"request": request}).data
    return Response(data, status=status_code)


@extend_schema(
    summary="Image models for concept jobs, with their options and credits per image",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def image_models(request):
    return Response({"image_models": catalogue.image_models()})


@extend_schema(
    summary="What a concept job would cost, and what is left of the budgets",
    request=ConceptEstimateRequestSerializer,
    responses={200: ConceptEstimateSerializer, **ERRORS},
)
@api_view(["POST"])
def concept_estimate(request):
    form, errors = inputs.concept_cost_form(request)
    count = form.cleaned_data.get("count") or 1
    total, breakdown = form.model.price(form.options(), count)
    return Response(
        {
            "image_model": form.model.key,
            "count": count,
            "total": total,
            "breakdown": [{"label": label, "credits": amount} for label, amount in breakdown],
            "remaining": budgets.remaining(request.user, form.model.key),
            # The estimate is asked before the prompt is written: no error of it here.
            "errors": {k: v for k, v in errors.items() if k != "prompt"},
        }
    )


@extend_schema(
    methods=["GET"],
    summary="Your concept jobs, newest first",
    responses={200: ConceptJobSerializer(many=True), **ERRORS},
)
@extend_schema(
    methods=["POST"],
    summary="Queue a concept job: 1-4 images from a prompt (and images to edit)",
    description=(
        "Its price is held now, charged when the upstream takes it and refunded if it "
        "fails. 402: over a budget (it is named)."
    ),
    parameters=[IDEMPOTENCY_HEADER],
    request={
        "application/json": ConceptRequestSerializer,
        "multipart/form-data": ConceptRequestSerializer,
    },
    responses={201: ConceptJobSerializer, **IDEMPOTENT_ERRORS},
)
@api_view(["GET", "POST"])
def concept_jobs(request):
    if request.method == "POST":
        require(request, ADD, "Your role cannot start concept jobs.")
        return once(request, lambda token: _create(request, token))
    paginator = Pages()
    mine = _jobs(ConceptJob.objects.filter(owner=request.user)).order_by("-created_at", "-id")
    page = paginator.paginate_queryset(mine, request)
    data = ConceptJobSerializer(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data)


def _create(request, token):
    first = ConceptJob.objects.filter(form_token=token, owner=request.user).first()
    if first is not None:  # a retry of a request that already made its job
        return _job_response(request, _get_job(request, first.pk), status.HTTP_201_CREATED)
    fields, options, uploads = inputs.concept_body(request)
    edit_of = _edit_source(request, fields.get("edit_of"))
    model_key = fields.get("image_model") or (edit_of.job.image_model if edit_of else None)
    form = inputs.concept_form(model_key, fields, options, uploads, token)
    try:
        job = ConceptJob.objects.create_queued(
            owner=request.user,
            image_model=form.model.key,
            prompt=form.cleaned_data["prompt"],
            options=form.options(),
            count=form.cleaned_data["count"],
            form_token=token,
            edit_of=edit_of,
            references=form.reference_images,
        )
    except BudgetExceeded as exc:
        return budget_refused(request, form.model.key, exc, what="This concept job")
    if job is None:  # cannot happen: the token names the user
        raise Http404("This key was used by someone else.")
    return _job_response(request, _get_job(request, job.pk), status.HTTP_201_CREATED)


def _edit_source(request, pk):
    """The concept image a job edits again: one this user may see, else a 400 on edit_of."""
    if pk in (None, ""):
        return None
    visible = ConceptJob.objects.visible_to(request.user)
    try:
        return ConceptImage.objects.select_related("job").get(pk=int(pk), job__in=visible)
    except (ConceptImage.DoesNotExist, TypeError, ValueError):
        raise inputs.Invalid(
            {"edit_of": ["No concept image with this id that you may see."]}
        ) from None


@extend_schema(
    summary="One concept job: state, progress, its images (with download URLs), credits",
    responses={200: ConceptJobSerializer, **ERRORS},
)
@api_view(["GET"])
def concept_job(request, pk):
    return _job_response(request, _get_job(request, pk))


@extend_schema(
    summary="Download a stored concept image of a job (or an image it edits)",
    responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
)
@api_view(["GET"])
def concept_image(request, pk, image_pk, reference=False):
    job = _get_job(request, pk)
    image = get_object_or_404(job.references if reference else job.images, pk=image_pk)
    kind = "reference" if reference else "image"
    return download(image, f"concept-{job.pk}-{kind}-{image.position + 1}")


@extend_schema(
    summary="Make a 3D model of picked concept images (image-to-3D or multi-view)",
    description=(
        "A generation like any other, keeping its lineage (the concept images picked). "
        "The provider's options are its defaults; regenerate it with changes. 409: the "
        "job has not finished; 402: over a budget."
    ),
    parameters=[IDEMPOTENCY_HEADER],
    request=MakeModelRequestSerializer,
    responses={201: GenerationDetailSerializer, **IDEMPOTENT_ERRORS},
)
@api_view(["POST"])
def concept_model(request, pk):
    job = _get_job(request, pk, act=True)
    require(request, ADD, "Your role cannot start generations.")
    if not job.images.all():
        body = {
            "detail": NOT_READY.format(pk=job.pk, state=job.get_state_display().lower()),
            "code": "not_finished",
            "state": job.state,
        }
        return Response(body, status=status.HTTP_409_CONFLICT)
    return once(request, lambda token: _make_model(request, job, token))


def _make_model(request, job, token):
    form = inputs.make_model_form(request, token, list(job.images.all()))
    spec, edition, mode = form.combination()
    try:
        generation = concepts.make_model(
            owner=request.user,
            spec=spec,
            edition=edition,
            mode=mode,
            picks=form.picks,
            form_token=token,
        )
    except BudgetExceeded as exc:
        return budget_refused(request, spec.key, exc)
    except images.ImageRejected as exc:
        field = "image" if mode == "image" else "views"
        raise inputs.Invalid(
            {field: [f"{spec.label} cannot take this image: {exc.message}"]}
        ) from None
    if generation is None:  # cannot happen: the token names the user
        raise Http404("This key was used by someone else.")
    return generation_detail(
        request, get_generation(request, generation.pk), status.HTTP_201_CREATED
    )
