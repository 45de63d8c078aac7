import difflib
from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, prefetch_related_objects
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generations import posters
from generations.models import Asset, Generation, visibility_scope
from generations.views import stream_download
from studio_dashboard import dataversion

from . import forms
from .models import (
    AuditLog,
    Comment,
    Decision,
    Notification,
    NotificationKind,
    NotificationPreference,
    Review,
    ReviewConflict,
    ReviewStatus,
    Tag,
    awaiting_review,
    chain_root_id,
    chain_versions,
)

reviewer_required = permission_required("generations.review_generation", raise_exception=True)


def _get_generation_for_user(request, pk):
    """The generation if this user may see it, else 404 (never reveal that it exists)."""
    queryset = Generation.objects.visible_to(request.user).select_related("owner")
    return get_object_or_404(queryset, pk=pk)


def _can_review(user):
    return user.has_perm("generations.review_generation")


def _can_approve(user, generation):
    return _can_review(user) and (
        generation.owner_id != user.pk or settings.REVIEW_ALLOW_SELF_APPROVAL
    )


def _can_tag(user, generation):
    return generation.owner_id == user.pk or _can_review(user)


def _with_nav(request, response):
    """Append the navigation counts as an out-of-band swap (they change with decisions)."""
    nav = render_to_string("reviews/_nav_count.html", {"oob": True}, request=request)
    response.content += nav.encode()
    return response


def _preview(generation):
    """(thumbnail asset, viewer asset) from prefetched assets."""
    assets = {a.role: a for a in generation.assets.all()}
    return assets.get(Asset.Role.THUMBNAIL), generation.glb_asset


def _turntable(generation):
    """The rendered turntable the queue and the library play, from prefetched assets."""
    return posters.turntable(generation.assets.all())


# --- reviewer queue ------------------------------------------------------------------
@login_required
@reviewer_required
@require_GET
def queue(request):
    return _render_queue(request, forms.QueueFilterForm(request.GET))


def _render_queue(request, form):
    awaiting = form.filter(awaiting_review()).select_related("owner").prefetch_related("assets")
    page = Paginator(awaiting, 25).get_page(form.page_number())
    for generation in page.object_list:
        generation.thumbnail, generation.model = _preview(generation)
        generation.turntable = _turntable(generation)
        generation.can_approve = _can_approve(request.user, generation)
    context = {"form": form, "page": page, "decision_form": forms.DecisionForm()}
    template = "reviews/queue.html"
    if request.htmx:
        template += "#queue"
    return render(request, template, context)


@login_required
@reviewer_required
@require_POST
def batch_approve(request):
    form = forms.BatchApproveForm(
        request.POST,
        awaiting_ids=awaiting_review().values_list("pk", flat=True),
    )
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return _after_batch(request)
    approved, skipped = 0, []
    chosen = Generation.objects.filter(pk__in=form.cleaned_data["generations"]).order_by("pk")
    for generation in chosen:
        try:
            Review.objects.record_decision(
                generation,
                request.user,
                Decision.APPROVED,
                form.cleaned_data["comment"],
                based_on=0,
            )
            approved += 1
        except PermissionDenied:
            skipped.append(f"#{generation.pk} (your own)")
        except (ReviewConflict, ValueError):
            skipped.append(f"#{generation.pk} (decided meanwhile)")
    text = f"Approved {approved} generation{'s' if approved != 1 else ''}."
    if skipped:
        text += " Skipped " + ", ".join(skipped) + "."
    messages.success(request, text)
    return _after_batch(request)


def _after_batch(request):
    if request.htmx:
        return _with_nav(request, _render_queue(request, forms.QueueFilterForm({})))
    return redirect("reviews:queue")


