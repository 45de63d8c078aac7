"""The members' workspace: home, new generation, generation page, history, downloads.

Every view that takes an id opens with ``_get_generation_for_user``: members
see the team's generations; acting on one (regenerate, duplicate, convert,
capture a poster) is for its owner or an admin. One view serves a page and
its fragments: with ``HX-Request`` only the swapped partial is rendered.
"""

import hashlib
import logging
import time
import uuid
from datetime import timedelta
from functools import cached_property
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.functional import SimpleLazyObject
from django.utils.timesince import timeuntil
from django.views.decorators.http import condition, require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling, push_url

from credits.models import LedgerEntry
from studio_dashboard import dataversion

from . import conversions, finishing, planner, pricing, rows, storage, turns
from .forms import (
    FINISH_FORMS,
    ActionForm,
    ConvertForm,
    CostForm,
    GenerationForm,
    HistoryFilterForm,
    PosterForm,
    SelectionForm,
)
from .models import (
    IN_FLIGHT_STATES,
    Asset,
    BudgetExceeded,
    CancelRefused,
    Conversion,
    Generation,
    ReferenceImage,
    State,
    visibility_scope,
)

PAGE_SIZE = 24
CONTENT_TYPES = {
    "glb": "model/gltf-binary",
    "zip": "application/zip",
    "stl": "model/stl",
    "ply": "application/octet-stream",
    "fbx": "application/octet-stream",
    "usdz": "model/vnd.usdz+zip",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "webm": "video/webm",
}


logger = logging.getLogger(__name__)


def can_act(user, generation):
    """Only the owner, or an admin (the Admins role resolves and acts on anyone's), may act."""
    return generation.owner_id == user.pk or user.has_perm("generations.resolve_generation")


def _get_generation_for_user(request, pk, act=False):
    """The generation if this user may see it, else 404 (never reveal that it exists).

    With ``act``, also PermissionDenied unless the user may act on it.
    """
    queryset = Generation.objects.visible_to(request.user).select_related("owner")
    generation = get_object_or_404(queryset, pk=pk)
    if act and not can_act(request.user, generation):
        raise PermissionDenied("Only the owner or an admin can do this.")
    return generation


def _remaining_budget(user):
    return pricing.remaining_budget(user)


# --- home ----------------------------------------------------------------------------------


@login_required
@require_GET
def home(request):
    """The member's generations in flight and this month's spend."""
    in_flight = list(
        Generation.objects.filter(
            owner=request.user, state__in=[*IN_FLIGHT_STATES, State.NEEDS_ATTENTION]
        )
        .select_related("owner")
        .order_by("-created_at")[:20]
    )
    context = {"in_flight": in_flight}
    if request.htmx:
        response = render(request, "generations/home.html#in-flight", context)
        if not any(g.state in IN_FLIGHT_STATES for g in in_flight):
            return HttpResponseStopPolling(response.content)
        return response
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # Holds and charges are negative, releases and refunds positive: spend is minus the sum.
    spent = -LedgerEntry.objects.filter(user=request.user, created_at__gte=month_start).balance()
    recent = list(
        Generation.objects.visible_to(request.user)
        .filter(state=State.FINISHED)
        .select_related("owner")
        .prefetch_related(_thumbnails(), "images")
        .order_by("-finished_at", "-id")[:6]
    )
    context.update(
        spent=spent,
        month_start=month_start,
        remaining=_remaining_budget(request.user),
        recent=recent,
    )
    return render(request, "generations/home.html", context)


# --- new generation ------------------------------------------------------------------------


