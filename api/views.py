"""The JSON API, ``/api/v1/``: a thin layer over the model methods the pages call.

Every write goes through the same methods as the pages (``create_queued``,
``Generation.cancel``, ``Review.objects.record_decision``), so budgets, holds and
the ledger behave identically; every input goes through the pages' forms.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from credits import budgets, spend
from credits import views as credits_views
from credits.forms import SpendFilterForm
from generations import batches, finishing, planner, pricing, rows, storage, turns
from generations.forms import FINISH_FORMS, HistoryFilterForm
from generations.models import (
    Asset,
    Batch,
    BudgetExceeded,
    CancelRefused,
    Conversion,
    Generation,
    State,
)
from reviews.forms import DecisionForm, QueueFilterForm
from reviews.models import Review, ReviewConflict, ReviewStatus, awaiting_review

from . import catalogue, inputs
from .exceptions import KeyReused
from .models import IdempotencyKey
from .serializers import (
    DecisionRequestSerializer,
    ErrorSerializer,
    EstimateSerializer,
    GenerationDetailSerializer,
    GenerationRequestSerializer,
    GenerationSerializer,
)

ADD = "generations.add_generation"
REVIEW = "generations.review_generation"
RESOLVE = "generations.resolve_generation"
VIEW_SPEND = credits_views.VIEW_SPEND  # the spend pages' own permission
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description=(
        "One job per key and user: a retry with the same key and body returns the first; "
        "the key sent with another body (or URL) is refused with 422."
    ),
)
ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    402: OpenApiResponse(ErrorSerializer, description="Over a monthly budget (it is named)"),
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
    429: OpenApiResponse(ErrorSerializer, description="Over the token's rate; see Retry-After"),
}
# The answers of a request that takes an Idempotency-Key.
IDEMPOTENT_ERRORS = {
    **ERRORS,
    422: OpenApiResponse(
        ErrorSerializer, description="The Idempotency-Key was used for a different request"
    ),
}


class Pages(PageNumberPagination):
    page_size = 24
    page_size_query_param = "page_size"
    max_page_size = 100


def require(request, permission, message):
    if not request.user.has_perm(permission):
        raise PermissionDenied(message)


def _invalid(errors):
    return ValidationError(errors)


def can_act(user, generation):
    """Only the owner, or an admin, acts on a generation (as on its page)."""
    return generation.owner_id == user.pk or user.has_perm(RESOLVE)


def _generations(user):
    return (
        Generation.objects.visible_to(user)
        .select_related("owner")
        .prefetch_related(Prefetch("assets", queryset=Asset.objects.order_by("id")))
    )


def get_generation(request, pk, act=False):
    """The generation if this user may see it, else 404; with ``act`` 403 unless theirs."""
    generation = get_object_or_404(_generations(request.user), pk=pk)
    if act and not can_act(request.user, generation):
        raise PermissionDenied("Only the owner or an admin can do this.")
    return generation


def once(request, make):
    """``make(token)``'s answer, under the request's Idempotency-Key.

    ``token`` is the form token the key names (a fresh one without a key): the rows'
    own unique form token makes one job of a retry. The key's first request is
    remembered by its fingerprint in the same transaction as the job, so the key sent
    with another body is refused (``KeyReused``, 422) before anything is made; a
    refused request (any 4xx, or an exception) keeps no record, and a corrected retry
    may use the key again.
    """
    key = request.headers.get("Idempotency-Key", "")
    token = inputs.form_token(request.user, key)
    if not key:
        return make(token)
    with transaction.atomic():
        use = IdempotencyKey.objects.claim(request.user, token, inputs.fingerprint(request))
        if use == "other":
            raise KeyReused()
        response = make(token)
        if response.status_code >= 400:
            transaction.set_rollback(True)
        elif use == "same":
            response["Idempotent-Replayed"] = "true"
    return response


def generation_detail(request, generation, status_code=status.HTTP_200_OK, headers=None):
    # Read once: both estimates of a queued generation start from its place in the queue.
    position = generation.queue_position = turns.queue_position(generation)
    generation.estimated_start = planner.estimated_start(generation, position=position)
    generation.estimated_finish = (
        None if generation.is_final else planner.estimated_finish(generation, position=position)
    )
    generation.can_cancel = generation.state == State.QUEUED and can_act(request.user, generation)
    generation.cancel_note = generation.cancel_refusal
    data = GenerationDetailSerializer(generation, context={"request": request}).data
    return Response(data, status=status_code, headers=headers)


# --- who am I, the catalogue, the estimate -------------------------------------------------


@extend_schema(
    summary="The signed-in user, their roles and what they may still spend",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def me(request):
    user = request.user
    rows = budgets.usage(user)
    return Response(
        {
            "id": user.pk,
            "username": user.get_username(),
            "roles": sorted(user.groups.values_list("name", flat=True)),
            "can_generate": user.has_perm(ADD),
            "can_review": user.has_perm(REVIEW),
            "can_view_spend": user.has_perm(VIEW_SPEND),
            "remaining": min((row.left for row in rows), default=None),
            "budgets": [
                {
                    "name": row.whose,
                    "provider": row.budget.provider,
                    "limit": row.budget.monthly_limit,
                    "spent": row.spent,
                    "left": row.left,
                }
                for row in rows
            ],
        }
    )


@extend_schema(
    summary="Providers with their modes, editions, options and prices",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def providers(request):
    return Response({"providers": catalogue.providers()})


@extend_schema(
    summary="What a generation would cost, and what is left of the budgets",
    request=GenerationRequestSerializer,
    responses={200: EstimateSerializer, **ERRORS},
)
@api_view(["POST"])
def estimate(request):
    form, errors = inputs.cost_form(request)
    price = pricing.estimate(form.spec.key, form.mode, form.options(), form.edition)
    return Response(
        {
            "provider": form.spec.key,
            "mode": form.mode,
            "edition": form.edition,
            "total": price.total,
            "breakdown": [{"label": label, "credits": amount} for label, amount in price.breakdown],
            "price_version": price.version,
            "remaining": budgets.remaining(request.user, form.spec.key),
            "errors": errors,
        }
    )


# --- generations ---------------------------------------------------------------------------


@extend_schema(
    methods=["GET"],
    summary="Generations you may see, with the history page's filters, newest first",
    parameters=[
        OpenApiParameter("q", str, description="Words in the prompt"),
        OpenApiParameter("state", str),
        OpenApiParameter("provider", str),
        OpenApiParameter("owner", int, description="A user id"),
        OpenApiParameter("date_from", OpenApiTypes.DATE),
        OpenApiParameter("date_to", OpenApiTypes.DATE),
        OpenApiParameter("sort", str, enum=["newest", "oldest", "cost_high", "cost_low"]),
    ],
    responses={200: GenerationSerializer(many=True), **ERRORS},
)
@extend_schema(
    methods=["POST"],
    summary="Queue a generation (JSON with base64 images, or multipart)",
    parameters=[IDEMPOTENCY_HEADER],
    request={
        "application/json": GenerationRequestSerializer,
        "multipart/form-data": GenerationRequestSerializer,
    },
    responses={201: GenerationDetailSerializer, **IDEMPOTENT_ERRORS},
)
@api_view(["GET", "POST"])
def generations(request):
    if request.method == "POST":
        return _create(request)
    form = HistoryFilterForm(request.query_params)
    if not form.is_valid():
        raise _invalid(form.errors)
    paginator = Pages()
    page = paginator.paginate_queryset(form.filter(_generations(request.user)), request)
    data = GenerationSerializer(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data)


def _create(request, source=None):
    require(request, ADD, "Your role cannot start generations.")
    return once(request, lambda token: _queue(request, token, source))


def _queue(request, token, source):
    first = Generation.objects.filter(form_token=token, owner=request.user).first()
    if first is not None:
        # A retry of a request that already made its generation: the same answer again.
        return generation_detail(
            request, first, status.HTTP_201_CREATED, {"Idempotent-Replayed": "true"}
        )
    form = inputs.generation_form(request, token, source)
    try:
        generation = rows.queue(request.user, form, token)
    except BudgetExceeded as exc:
        return budget_refused(request, form.spec.key, exc)
    if generation is None:  # cannot happen: the token names the user
        raise Http404("This key was used by someone else.")
    if source is not None and generation.previous_version_id is None:
        Generation.objects.filter(pk=generation.pk).update(previous_version=source)
        generation.previous_version_id = source.pk
    generation = get_generation(request, generation.pk)
    return generation_detail(request, generation, status.HTTP_201_CREATED)


def budget_refused(request, provider, exc, what=None):
    """402 naming the budget that is short (the first one the estimate does not fit);
    ``what`` names the job in the message when it is not a generation."""
    short = sorted(budgets.usage(request.user, provider), key=lambda row: row.left)
    budget = None
    if short:
        row = short[0]
        budget = {
            "name": row.whose,
            "provider": row.budget.provider,
            "limit": row.budget.monthly_limit,
            "left": row.left,
        }
    message = exc.message.replace("This generation", what) if what else exc.message
    body = {"detail": message, "code": "budget_exceeded", "budget": budget}
    return Response(body, status=status.HTTP_402_PAYMENT_REQUIRED)


@extend_schema(
    summary="One generation: state, progress, queue position, estimates, assets and facts",
    responses={200: GenerationDetailSerializer, **ERRORS},
)
@api_view(["GET"])
def generation(request, pk):
    return generation_detail(request, get_generation(request, pk))


@extend_schema(
    summary="Regenerate with changes: the fields sent replace the source's",
    parameters=[IDEMPOTENCY_HEADER],
    request=GenerationRequestSerializer,
    responses={201: GenerationDetailSerializer, **IDEMPOTENT_ERRORS},
)
@api_view(["POST"])
def regenerate(request, pk):
    source = get_generation(request, pk, act=True)
    return _create(request, source)


@extend_schema(
    summary="Cancel a generation not yet sent upstream; its hold is released",
    request=None,
    responses={200: GenerationDetailSerializer, **ERRORS},
)
@api_view(["POST"])
def cancel(request, pk):
    """The owner or an admin; 409 once it was sent (the upstream has no cancel)."""
    generation = get_generation(request, pk, act=True)
    try:
        generation.cancel(by=request.user)
    except CancelRefused as exc:
        body = {"detail": exc.message, "code": "too_late", "state": generation.state}
        return Response(body, status=status.HTTP_409_CONFLICT)
    return generation_detail(request, get_generation(request, pk))


@extend_schema(
    summary="Finish a model: remesh, texture, repair, optimize or render it (a new version)",
    description=(
        "The step's options are the page's form fields (e.g. remesh: polygons, face_limit). "
        "Its price is held now, charged when the upstream takes it and refunded if it fails; "
        "its result becomes a new version (new_version, once finished). 409: not possible "
        "for this model (the reason in words); 402: over a budget."
    ),
    parameters=[IDEMPOTENCY_HEADER],
    request=OpenApiTypes.OBJECT,
    responses={201: OpenApiTypes.OBJECT, **IDEMPOTENT_ERRORS},
)
@api_view(["POST"])
def finish(request, pk, kind):
    """The page's form and model method (finishing.request) behind a JSON body."""
    generation = get_generation(request, pk, act=True)
    form_class = FINISH_FORMS.get(kind)
    if form_class is None:
        raise Http404("No such finishing step.")
    return once(request, lambda token: _finish(request, generation, kind, form_class, token))