# --- one generation: panel, decisions, comments, tags ------------------------------
def _panel_context(request, generation, decision_form=None, comment_form=None, tag_form=None):
    status = ReviewStatus.objects.filter(generation=generation).first()
    root_id = status.root_id if status else chain_root_id(generation)
    versions = chain_versions(root_id)
    user = request.user
    return {
        "generation": generation,
        "status": status,
        "awaiting": status is None and generation.state == "finished",
        "history": list(generation.reviews.select_related("reviewer")),
        "comments": list(generation.comments.select_related("author")),
        "tags": list(Tag.objects.filter(root_id=root_id)),
        "versions": versions,
        "version_number": next((i for i, v in enumerate(versions, 1) if v.pk == generation.pk), 1),
        "retakes": len(versions) - 1,
        "can_review": _can_review(user) and generation.state == "finished",
        "can_approve": _can_approve(user, generation),
        "can_tag": _can_tag(user, generation),
        "decision_form": decision_form
        or forms.DecisionForm(initial={"based_on": status.review_id if status else 0}),
        "comment_form": comment_form or forms.CommentForm(),
        "tag_form": tag_form or forms.TagForm(),
    }


@login_required
@require_GET
def generation_review(request, pk):
    generation = _get_generation_for_user(request, pk)
    context = _panel_context(request, generation)
    template = "reviews/generation.html"
    if request.htmx:
        template += "#review-panel"
    return render(request, template, context)


@login_required
@reviewer_required
@require_POST
def decide(request, pk):
    generation = _get_generation_for_user(request, pk)
    form = forms.DecisionForm(request.POST)
    from_queue = form.data.get("origin") == "queue"
    if form.is_valid():
        try:
            review = Review.objects.record_decision(
                generation,
                request.user,
                form.cleaned_data["decision"],
                form.cleaned_data["comment"],
                based_on=form.cleaned_data["based_on"],
            )
        except (ValueError, ReviewConflict) as exc:
            form.add_error(None, getattr(exc, "message", str(exc)))
        else:
            text = f"{review.get_decision_display()}: generation #{generation.pk}."
            if request.htmx and from_queue:
                response = render(
                    request,
                    "reviews/queue.html#queue-item-done",
                    {
                        "generation": generation,
                        "review": review,
                        "remaining": awaiting_review().count(),
                    },
                )
                return _with_nav(request, response)
            if request.htmx:
                response = render(
                    request,
                    "reviews/generation.html#review-panel",
                    _panel_context(request, generation),
                )
                return _with_nav(request, response)
            messages.success(request, text)
            if from_queue:
                return redirect("reviews:queue")
            return redirect("reviews:generation", pk=generation.pk)
    # Invalid: show the form again with its errors.
    if request.htmx and from_queue:
        generation.thumbnail, generation.model = _preview(generation)
        generation.turntable = _turntable(generation)
        generation.can_approve = _can_approve(request.user, generation)
        return render(
            request,
            "reviews/queue.html#queue-item",
            {"generation": generation, "decision_form": form, "item_form": form},
        )
    context = _panel_context(request, generation, decision_form=form)
    if request.htmx:
        return render(request, "reviews/generation.html#review-panel", context)
    return render(request, "reviews/generation.html", context, status=400)


@login_required
@require_POST
def comment(request, pk):
    generation = _get_generation_for_user(request, pk)
    form = forms.CommentForm(request.POST)
    if form.is_valid():
        Comment.objects.create(
            generation=generation, author=request.user, body=form.cleaned_data["body"]
        )
        if not request.htmx:
            return redirect(reverse("reviews:generation", args=[generation.pk]) + "#comments")
        form = forms.CommentForm()
    context = _panel_context(request, generation, comment_form=form)
    if request.htmx:
        return render(request, "reviews/generation.html#comments", context)
    return render(request, "reviews/generation.html", context, status=400)


@login_required
@require_POST
def tag_add(request, pk):
    generation = _get_generation_for_user(request, pk)
    if not _can_tag(request.user, generation):
        raise PermissionDenied("Only the owner and reviewers can tag a generation.")
    form = forms.TagForm(request.POST)
    if form.is_valid():
        Tag.objects.get_or_create(
            root_id=chain_root_id(generation),
            name=form.cleaned_data["name"],
            defaults={"added_by": request.user},
        )
        if not request.htmx:
            return redirect(reverse("reviews:generation", args=[generation.pk]) + "#tags")
        form = forms.TagForm()
    context = _panel_context(request, generation, tag_form=form)
    if request.htmx:
        return render(request, "reviews/generation.html#tags", context)
    return render(request, "reviews/generation.html", context, status=400)


