"""The members' workspace: home, new generation, generation page, history, downloads.

Every view that takes an id opens with ``_get_generation_for_user``: members
see the team's generations; acting on one (regenerate, duplicate, convert,
capture a poster) is for its owner or an admin. One view serves a page and
its fragments: with ``HX-Request`` only the swapped partial is rendered.
"""

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache as memoize
from functools import lru_cache
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.paginator import Paginator
from django.db import IntegrityError, connection, transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import get_language
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling, push_url

from studio_dashboard import auth, liverows, pagecache

from . import conversions, planner, pricing, storage
from .forms import (
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
    Conversion,
    Generation,
    LedgerEntry,
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
}


logger = logging.getLogger(__name__)


def can_act(user, generation):
    """Only the owner, or an admin (the Admins role resolves and acts on anyone's), may act."""
    return generation.owner_id == user.pk or user.has_perm("generations.resolve_generation")


def _get_generation_for_user(request, pk, act=False, assets=True):
    """The generation if this user may see it, else 404 (never reveal that it exists).

    With ``act``, also PermissionDenied unless the user may act on it. Without
    ``assets`` neither its files nor its owner are read (the polled card of one
    still in flight shows neither).
    """
    if assets:
        queryset = Generation.objects.visible_to(request.user)
        queryset = queryset.select_related("owner").prefetch_related("assets")
        generation = get_object_or_404(queryset, pk=pk)
    else:
        generation, _ = _visible_one_with(request, pk)
    if act and not can_act(request.user, generation):
        raise PermissionDenied("Only the owner or an admin can do this.")
    return generation


def _visible_one_with(request, pk, also=""):
    """``Generation.objects.visible_one_with`` for the signed-in user, or 404; from the row
    the view's rider read with the user when it did (``_detail_rider``)."""
    row = auth.ridden(request)
    if row is auth.NOT_READ:
        generation, values = Generation.objects.visible_one_with(request.user, pk, also)
    else:
        generation, values = Generation.objects.visible_from_row(request.user, row, also)
    if generation is None:
        raise Http404("No generation matches the given query.")
    return generation, values


def _remaining_budget(user):
    # Budgets are another engineer's work; show the figure once it exists.
    remaining_budget = getattr(pricing, "remaining_budget", None)
    return None if remaining_budget is None else remaining_budget(user)


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


def _create_generation(user, form):
    """Save the generation, or put the reason on the form (nothing typed is lost)."""
    try:
        generation = Generation.objects.create_queued(
            owner=user,
            provider=form.spec.key,
            mode=form.mode,
            edition=form.edition,
            prompt=form.cleaned_data.get("prompt", ""),
            options=form.options(),
            form_token=form.cleaned_data["form_token"],
            images=form.clean_images,
        )
    except BudgetExceeded as exc:
        form.add_error(None, exc.message)
        return None
    if generation is None:
        raise Http404("This form was already used by someone else.")
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


def _detail_rider(request, pk):
    """The page and the polled status card read their generation in the signed-in user's
    query (with the page's figures on a full page): one query in all on a cache hit."""
    if not request.htmx:
        statement = Generation.objects.one_sql(pk, _final_page_also())
        # The page reads its generation and the tables _final_page_sql names: the answer
        # is kept until any of them changes.
        return statement and (*statement, _final_page_tables())
    if request.htmx.target != "conversions":
        statement = Generation.objects.one_sql(pk)
        # The card reads the generation's row alone: the answer is kept until it changes.
        return statement and (*statement, [liverows.tag(Generation, statement[1][0])])
    return None