def _finish(request, generation, kind, form_class, token):
    data = request.data.dict() if hasattr(request.data, "dict") else dict(request.data)
    # An option left out takes the form's initial choice, as on the page.
    defaults = {
        name: field.initial
        for name, field in form_class.base_fields.items()
        if field.initial is not None and name != "form_token"
    }
    form = form_class({**defaults, **data, "form_token": token})
    if not form.is_valid():
        raise _invalid(form.errors)
    try:
        job = finishing.request(generation, kind, form.options(), request.user, token)
    except finishing.FinishingRefused as exc:
        code = status.HTTP_402_PAYMENT_REQUIRED if exc.code == "budget_exceeded" else 409
        return Response({"detail": exc.message, "code": exc.code}, status=code)
    return Response(_step_body(request, job), status=status.HTTP_201_CREATED)


def _step_body(request, job):
    return {
        "id": job.pk,
        "url": request.build_absolute_uri(
            reverse("api:finish-step", args=[job.generation_id, job.pk])
        ),
        "kind": job.kind,
        "options": job.options,
        "source": job.generation_id,
        "state": job.state,
        "state_label": job.get_state_display(),
        "progress": job.progress,
        "credits": job.credit_estimate,
        "failure_reason": job.failure_reason,
        "new_version": job.result_id,
    }