@login_required
@require_POST
def tag_remove(request, pk, tag_pk):
    generation = _get_generation_for_user(request, pk)
    if not _can_tag(request.user, generation):
        raise PermissionDenied("Only the owner and reviewers can tag a generation.")
    tag = get_object_or_404(Tag, pk=tag_pk, root_id=chain_root_id(generation))
    tag.delete()
    if not request.htmx:
        return redirect(reverse("reviews:generation", args=[generation.pk]) + "#tags")
    return render(request, "reviews/generation.html#tags", _panel_context(request, generation))


# --- versions side by side -----------------------------------------------------------
def _word_diff(old, new):
    """Both texts as [(word, changed)], words that differ marked."""
    a, b = old.split(), new.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        left.extend((word, op != "equal") for word in a[i1:i2])
        right.extend((word, op != "equal") for word in b[j1:j2])
    return left, right


def _differences(left, right):
    rows = [
        ("Provider", left.provider_label, right.provider_label),
        ("Edition", left.edition or "—", right.edition or "—"),
        ("Mode", left.get_mode_display(), right.get_mode_display()),
    ]
    for key in sorted(set(left.options) | set(right.options)):
        rows.append(
            (key.replace("_", " "), left.options.get(key, "—"), right.options.get(key, "—"))
        )
    return [{"label": label, "left": a, "right": b, "changed": a != b} for label, a, b in rows]


@login_required
@require_GET
def compare(request, pk):
    generation = _get_generation_for_user(request, pk)
    form = forms.CompareForm(request.GET)
    other_pk = form.cleaned_data["other"] if form.is_valid() else None
    other_pk = other_pk or generation.previous_version_id
    other = _get_generation_for_user(request, other_pk) if other_pk else None
    context = {"generation": generation, "other": other, "form": form}
    if other is not None:
        # The older version on the left.
        left, right = sorted([other, generation], key=lambda g: (g.created_at, g.pk))
        prefetch_related_objects([left, right], "assets")
        left_words, right_words = _word_diff(left.prompt, right.prompt)
        context.update(
            left=left,
            right=right,
            left_model=left.glb_asset,
            right_model=right.glb_asset,
            left_words=left_words,
            right_words=right_words,
            prompt_changed=left.prompt != right.prompt,
            differences=_differences(left, right),
        )
    template = "reviews/compare.html"
    if request.htmx:
        template += "#compare"
    return render(request, template, context)


# --- notifications -------------------------------------------------------------------------
@login_required
@require_GET
def notification_list(request):
    notifications = Notification.objects.filter(recipient=request.user, in_app=True)
    form = forms.PageForm(request.GET)
    page = Paginator(notifications, 30).get_page(form.page_number())
    template = "reviews/notifications.html"
    if request.htmx:
        template += "#notifications"
    return render(request, template, {"page": page})


@login_required
@require_POST
def notifications_read(request):
    Notification.objects.unread_for(request.user).update(read_at=timezone.now())
    if request.htmx:
        page = Paginator(
            Notification.objects.filter(recipient=request.user, in_app=True), 30
        ).get_page(1)
        response = render(request, "reviews/notifications.html#notifications", {"page": page})
        return _with_nav(request, response)
    return redirect("reviews:notifications")


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    current = {
        row.kind: (row.in_app, row.email)
        for row in NotificationPreference.objects.filter(user=request.user)
    }
    # Not `request.POST or None`: with every box unchecked the POST is empty.
    data = request.POST if request.method == "POST" else None
    form = forms.PreferencesForm(data, current=current)
    saved = False
    if request.method == "POST" and form.is_valid():
        for kind in NotificationKind:
            NotificationPreference.objects.update_or_create(
                user=request.user,
                kind=kind,
                defaults={
                    "in_app": form.cleaned_data[f"{kind.value}_in_app"],
                    "email": form.cleaned_data[f"{kind.value}_email"],
                },
            )
        saved = True
        if not request.htmx:
            messages.success(request, "Notification preferences saved.")
            return redirect("reviews:preferences")
    template = "reviews/preferences.html"
    if request.htmx:
        template += "#preferences"
    return render(request, template, {"form": form, "saved": saved})