@auth.read_with_user(_detail_rider)
@login_required
@require_GET
def generation_detail(request, pk):
    """The page, the polled status card, or the polled conversions (by ``HX-Target``).

    The status card is polled every 2 s while the generation is in flight: that
    path reads the session, the user with their permissions and the generation in
    one query (``_detail_rider``, studio_dashboard/auth.py), whose answer is kept until
    one of those rows changes (studio_dashboard/liverows.py; the page's until a row of
    any table it reads does), and the files only once it has finished. The card of one
    in flight is rendered once for everything it shows (``_in_flight_card``).
    """
    if not request.htmx:
        return _detail_page(request, pk)
    if request.htmx.target == "conversions":
        generation = _get_generation_for_user(request, pk)
        context = _conversions_context(generation, request.user)
        response = render(request, "generations/detail.html#conversions", context)
        if not context["converting"]:
            return HttpResponseStopPolling(response.content)
        return response
    generation = _get_generation_for_user(request, pk, assets=False)
    if generation.state == State.FINISHED:
        prefetch_related_objects([generation], "assets")
    return _card_or_page(request, generation, page=False)


def _card_or_page(request, generation, page):
    """The polled status card (a response), or with ``page`` the whole page's HTML."""
    # Files exist once the generation has finished; the polled card of one in
    # flight does not look for them.
    has_files = page or generation.state == State.FINISHED
    context = {
        "generation": generation,
        "eta_words": _when_words(
            None if generation.is_final else planner.estimated_finish(generation)
        ),
        "queue_position": _queue_position(generation),
        "start_words": _when_words(planner.estimated_start(generation)),
        "can_act": can_act(request.user, generation),
    }
    if has_files:
        assets = list(generation.assets.all())
        context.update(
            model=generation.glb_asset,
            assets=[a for a in assets if a.role != Asset.Role.CONVERTED],
            thumbnail=next((a for a in assets if a.role == Asset.Role.THUMBNAIL), None),
        )
    if generation.state == State.FINISHED:
        context.update(_conversions_context(generation, request.user))
    if not page:
        if has_files:
            content = render(request, "generations/detail.html#status-card", context).content
        else:
            content = _in_flight_card(context)
        if generation.is_final or generation.state == State.NEEDS_ATTENTION:
            return HttpResponseStopPolling(content)
        return HttpResponse(content)
    context.update(
        duplicate_form=ActionForm(initial={"form_token": pagecache.stand_in("form-token")}),
        duplicate_cost=pricing.estimate(
            generation.provider, generation.mode, generation.options, generation.edition
        ).total,
        option_rows=_option_rows(generation),
        previous=generation.previous_version_id,
        next_versions=list(generation.next_versions.values_list("pk", flat=True)),
    )
    return render_to_string("generations/detail.html", context, request)


def _detail_page(request, pk):
    """The whole generation page; a final generation's page comes from the cache while
    nothing it shows has changed (its row, files, conversions, later versions, prices).

    The duplicate form's one-time token is put in per response, so two duplicates
    made from one cached page are two generations.
    """
    generation, figures = _visible_one_with(request, pk, _final_page_also())
    version = _final_page_version(generation, figures)
    parts = ("generations/detail.html", generation.pk, version)
    if version is None:
        parts = None  # still changing: rendered every time

    def build():
        # The row the key was made from, with what the page shows of it besides.
        prefetch_related_objects([generation], "assets", "owner")
        return _card_or_page(request, generation, page=True)

    fresh = {pagecache.stand_in("form-token"): lambda: str(uuid.uuid4())}
    return pagecache.whole(request, parts, build, fresh)


def _final_page_also():
    """What the page reads with its generation to know its version (PostgreSQL only)."""
    return _final_page_sql() if connection.vendor == "postgresql" else ""


def _final_page_version(generation, figures):
    """What a final generation's page shows besides its row (``figures``, read with the row
    by ``_final_page_sql``); None while the generation is still changing, or off PostgreSQL.
    """
    if not generation.is_final or not figures:
        return None
    return (_row_values(generation), figures)


def _row_values(generation):
    """The values of every column of the generation's row, for a cache key."""
    return tuple(getattr(generation, f.attname) for f in Generation._meta.concrete_fields)


@memoize
def _final_page_tables():
    """The tables ``_final_page_sql`` and the generation's row read (whole-table tags for
    ``liverows``: a change to any row of them drops the page's kept answer)."""
    from credits.models import PriceTable

    models = (Generation, Asset, Conversion, PriceTable, get_user_model())
    return [model._meta.db_table for model in models]