@extend_schema(
    summary="A finishing step asked for on a generation: its state, progress and new version",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def finish_step(request, pk, step_pk):
    generation = get_generation(request, pk)
    job = get_object_or_404(
        Conversion.objects.exclude(kind=Conversion.Kind.CONVERT), pk=step_pk, generation=generation
    )
    return Response(_step_body(request, job))


@extend_schema(
    summary="Download a stored file of a generation",
    responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
)
@api_view(["GET"])
def asset(request, pk, asset_pk):
    generation = get_generation(request, pk)
    stored = get_object_or_404(Asset, pk=asset_pk, generation=generation)
    return download(stored, f"generation-{generation.pk}-{stored.role}-{stored.pk}")


def download(stored, stem):
    """A stored file (an asset, a concept image) as an attachment, streamed block by block."""
    try:
        source, size = storage.open_stream(stored.file)
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    extension = {"jpeg": "jpg"}.get(stored.format, stored.format)
    response = FileResponse(source, as_attachment=True, filename=f"{stem}.{extension}")
    response.block_size = storage.CHUNK
    response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- batches -------------------------------------------------------------------------------

BATCH_UPLOAD = {
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "sheet": {"type": "string", "format": "binary", "description": "The CSV"},
            "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
            "provider": {"type": "string"},
            "edition": {"type": "string"},
            "options": {"type": "string", "description": "NAME=VALUE lines for every row"},
            "more": {"type": "boolean", "description": "More images follow: check later"},
        },
    }
}


