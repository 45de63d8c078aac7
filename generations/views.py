import uuid

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from . import planner
from .forms import CostForm, RapidTextForm
from .models import Asset, Generation, State


def _get_generation_for_user(request, pk):
    """The generation if this user may see it, else 404 (never reveal that it exists)."""
    queryset = (
        Generation.objects.visible_to(request.user)
        .select_related("owner")
        .prefetch_related("assets")
    )
    return get_object_or_404(queryset, pk=pk)


@login_required
@require_GET
def generation_list(request):
    generations = (
        Generation.objects.visible_to(request.user)
        .select_related("owner")
        .prefetch_related("assets")
    )
    page = Paginator(generations, 25).get_page(request.GET.get("page"))
    return render(request, "generations/list.html", {"page": page})


@login_required
@permission_required("generations.add_generation", raise_exception=True)
def generation_new(request):
    if request.method == "POST":
        form = RapidTextForm(request.POST)
        if form.is_valid():
            generation = _create_generation(request.user, form)
            return redirect("generations:detail", pk=generation.pk)
    else:
        form = RapidTextForm(initial={"form_token": uuid.uuid4()})
    total, breakdown = form.provider.price("text", {"enable_pbr": form["enable_pbr"].value()})
    return render(
        request,
        "generations/new.html",
        {"form": form, "total": total, "breakdown": breakdown, "provider": form.provider},
    )


def _create_generation(user, form):
    generation = Generation.objects.create_queued(
        owner=user,
        provider=form.provider.key,
        mode="text",
        prompt=form.cleaned_data["prompt"],
        options=form.options(),
        form_token=form.cleaned_data["form_token"],
    )
    if generation is None:
        raise Http404("This form was already used by someone else.")
    return generation


@login_required
@require_GET
def generation_cost(request):
    form = CostForm(request.GET)
    total, breakdown = form.price()
    return render(request, "generations/new.html#cost", {"total": total, "breakdown": breakdown})


@login_required
@require_GET
def generation_detail(request, pk):
    generation = _get_generation_for_user(request, pk)
    context = {
        "generation": generation,
        "model": generation.glb_asset,
        "assets": list(generation.assets.all()),
        "eta": None if generation.is_final else planner.estimated_finish(generation),
        "queue_position": _queue_position(generation),
    }
    if request.htmx:
        response = render(request, "generations/detail.html#status-card", context)
        if generation.is_final or generation.state == State.NEEDS_ATTENTION:
            return HttpResponseStopPolling(response.content)
        return response
    return render(request, "generations/detail.html", context)


def _queue_position(generation):
    if generation.state != State.QUEUED:
        return None
    return (
        Generation.objects.filter(state=State.QUEUED, created_at__lt=generation.created_at).count()
        + 1
    )


@login_required
@require_GET
def asset_download(request, pk, asset_pk, inline=False):
    """Stream a stored file, authorised like the generation's page."""
    generation = _get_generation_for_user(request, pk)
    asset = get_object_or_404(Asset, pk=asset_pk, generation=generation)
    extension = asset.format if asset.format != "jpeg" else "jpg"
    filename = f"generation-{generation.pk}-{asset.role}-{asset.pk}.{extension}"
    response = FileResponse(asset.file.open("rb"), as_attachment=not inline, filename=filename)
    if asset.format == "glb":
        response["Content-Type"] = "model/gltf-binary"
    response["X-Content-Type-Options"] = "nosniff"
    return response