@login_required
@permission_required("generations.add_generation", raise_exception=True)
def generation_new(request):
    """The form for one catalogue combination; htmx swaps it when the selection changes.

    GET without JavaScript is the same: the "Show options" button submits the
    form by GET, and the selection and whatever was typed come back.
    """
    if request.method == "POST":
        selection = SelectionForm(request.POST)
        spec, mode, edition = selection.combination()
        source = _source(request, selection.source_pk())
        form = GenerationForm(
            request.POST, request.FILES, spec=spec, mode=mode, edition=edition, source=source
        )
        if form.is_valid():
            generation = _create_generation(request.user, form)
            if generation is not None:
                url = reverse("generations:detail", args=[generation.pk])
                if request.htmx:
                    return HttpResponseClientRedirect(url)
                return redirect(url)
    else:
        selection = SelectionForm(request.GET)
        spec, mode, edition = selection.combination()
        source = _source(request, selection.source_pk())
        if source is not None and not request.GET.keys() - {"source"}:
            initial = _initial_from(source)
            spec, mode, edition = source.provider_spec, source.mode, source.edition
        else:
            # The member's values survive a change of selection.
            sent = GenerationForm(request.GET, spec=spec, mode=mode, edition=edition)
            initial = sent.carried_values() if request.GET else {}
        initial.setdefault("form_token", uuid.uuid4())
        if source is not None:
            initial["source"] = source.pk
        form = GenerationForm(initial=initial, spec=spec, mode=mode, edition=edition, source=source)
    context = {
        "form": form,
        "spec": spec,
        "source": source,
        "estimate": pricing.estimate(spec.key, mode, _initial_options(form), edition),
        "remaining": _remaining_budget(request.user),
    }
    if request.htmx:
        response = render(request, "generations/new.html#generation-form", context)
        if request.method == "GET":
            query = {"provider": spec.key, "mode": mode, "edition": edition}
            if source is not None:
                query["source"] = source.pk
            push_url(response, f"{reverse('generations:new')}?{_urlencode(query)}")
        return response
    return render(request, "generations/new.html", context)


def _urlencode(query):
    return urlencode({k: v for k, v in query.items() if v})


def _source(request, pk):
    """The generation a form regenerates: one the member may act on, else 404/403."""
    if pk is None:
        return None
    return _get_generation_for_user(request, pk, act=True)


def _initial_from(generation):
    """A form's initial values that repeat ``generation``'s request."""
    initial = {"prompt": generation.prompt}
    spec = generation.provider_spec
    offered = {opt.name: opt for opt in spec.options_for(generation.mode, generation.edition)}
    for name, value in (generation.options or {}).items():
        if name in offered:
            initial[name] = value if offered[name].kind in ("bool", "int") else str(value)
    return initial


def _initial_options(form):
    """The options a form shows (bound: as sent; unbound: its initial values), for the price."""
    if form.is_bound:
        return form.raw_options()
    return {name: form[name].value() for name in form.option_names}


def queue_from_form(form, create_queued, /, **fields):
    """``create_queued(**fields)``'s row, or None with the reason on the form when the budget
    refuses it (nothing typed is lost); 404 when the form token is someone else's."""
    try:
        row = create_queued(**fields)
    except BudgetExceeded as exc:
        form.add_error(None, exc.message)
        return None
    if row is None:
        raise Http404("This form was already used by someone else.")
    return row


def _create_generation(user, form):
    """Save the generation, or put the reason on the form (nothing typed is lost)."""
    generation = queue_from_form(
        form, rows.queue, owner=user, form=form, token=form.cleaned_data["form_token"]
    )
    if generation is None:
        return None
    if form.source_generation is not None and generation.previous_version_id is None:
        # A double click returns the first generation; linking it again is harmless.
        Generation.objects.filter(pk=generation.pk).update(previous_version=form.source_generation)
    return generation


@login_required
@require_GET
def generation_cost(request):
    """The live cost of the form as it stands, next to the remaining monthly budget."""
    spec, mode, edition = SelectionForm(request.GET).combination()
    form = CostForm(request.GET, spec=spec, mode=mode, edition=edition)
    form.is_valid()
    context = {
        "estimate": pricing.estimate(spec.key, mode, form.options(), edition),
        "remaining": _remaining_budget(request.user),
    }
    return render(request, "generations/new.html#cost", context)