def _batch_body(request, batch):
    body = {
        "id": batch.pk,
        "name": batch.name,
        "status": batch.status,
        "created_at": batch.created_at,
        "submitted_at": batch.submitted_at,
        "page_url": request.build_absolute_uri(reverse("batches:detail", args=[batch.pk])),
    }
    if batch.status == Batch.Status.DRAFT:
        return {**body, "rows": batch.rows, "totals": batches.totals(batch)}
    progress = batches.progress(batch)
    items = [
        {
            "row": item.row,
            "generation": item.generation.pk,
            "state": item.generation.state,
            "progress": item.generation.progress,
            "url": request.build_absolute_uri(reverse("api:generation", args=[item.generation.pk])),
        }
        for item in progress["items"]
    ]
    return {
        **body,
        "items": items,
        "counts": {label: count for label, count in progress["counts"]},
        "percent": progress["percent"],
        "finished": progress["finished"],
        "open": progress["open"],
        "estimated_finish": progress["finish"],
        "zip_url": request.build_absolute_uri(reverse("api:batch-zip", args=[batch.pk])),
    }


def _get_batch(request, pk):
    return batches.batch_for(request.user, pk)


def _upload(request, batch=None):
    """A CSV and images into a new draft, or into ``batch``; the draft's answer."""
    form = batches.UploadForm(request.data, request.FILES)
    if not form.is_valid():
        raise _invalid(form.errors)
    try:
        with transaction.atomic():
            if batch is None:
                batch = Batch.objects.create(owner=request.user, name="upload")
            batches.add_upload(batch, form)
    except batches.BatchRefused as exc:
        raise _invalid({"images": [exc.message]}) from None
    return batch