# --- audit ------------------------------------------------------------------------------------
@login_required
@permission_required("reviews.view_auditlog", raise_exception=True)
@require_GET
def audit_log(request):
    form = forms.AuditFilterForm(request.GET)
    entries = AuditLog.objects.all()
    if form.is_valid() and form.cleaned_data["action"]:
        entries = entries.filter(action__startswith=form.cleaned_data["action"])
    page = Paginator(entries, 50).get_page(form.page_number())
    template = "reviews/audit.html"
    if request.htmx:
        template += "#audit"
    return render(request, template, {"form": form, "page": page})


# --- library ------------------------------------------------------------------------------------
@login_required
@permission_required("generations.view_generation", raise_exception=True)
@require_GET
def library(request):
    """Approved models, filtered and paged; the form and the results are cached fragments
    under the data version (templates/library/index.html), read only on a miss; htmx
    swaps only the results."""
    form = forms.LibraryFilterForm(request.GET)
    context = {
        "form": form,
        "results": SimpleLazyObject(lambda: _library_results(request, form)),
        "scope": visibility_scope(request.user),
        "query": dataversion.query_key(request, form.fields),
    }
    template = "library/index.html"
    if request.htmx:
        template += "#library-results"
    return render(request, template, context)


def _library_results(request, form):
    entries = (
        ReviewStatus.objects.library()
        .select_related("generation__owner", "review__reviewer")
        .order_by("-decided_at", "-generation_id")
    )
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            tagged = Tag.objects.filter(root_id=OuterRef("root_id"), name__icontains=data["q"])
            entries = entries.filter(Q(generation__prompt__icontains=data["q"]) | Exists(tagged))
        if data["tag"]:
            entries = entries.filter(
                Exists(Tag.objects.filter(root_id=OuterRef("root_id"), name=data["tag"].lower()))
            )
        if data["provider"]:
            entries = entries.filter(generation__provider=data["provider"])
        if data["approved_from"]:
            entries = entries.filter(decided_at__date__gte=data["approved_from"])
        if data["approved_to"]:
            entries = entries.filter(decided_at__date__lte=data["approved_to"])
    page = Paginator(entries, 24).get_page(form.page_number())
    rows = list(page.object_list)
    prefetch_related_objects([row.generation for row in rows], "assets")
    tags = defaultdict(list)
    for tag in Tag.objects.filter(root_id__in={row.root_id for row in rows}):
        tags[tag.root_id].append(tag)
    # Who may open a generation is the generations app's rule; one query for the page.
    visible = set(
        Generation.objects.visible_to(request.user)
        .filter(pk__in=[row.generation_id for row in rows])
        .values_list("pk", flat=True)
    )
    for row in rows:
        row.thumbnail, row.model = _preview(row.generation)
        row.turntable = _turntable(row.generation)
        row.tags = tags[row.root_id]
        row.assets = list(row.generation.assets.all())
        # Those who may see the generation download through its own URLs; others
        # through the library's, which authorise by approval instead.
        row.direct = row.generation_id in visible
    return {"page": page, "rows": rows}


@login_required
@permission_required("generations.view_generation", raise_exception=True)
@require_GET
def library_asset(request, pk, asset_pk, inline=False):
    """Download a file of a generation that is in the library (any team member may)."""
    entry = get_object_or_404(ReviewStatus.objects.library(), generation_id=pk)
    asset = get_object_or_404(Asset, pk=asset_pk, generation_id=entry.generation_id)
    extension = asset.format if asset.format != "jpeg" else "jpg"
    filename = f"generation-{pk}-{asset.role}-{asset.pk}.{extension}"
    # The generation page's own download response: streamed in blocks from disk or one S3
    # GET, with its length, type and nosniff, so both doors serve a file the same way.
    return stream_download(asset.file, filename, asset.format, inline)