@memoize
def _final_page_sql():
    """Select-list expressions, correlated with the generation's row: its files, its
    conversions (state, progress, result), the price table behind the duplicate's cost,
    its later versions and its owner's name."""
    from credits.models import PriceTable

    User = get_user_model()
    row = f'"{Generation._meta.db_table}"'
    return (
        f'(SELECT COUNT(*) || \':\' || COALESCE(MAX(a."id"), 0) FROM "{Asset._meta.db_table}" a '
        f'WHERE a."generation_id" = {row}."id"), '
        '(SELECT md5(string_agg(concat_ws(\'|\', c."id", c."state", c."progress", '
        'c."via", c."asset_id", c."failure_reason"), \',\' ORDER BY c."id")) '
        f'FROM "{Conversion._meta.db_table}" c WHERE c."generation_id" = {row}."id"), '
        f'(SELECT MAX(t."version") FROM "{PriceTable._meta.db_table}" t), '
        f'(SELECT array_agg(n."id" ORDER BY n."id") FROM {row} n '
        f'WHERE n."previous_version_id" = {row}."id"), '
        f'(SELECT u."{User.USERNAME_FIELD}" FROM "{User._meta.db_table}" u '
        f'WHERE u."id" = {row}."owner_id")'
    )


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
    rows = list(Conversion.objects.filter(generation=generation).select_related("asset"))
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


def _when_words(when):
    """ "any moment now" or "in about 3 minutes" (None: no estimate). timeuntil says
    "0\xa0minutes" (a no-break space) under a minute: "soon" is decided here instead."""
    if when is None:
        return None
    left = when - timezone.now()
    if left <= timedelta(minutes=1):
        return "any moment now"
    if left >= timedelta(weeks=4):
        return f"in about {timeuntil(when)}"
    return _in_about(left // timedelta(minutes=1), get_language())


# Under four weeks timeuntil's words count whole weeks, days, hours and minutes of the wait
# and nothing of the calendar: the same for every wait of as many whole minutes. Every
# polled card asks twice, and the words were a tenth of its cost.
@lru_cache(maxsize=4096)
def _in_about(minutes, _language):
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return f"in about {timeuntil(start + timedelta(minutes=minutes), start)}"


# The status card of a generation in flight, by everything it shows: it is polled every
# 2 s and changes only when its row does (the worker polls upstream at most a few times a
# minute) or an estimate's words do.
_cards = pagecache.Recent(size=1000, ttl=60.0)


def forget_cards():
    """Drop the cards this process kept (for tests)."""
    _cards.clear()


def _in_flight_card(context):
    """The card's HTML for ``context``: the generation and values of plain types, no files,
    nothing of the request (the card of one in flight shows neither)."""
    row = _row_values(context["generation"])
    key = repr((row, sorted((k, v) for k, v in context.items() if k != "generation")))
    content = _cards.get(key)
    if content is None:
        content = render_to_string("generations/detail.html#status-card", context).encode()
        _cards.set(key, content)
    return content


def _queue_position(generation):
    if generation.state != State.QUEUED:
        return None
    return (
        Generation.objects.filter(state=State.QUEUED, created_at__lt=generation.created_at).count()
        + 1
    )


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

    The body (form, count, cards) is cached while the generations are unchanged
    (see studio_dashboard/pagecache.py); htmx swaps only the results.
    """

    def context():
        form = HistoryFilterForm(request.GET)
        generations = form.filter(
            Generation.objects.visible_to(request.user)
            .select_related("owner")
            .prefetch_related(_thumbnails(), "images")
        )
        page = Paginator(generations, PAGE_SIZE).get_page(form.page_number())
        return {"form": form, "page": page}

    return pagecache.page(
        request,
        "generations/list.html",
        (
            # review_state joins the form's fields when the reviews app is installed.
            pagecache.query(request, [*HistoryFilterForm.base_fields, "review_state"]),
            visibility_scope(request.user),
            request.user.has_perm("generations.add_generation"),
        ),
        context,
        htmx_partial="results",
    )


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