@extend_schema(
    summary="Read a CSV (and its images) or many images into a draft batch, every row checked",
    request=BATCH_UPLOAD,
    responses={201: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["POST"])
def batch_create(request):
    require(request, ADD, "Your role cannot start generations.")
    batch = _upload(request)
    return Response(_batch_body(request, batch), status=status.HTTP_201_CREATED)


@extend_schema(
    methods=["GET"],
    summary="A draft's rows with errors and costs, or a submitted batch's progress",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="batches_add",
    summary="Add to a draft: a new CSV replaces its rows, images join",
    request=BATCH_UPLOAD,
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET", "POST"])
def batch(request, pk):
    batch = _get_batch(request, pk)
    if request.method == "POST":
        if batch.owner_id != request.user.pk or batch.status != Batch.Status.DRAFT:
            raise PermissionDenied("Only its owner adds to a draft batch.")
        batch = _upload(request, batch)
    elif batch.status == Batch.Status.DRAFT and any("cost" not in r for r in batch.rows):
        batches.check(batch)
    return Response(_batch_body(request, batch))


@extend_schema(
    summary="Queue every row of a draft, or none (with the reason)",
    request=None,
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["POST"])
def batch_submit(request, pk):
    batch = _get_batch(request, pk)
    if batch.owner_id != request.user.pk:
        raise PermissionDenied("Only its owner submits a batch.")
    try:
        batches.submit(batch, request.user)
    except batches.BatchRefused as exc:
        code = {"budget_exceeded": 402, "submitted": 409}.get(exc.code, 400)
        return Response({"detail": exc.message, "code": exc.code}, status=code)
    batch.refresh_from_db()
    return Response(_batch_body(request, batch))


@extend_schema(
    summary="Cancel every row of a batch not yet sent upstream",
    request=None,
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["POST"])
def batch_cancel(request, pk):
    batch = _get_batch(request, pk)
    canceled, late = batches.cancel_rest(batch, request.user)
    return Response({"canceled": canceled, "already_sent": late})


@extend_schema(
    summary="Every finished model of a batch and a manifest CSV, as one streamed ZIP",
    responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERRORS},
)
@api_view(["GET"])
def batch_zip(request, pk):
    return batches.zip_response(_get_batch(request, pk))


# --- reviewers -----------------------------------------------------------------------------


@extend_schema(
    summary="Finished generations awaiting review, oldest first (reviewers)",
    parameters=[
        OpenApiParameter("provider", str),
        OpenApiParameter("owner", str, description="A username"),
        OpenApiParameter("age", str, enum=["1h", "1d", "7d"]),
    ],
    responses={200: GenerationSerializer(many=True), **ERRORS},
)
@api_view(["GET"])
def review_queue(request):
    require(request, REVIEW, "Only reviewers see the review queue.")
    form = QueueFilterForm(request.query_params)
    if not form.is_valid():
        raise _invalid(form.errors)
    queryset = form.filter(awaiting_review()).select_related("owner").prefetch_related("assets")
    paginator = Pages()
    page = paginator.paginate_queryset(queryset, request)
    data = GenerationSerializer(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data)


@extend_schema(
    summary="Approve, reject or ask for changes (reviewers)",
    request=DecisionRequestSerializer,
    responses={201: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["POST"])
def decide(request, pk):
    require(request, REVIEW, "Only reviewers can review generations.")
    generation = get_generation(request, pk)
    data = dict(request.data.items()) if hasattr(request.data, "items") else {}
    given = data.get("based_on")
    data["based_on"] = 0 if given in (None, "") else given
    form = DecisionForm(data)
    if not form.is_valid():
        raise _invalid(form.errors)
    try:
        review = Review.objects.record_decision(
            generation,
            request.user,
            form.cleaned_data["decision"],
            form.cleaned_data["comment"],
            based_on=None if given in (None, "") else form.cleaned_data["based_on"],
        )
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except ReviewConflict as exc:
        return Response(
            {"detail": exc.message, "code": "conflict"}, status=status.HTTP_409_CONFLICT
        )
    except ValueError as exc:
        raise _invalid({"non_field_errors": [str(exc)]}) from None
    current = ReviewStatus.objects.filter(generation=generation).values_list("state", flat=True)
    return Response(
        {
            "id": review.pk,
            "generation": generation.pk,
            "decision": review.decision,
            "comment": review.comment,
            "review_state": current.first(),
        },
        status=status.HTTP_201_CREATED,
    )


# --- admins --------------------------------------------------------------------------------

SPEND_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE),
    OpenApiParameter("end", OpenApiTypes.DATE),
    OpenApiParameter("user", int, description="A user id"),
    OpenApiParameter("provider", str),
]


def _spend_filters(request):
    form = SpendFilterForm(request.query_params or None)
    if form.is_bound and not form.is_valid():
        raise _invalid(form.errors)
    return form.filters()


def _sums(sums):
    return {
        "net": sums.net,
        "charged": sums.charged,
        "refunded": sums.refunded,
        "held": sums.held,
        "adjusted": sums.adjusted,
        "generations": sums.generations,
        "submitted": sums.submitted,
        "failed": sums.failed,
    }


@extend_schema(
    summary="Credit spend by person, provider and day (admins)",
    parameters=SPEND_PARAMETERS,
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def spend_report(request):
    require(request, VIEW_SPEND, "Only admins see the spend report.")
    start, end, user, provider = _spend_filters(request)
    report = spend.report(start, end, user=user, provider=provider)
    return Response(
        {
            "start": start,
            "end": end,
            "total": _sums(report.total),
            "finished": report.finished,
            "cost_per_finished": report.cost_per_finished,
            "people": [{"user": name, **_sums(sums)} for name, sums in report.people],
            "providers": [
                {"provider": key, "label": label, "edition": edition, **_sums(sums)}
                for key, label, edition, sums in report.providers
            ],
            "days": [{"day": day, **_sums(sums)} for day, sums in report.days],
        }
    )


@extend_schema(
    summary="The ledger entries of a range as CSV, streamed (admins)",
    parameters=SPEND_PARAMETERS,
    responses={(200, "text/csv"): OpenApiTypes.STR, **ERRORS},
)
@api_view(["GET"])
def ledger_export(request):
    require(request, VIEW_SPEND, "Only admins export the ledger.")
    _spend_filters(request)  # a bad filter is a 400 here, not this month's rows
    # The spend page's own export, streamed as it is; DRF has put the token's user on
    # the request, and the view checks the same permission again.
    return credits_views.ledger_csv(request._request)