# --- generation page -----------------------------------------------------------------------


def _card_etag(request, pk):
    """The polled status card's ETag: what the card shows of its row (state, progress,
    the upstream's word, when the state changed), and the minute, whose passing changes
    an estimate's words. A queued one also shows its place in the queue, which moves
    when any generation does: the data version stands for that. None (no ETag, the view
    answers as usual, a 404 included) for a generation this user may not see."""
    row = (
        Generation.objects.filter(pk=pk)
        .values_list("owner_id", "state", "progress", "upstream_status", "state_changed_at")
        .first()
    )
    if row is None:
        return None
    owner_id, state, progress, upstream_status, changed = row
    user = request.user
    if owner_id != user.pk and visibility_scope(user) != "team":
        return None
    moving = dataversion.current() if state == State.QUEUED else ""
    minute = int(time.time() // 60)
    return (
        f'"{user.pk}-{state}-{progress}-{upstream_status}-{changed.timestamp()}-{minute}-{moving}"'
    )


@login_required
@require_GET
def generation_detail(request, pk):
    """The page, the polled status card, or the polled conversions (by ``HX-Target``).

    The status card is polled every 2 s while the generation is in flight; an unchanged
    card is a 304 from its ETag (``_card_etag``), with nothing rendered.
    """
    if not request.htmx:
        return _detail_page(request, pk)
    # A polled list of jobs: (its context, the key that says one is still running).
    lists = {
        "conversions": (_conversions_context, "converting"),
        "finishing": (_finishing_context, "finishing"),
    }
    if request.htmx.target in lists:
        build, running = lists[request.htmx.target]
        generation = _get_generation_for_user(request, pk)
        context = build(generation, request.user)
        response = render(request, f"generations/detail.html#{request.htmx.target}", context)
        if not context[running]:
            return HttpResponseStopPolling(response.content)
        return response
    return _status_card(request, pk)


@condition(etag_func=_card_etag)
def _status_card(request, pk):
    generation = _get_generation_for_user(request, pk)
    response = render(
        request, "generations/detail.html#status-card", _card_context(request, generation)
    )
    if generation.is_final or generation.state == State.NEEDS_ATTENTION:
        response = HttpResponseStopPolling(response.content)
    # Every poll asks again (no-cache); the browser sends the ETag and takes a 304.
    patch_cache_control(response, private=True, no_cache=True)
    return response


class _Files:
    """What the page shows of a generation's stored files, read only when the cached
    fragment that shows them is rendered."""

    def __init__(self, generation):
        self.generation = generation

    @cached_property
    def _all(self):
        # Read once, into the generation's prefetch cache: Generation.glb_asset reads it too.
        prefetch_related_objects([self.generation], "assets")
        return list(self.generation.assets.all())

    @cached_property
    def model(self):
        self._all  # noqa: B018 - the one read of the files
        return self.generation.glb_asset

    @cached_property
    def thumbnail(self):
        return next((a for a in self._all if a.role == Asset.Role.THUMBNAIL), None)

    @cached_property
    def renders(self):
        """Stills and turntables a finishing step rendered (finishing.py)."""
        return [a for a in self._all if a.role == Asset.Role.RENDER]

    @cached_property
    def downloads(self):
        return [a for a in self._all if a.role not in (Asset.Role.CONVERTED, Asset.Role.THUMBNAIL)]


def _card_context(request, generation):
    # Read once: both estimates of a queued generation start from its place in the queue.
    position = turns.queue_position(generation)
    context = {
        "generation": generation,
        "eta_words": _when_words(
            # A stopped generation has nothing to expect: no estimate.
            None
            if generation.is_final or generation.state == State.NEEDS_ATTENTION
            else planner.estimated_finish(generation, position=position)
        ),
        "queue_position": position,
        "start_words": _when_words(planner.estimated_start(generation, position=position)),
        "can_act": can_act(request.user, generation),
        "files": _Files(generation),
    }
    if generation.state == State.FINISHED:
        context.update(_conversions_context(generation, request.user))
        context.update(_finishing_context(generation, request.user))
    return context


def _detail_page(request, pk):
    """The whole generation page. What it shows of the generation's files, its input and
    its versions is cached under the data version (the ``{% cache %}`` fragments of
    generations/detail.html), so the lazy values below are read only on a miss."""
    generation = _get_generation_for_user(request, pk)
    context = _card_context(request, generation)
    context.update(
        duplicate_form=ActionForm(initial={"form_token": uuid.uuid4()}),
        duplicate_cost=SimpleLazyObject(
            lambda: (
                pricing.estimate(
                    generation.provider, generation.mode, generation.options, generation.edition
                ).total
            )
        ),
        option_rows=SimpleLazyObject(lambda: _option_rows(generation)),
        next_versions=SimpleLazyObject(
            lambda: list(generation.next_versions.values_list("pk", flat=True))
        ),
    )
    return render(request, "generations/detail.html", context)


def _option_rows(generation):
    """(label, value in words) of the options the generation was made with."""
    spec = generation.provider_spec
    rows = []
    for name, value in (generation.options or {}).items():
        try:
            label = spec.option(name).label
        except KeyError:
            label = name
        if isinstance(value, bool):
            value = "Yes" if value else "No"
        rows.append((label, value))
    return rows


def _conversions_context(generation, user):
    rows = list(
        Conversion.objects.filter(
            generation=generation, kind=Conversion.Kind.CONVERT
        ).select_related("asset")
    )
    done = {c.output_format for c in rows}
    return {
        "generation": generation,
        "conversions": rows,
        "converting": any(c.state in IN_FLIGHT_STATES for c in rows),
        "convert_form": ConvertForm(),
        "convertible": [
            (fmt, label)
            for fmt, label in [
                *conversions.LOCAL_FORMATS.items(),
                *conversions.UPSTREAM_FORMATS.items(),
            ]
            if fmt not in done
        ],
        "can_act": can_act(user, generation),
    }


def _finishing_context(generation, user, bound=None):
    """The "Finish this model" section: its jobs (live) and a form per step, with its cost
    and, where a step cannot run on this model, why not in words."""
    jobs = list(
        Conversion.objects.filter(generation=generation)
        .exclude(kind=Conversion.Kind.CONVERT)
        .select_related("result")
    )
    steps = []
    # Only those who may start a step see the forms.
    allowed = can_act(user, generation)
    for kind, form_class in FINISH_FORMS.items() if allowed else ():
        form = (bound or {}).get(kind) or form_class(prefix=kind)
        steps.append(
            {
                "kind": kind,
                "label": finishing.STEPS[kind].label,
                "form": form,
                "cost": form.cost(),
                "impossible": finishing.impossible(generation, kind, read_files=False),
            }
        )
    return {
        "generation": generation,
        "finish_jobs": jobs,
        "finishing": any(j.state in IN_FLIGHT_STATES for j in jobs),
        "finish_steps": steps,
        "can_act": allowed,
    }


@login_required
@require_POST
def generation_finish(request, pk, kind):
    """Start a finishing step (finishing.request): held, queued, and shown in the section."""
    generation = _get_generation_for_user(request, pk, act=True)
    form_class = FINISH_FORMS.get(kind)
    if form_class is None:
        raise Http404("No such finishing step.")
    form = form_class(request.POST, prefix=kind)
    bound = {}
    if form.is_valid():
        try:
            job = finishing.request(
                generation, kind, form.options(), request.user, form.cleaned_data["form_token"]
            )
        except finishing.FinishingRefused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"{finishing.STEPS[kind].label} asked for: {job.credit_estimate} credits held.",
            )
    else:
        bound[kind] = form
        problems = "; ".join(
            f"{form.fields[name].label or name.replace('_', ' ').capitalize() if name in form.fields else 'Form'}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        )
        messages.error(request, f"{finishing.STEPS[kind].label} was not asked for. {problems}")
    if request.htmx:
        context = _finishing_context(generation, request.user, bound)
        context["messages_inline"] = True
        return render(request, "generations/detail.html#finishing", context)
    return redirect(reverse("generations:detail", args=[generation.pk]) + "#finishing")


def _when_words(when):
    """ "any moment now" or "in about 3 minutes" (None: no estimate). timeuntil says
    "0\xa0minutes" (a no-break space) under a minute: "soon" is decided here instead."""
    if when is None:
        return None
    if when - timezone.now() <= timedelta(minutes=1):
        return "any moment now"
    return f"in about {timeuntil(when)}"


@login_required
@require_POST
def generation_convert(request, pk):
    """Convert the model: local formats at once, FBX/USDZ queued for the convert tool."""
    generation = _get_generation_for_user(request, pk, act=True)
    form = ConvertForm(request.POST)
    if form.is_valid():
        try:
            conversion = conversions.request(
                generation, form.cleaned_data["output_format"], request.user
            )
        except conversions.ConversionRefused as exc:
            messages.error(request, exc.message)
        else:
            if conversion.state == State.FAILED:
                messages.error(request, conversion.failure_reason)
    else:
        messages.error(request, "Choose one of the listed formats.")
    if request.htmx:
        context = _conversions_context(generation, request.user)
        context["messages_inline"] = True
        return render(request, "generations/detail.html#conversions", context)
    return redirect("generations:detail", pk=generation.pk)


@login_required
@require_POST
def generation_cancel(request, pk):
    """Cancel one not yet sent upstream: it leaves the queue and its hold is released. Once
    sent, the upstream has no cancel, and the message says so."""
    generation = _get_generation_for_user(request, pk, act=True)
    try:
        generation.cancel(by=request.user)
    except CancelRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Canceled before it was sent; its held credits are released.")
    return redirect("generations:detail", pk=generation.pk)


@login_required
@permission_required("generations.add_generation", raise_exception=True)
@require_POST
def generation_duplicate(request, pk):
    """The same request again, as a new generation (double-click safe by its form token)."""
    generation = _get_generation_for_user(request, pk, act=True)
    form = ActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The form expired; please try again.")
        return redirect("generations:detail", pk=generation.pk)
    try:
        copy = Generation.objects.create_queued(
            owner=request.user,
            provider=generation.provider,
            mode=generation.mode,
            edition=generation.edition,
            prompt=generation.prompt,
            options=generation.options,
            form_token=form.cleaned_data["form_token"],
            images=_stored_images(generation),
        )
    except BudgetExceeded as exc:
        messages.error(request, exc.message)
        return redirect("generations:detail", pk=generation.pk)
    if copy is None:
        raise Http404("This form was already used by someone else.")
    return redirect("generations:detail", pk=copy.pk)


def _stored_images(generation):
    """The generation's reference images as ``(slot, CleanImage)``; already cleaned once."""
    from .images import CleanImage

    result = []
    for image in generation.images.all():
        with image.file.open("rb") as fh:
            data = fh.read()
        mime = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[image.format]
        result.append((image.slot, CleanImage(data, image.format, image.width, image.height, mime)))
    return result


@login_required
@require_POST
def generation_poster(request, pk):
    """Keep a poster captured from the viewer, when the upstream sent no thumbnail."""
    generation = _get_generation_for_user(request, pk, act=True)
    if generation.state != State.FINISHED:
        raise PermissionDenied("Only a finished generation has a poster.")
    form = PosterForm(request.POST, request.FILES)
    if not form.is_valid():
        return HttpResponseBadRequest(" ".join(form.errors.get("poster", ["Invalid poster."])))
    if any(a.role == Asset.Role.THUMBNAIL for a in generation.assets.all()):
        return HttpResponse(status=204)
    image = form.cleaned_data["poster"]
    try:
        with transaction.atomic():
            Asset.objects.create(
                generation=generation,
                role=Asset.Role.THUMBNAIL,
                file=ContentFile(image.data, name=f"{uuid.uuid4().hex}.{image.format}"),
                format=image.format,
                # One poster per generation: the unique name makes a second capture a no-op.
                original_name="poster:captured",
                bytes=len(image.data),
                sha256=hashlib.sha256(image.data).hexdigest(),
            )
    except IntegrityError:
        pass
    return HttpResponse(status=204)


# --- history -------------------------------------------------------------------------------


def _thumbnails():
    return Prefetch(
        "assets",
        queryset=Asset.objects.filter(role=Asset.Role.THUMBNAIL).order_by("id"),
        to_attr="thumbnails",
    )


@login_required
@require_GET
def generation_list(request):
    """The team's generations, filtered, sorted and paged by a GET form (shareable URLs).

    The form and the results are cached fragments (templates/generations/list.html) under
    the data version, the asker's scope and the query; the page of results is read only
    on a miss. htmx swaps only the results.
    """
    form = HistoryFilterForm(request.GET)

    def results():
        generations = form.filter(
            Generation.objects.visible_to(request.user)
            .select_related("owner")
            .prefetch_related(_thumbnails(), "images")
        )
        return Paginator(generations, PAGE_SIZE).get_page(form.page_number())

    context = {
        "form": form,
        "page": SimpleLazyObject(results),
        "scope": visibility_scope(request.user),
        "query": dataversion.query_key(request, form.fields),
    }
    template = "generations/list.html#results" if request.htmx else "generations/list.html"
    return render(request, template, context)


# --- files ---------------------------------------------------------------------------------


def stream_download(file, filename, fmt, inline):
    """The response streaming a stored file: every download of the site goes through here.

    The web process streams, in 64 kB blocks, from local disk or straight from one
    S3 GET: never a whole file in memory. We stream rather than redirect to a signed
    URL so the bucket can sit on a private network the browsers cannot reach, and so
    no bearer URL (valid for anyone holding it) ever leaves the authorised view.
    """
    try:
        source, size = storage.open_stream(file)
    except FileNotFoundError:
        # The row says the file exists: something outside the dashboard removed it.
        logger.error("stored file missing: %s", storage.describe(file))
        raise Http404("The stored file is missing.") from None
    response = FileResponse(source, as_attachment=not inline, filename=filename)
    response.block_size = storage.CHUNK
    response["Content-Length"] = str(size)
    response["Content-Type"] = CONTENT_TYPES.get(fmt, "application/octet-stream")
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_GET
def asset_download(request, pk, asset_pk, inline=False):
    """Stream a stored file, authorised like the generation's page."""
    generation = _get_generation_for_user(request, pk)
    asset = get_object_or_404(Asset, pk=asset_pk, generation=generation)
    extension = {"jpeg": "jpg"}.get(asset.format, asset.format)
    role = asset.role
    conversion = Conversion.objects.filter(asset=asset).only("output_format").first()
    if conversion is not None:
        role = conversion.output_format
        if conversion.output_format == "obj":
            role = "obj"
    filename = f"generation-{generation.pk}-{role}-{asset.pk}.{extension}"
    return stream_download(asset.file, filename, asset.format, inline)


@login_required
@require_GET
def reference_image(request, pk, image_pk):
    """A reference image of a generation, shown inline, authorised like its page."""
    generation = _get_generation_for_user(request, pk)
    image = get_object_or_404(ReferenceImage, pk=image_pk, generation=generation)
    extension = {"jpeg": "jpg"}.get(image.format, image.format)
    filename = f"generation-{generation.pk}-{image.slot}.{extension}"
    response = stream_download(image.file, filename, image.format, inline=True)
    response["Cache-Control"] = "private, max-age=3600"
    return response
