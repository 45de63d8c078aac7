"""Batches: many generations at once, from a CSV (one row each) or many images (one each).

A member uploads; the rows are read into a draft batch and each is checked by the
new-generation form (generations.rows), with its cost. The draft's page shows every row
with its errors and cost, and the total against what is left of the member's budget;
a corrected upload replaces the rows. Submitting queues every row or none: one
transaction holds each row's estimate through ``create_queued`` (the budget rows stay
locked until it commits), so a refused budget or a bad row queues nothing. The
submitted batch's page follows the rows: counts by state, progress, estimated finish,
cancel the rest, and every finished model as one streamed ZIP with a manifest CSV.
"""

import csv
import io
import logging
import uuid
import zipfile
from collections import Counter

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from credits.budgets import remaining
from studio_dashboard import csvsafe

from . import catalogue, planner, pricing, rows, storage, turns
from .forms import DEFAULT_PROVIDER
from .models import (
    FINAL_STATES,
    POLLING_STATES,
    Batch,
    BatchImage,
    BatchItem,
    BudgetExceeded,
    CancelRefused,
    Generation,
    State,
)
from .rows import Invalid, bound_form

logger = logging.getLogger(__name__)

MAX_ROWS = 500
MAX_IMAGES = 100
ROW_FIELDS = ("prompt", "image", "provider", "mode", "edition")


class BatchRefused(Exception):
    """Why a batch was not taken; ``code``: "invalid", "budget_exceeded" or "submitted"."""

    def __init__(self, message, code="invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


# --- the upload ------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def _option_text(choices):
    return "\n".join(f"{k}={v}" for k, v in (choices.get("options") or {}).items())


def _option_lines(text):
    """{name: value} from "NAME=VALUE" lines; raises ValidationError naming a bad line."""
    options = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise forms.ValidationError(f"Line {number}: write NAME=VALUE.")
        options[name.strip()] = value.strip()
    return options


class UploadForm(forms.Form):
    sheet = forms.FileField(
        required=False,
        label="Spreadsheet (CSV)",
        help_text=(
            "One row per generation. Columns: prompt, image (a file name uploaded below), "
            "provider, mode, edition; any other column is an option of that name."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    images = MultipleFileField(
        required=False,
        label="Images",
        help_text=(
            f"The images the CSV names; or, without a CSV, up to {MAX_IMAGES} images, "
            "one generation each with the choices below. Images uploaded before are kept."
        ),
    )
    provider = forms.ChoiceField(
        choices=catalogue.choices,
        initial=DEFAULT_PROVIDER,
        help_text="For images, and for rows that name no provider.",
    )
    edition = forms.CharField(
        required=False, max_length=10, help_text="For providers with editions, e.g. 3.1."
    )
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "enable_pbr=true"}),
        help_text="NAME=VALUE, one a line: for every row that does not set the option itself.",
    )

    # Set by the page's script on every part of a split upload but the last.
    more = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_options(self):
        return _option_lines(self.cleaned_data.get("options"))

    def clean_sheet(self):
        sheet = self.cleaned_data.get("sheet")
        if not sheet:
            return None
        if sheet.size > 2 * 1024 * 1024:
            raise forms.ValidationError("The CSV is larger than 2 MB.")
        try:
            text = sheet.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The CSV must be UTF-8 text.") from None
        try:
            records = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as exc:
            raise forms.ValidationError(f"The CSV cannot be read: {exc}.") from None
        if not records:
            raise forms.ValidationError("The CSV has no rows under its header line.")
        if len(records) > MAX_ROWS:
            raise forms.ValidationError(f"At most {MAX_ROWS} rows in one batch.")
        return sheet.name, records

    def clean_images(self):
        images = self.cleaned_data.get("images") or []
        if len(images) > MAX_IMAGES:
            raise forms.ValidationError(f"At most {MAX_IMAGES} images in one batch.")
        return images

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("sheet") and not data.get("images"):
            raise forms.ValidationError("Choose a CSV, or images, or both.")
        return data

    def choices(self):
        data = self.cleaned_data
        return {
            "provider": data["provider"],
            "edition": data.get("edition") or "",
            "options": data["options"],
        }


def _rows(batch):
    """The rows of a draft: one per CSV record, or one per image without a CSV."""
    choices = batch.choices
    if batch.records:
        return [_row(number, record, choices) for number, record in enumerate(batch.records, 1)]
    names = batch.images.order_by("id").values_list("name", flat=True)
    return [
        {
            "row": n,
            "prompt": "",
            "image": name,
            "provider": choices["provider"],
            "mode": "image",
            "edition": choices["edition"],
            "options": choices["options"],
        }
        for n, name in enumerate(names, 1)
    ]


def _row(number, record, choices):
    record = {(k or "").strip().lower(): (v or "").strip() for k, v in record.items() if k}
    row = {"row": number, **{name: record.get(name, "") for name in ROW_FIELDS}}
    if not row["provider"]:
        row["provider"], row["edition"] = choices["provider"], row["edition"] or choices["edition"]
    options = dict(choices["options"])
    options.update({k: v for k, v in record.items() if k not in ROW_FIELDS and v != ""})
    row["options"] = options
    return row


# --- checking and queueing -------------------------------------------------------------------


def _form_for(batch, row, images):
    """The new-generation form for ``row``, valid, or ``Invalid``."""
    fields = {k: row[k] for k in ("provider", "mode", "edition", "prompt") if row[k]}
    uploads = {}
    if row["image"]:
        fields.setdefault("mode", "image")
        image = images.get(row["image"])
        if image is None:
            raise Invalid({"image": [f"No image named “{row['image']}” was uploaded."]})
        uploads["image"] = File(image.file.open("rb"), name=image.name)
    try:
        return bound_form(fields, row["options"], uploads, uuid.uuid5(batch.token, str(row["row"])))
    finally:
        for upload in uploads.values():
            upload.close()


def check(batch):
    """Check every row of a draft with the form; record each one's errors and cost."""
    images = {image.name: image for image in batch.images.all()}
    for row in batch.rows:
        try:
            form = _form_for(batch, row, images)
        except Invalid as exc:
            row["errors"] = {key: list(value) for key, value in exc.errors.items()}
            row["cost"] = None
            continue
        row["errors"] = {}
        row["cost"] = pricing.estimate(form.spec.key, form.mode, form.options(), form.edition).total
    Batch.objects.filter(pk=batch.pk).update(rows=batch.rows)


def add_upload(batch, form):
    """An upload into a draft: a CSV replaces its records, images join (or replace those of
    the same name), the choices are the form's; then every row is read and checked again.

    One request carries at most DATA_UPLOAD_MAX_NUMBER_FILES images (the page's script
    sends a larger choice in several), so a draft gathers its images over uploads.
    """
    data = form.cleaned_data
    with transaction.atomic():
        if data.get("sheet"):
            batch.name, batch.records = data["sheet"][0][:200], data["sheet"][1]
        batch.choices = form.choices()
        for upload in data["images"]:
            name = upload.name[:200]
            BatchImage.objects.filter(batch=batch, name=name).delete()
            stored = ContentFile(upload.read(), name=uuid.uuid4().hex)
            BatchImage.objects.create(batch=batch, name=name, file=stored)
        count = batch.images.count()
        if count > MAX_IMAGES:
            raise BatchRefused(f"At most {MAX_IMAGES} images in one batch; this one has {count}.")
        if not batch.records:
            batch.name = f"{count} image{'s' if count != 1 else ''}"
        batch.rows = _rows(batch)
        batch.save(update_fields=["name", "records", "choices", "rows"])
    if not data.get("more"):
        check(batch)


def totals(batch):
    bad = [row for row in batch.rows if row.get("errors")]
    return {
        "rows": len(batch.rows),
        "bad": len(bad),
        "cost": sum(row.get("cost") or 0 for row in batch.rows),
        "remaining": remaining(batch.owner),
    }


def submit(batch, user):
    """Queue every row of the draft, or none (``BatchRefused`` says why).

    One transaction: the draft is claimed (a conditional UPDATE, so a double click
    queues it once), every row is checked again and queued through ``create_queued``,
    whose holds accumulate under the budget lock; any refusal rolls all of it back.
    """
    images = {image.name: image for image in batch.images.all()}
    try:
        with transaction.atomic():
            claimed = Batch.objects.filter(pk=batch.pk, status=Batch.Status.DRAFT).update(
                status=Batch.Status.SUBMITTED, submitted_at=timezone.now()
            )
            if claimed != 1:
                raise BatchRefused("This batch was submitted already.", "submitted")
            batch.refresh_from_db(fields=["rows"])  # as claimed, not as the page read them
            if not batch.rows:
                raise BatchRefused("This batch has no rows.")
            for row in batch.rows:
                try:
                    form = _form_for(batch, row, images)
                except Invalid as exc:
                    field, problems = next(iter(exc.errors.items()))
                    raise BatchRefused(
                        f"Nothing was queued: row {row['row']} has errors ({field}: {problems[0]})."
                    ) from None
                generation = rows.queue(user, form, form.cleaned_data["form_token"])
                BatchItem.objects.create(batch=batch, row=row["row"], generation=generation)
    except BudgetExceeded as exc:
        cost = totals(batch)["cost"]
        raise BatchRefused(
            f"Nothing was queued: the batch costs {cost} credits in all. {exc.message}",
            "budget_exceeded",
        ) from None


def cancel_rest(batch, user):
    """Cancel every row not sent yet; (canceled, already sent)."""
    canceled = late = 0
    for item in batch.items.select_related("generation").filter(generation__state=State.QUEUED):
        try:
            item.generation.cancel(by=user)
            canceled += 1
        except CancelRefused:
            late += 1
    return canceled, late


def progress(batch):
    """Counts by state, the overall percentage and the estimated finish of a submitted batch."""
    items = list(batch.items.select_related("generation"))
    generations = [item.generation for item in items]
    counts = Counter(g.state for g in generations)
    done = sum(100 if g.state in FINAL_STATES else g.progress for g in generations)
    now = timezone.now()
    open_ = [g for g in generations if g.state not in FINAL_STATES]
    finish = None
    if open_:
        positions = {
            pk: n for n, pk in enumerate(turns.fair_queue(Generation.objects.all(), now), 1)
        }
        polling = Generation.objects.filter(state__in=POLLING_STATES).count()
        finish = max(
            planner.estimated_finish(g, now, position=positions.get(g.pk), polling=polling)
            for g in open_
        )
    return {
        "items": items,
        "counts": [(label, counts[value]) for value, label in State.choices if counts[value]],
        "percent": round(done / len(generations)) if generations else 0,
        "finished": counts[State.FINISHED],
        "open": len(open_),
        "queued": counts[State.QUEUED],
        "finish": finish,
    }


# --- the ZIP ---------------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """A write-only stream whose written bytes are taken out as they come."""

    def __init__(self):
        self.chunks = []

    def writable(self):
        return True

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def take(self):
        data, self.chunks = b"".join(self.chunks), []
        return data


def zip_stream(batch):
    """Every finished model of the batch and a manifest, as ZIP bytes made while sent.

    zipfile writes to a stream it cannot seek with data descriptors after each file,
    so nothing is held whole: each GLB goes through in the storage's blocks.
    """
    pipe = _Pipe()
    manifest = io.StringIO()
    writer = csvsafe.writer(manifest)  # every CSV we write: no cell read as a formula
    writer.writerow(["row", "generation", "state", "file"])
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:
        for item in batch.items.select_related("generation").prefetch_related("generation__assets"):
            generation = item.generation
            asset = generation.glb_asset if generation.state == State.FINISHED else None
            name = ""
            if asset is not None:
                try:
                    source, _size = storage.open_stream(asset.file)
                except FileNotFoundError:
                    # Removed behind our back: the manifest says so, the rest still comes.
                    logger.error("stored file missing: %s", storage.describe(asset.file))
                    source = None
                if source is not None:
                    name = f"row-{item.row:03d}-generation-{generation.pk}.glb"
                    with source, archive.open(name, "w", force_zip64=True) as entry:
                        while block := source.read(storage.CHUNK):
                            entry.write(block)
                            yield pipe.take()
            writer.writerow([item.row, generation.pk, generation.state, name])
        archive.writestr("manifest.csv", manifest.getvalue())
    yield pipe.take()


# --- views -----------------------------------------------------------------------------------


def _upload_context():
    return {"max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES}


def batch_for(user, pk):
    """The batch if it is ``user``'s (or they are an admin), else 404."""
    batch = get_object_or_404(Batch.objects.select_related("owner"), pk=pk)
    if batch.owner_id != user.pk and not user.has_perm("generations.resolve_generation"):
        raise Http404("No batch matches the given query.")
    return batch


def _get_batch(request, pk):
    return batch_for(request.user, pk)


@login_required
@permission_required("generations.add_generation", raise_exception=True)
def batch_new(request):
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                with transaction.atomic():
                    batch = Batch.objects.create(owner=request.user, name="upload")
                    add_upload(batch, form)
            except BatchRefused as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("batches:detail", pk=batch.pk)
    else:
        form = UploadForm()
    batches = Batch.objects.filter(owner=request.user)[:20]
    context = {"form": form, "batches": batches, **_upload_context()}
    return render(request, "batches/new.html", context)


@login_required
def batch_detail(request, pk):
    """A draft's preview (and a corrected upload), or a submitted batch's progress."""
    batch = _get_batch(request, pk)
    if batch.status == Batch.Status.DRAFT:
        form = UploadForm(initial={**batch.choices, "options": _option_text(batch.choices)})
        if request.method == "POST":
            if batch.owner_id != request.user.pk:
                raise PermissionDenied("Only its owner changes a batch.")
            form = UploadForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    add_upload(batch, form)
                except BatchRefused as exc:
                    form.add_error(None, exc.message)
                else:
                    return redirect("batches:detail", pk=batch.pk)
        if any("cost" not in row for row in batch.rows):
            check(batch)  # a split upload that did not reach its last part
        context = {"batch": batch, "form": form, "totals": totals(batch), **_upload_context()}
        return render(request, "batches/draft.html", context)
    context = {"batch": batch, **progress(batch)}
    template = "batches/detail.html"
    if getattr(request, "htmx", False):
        template += "#batch-status"
    return render(request, template, context)


@login_required
@require_POST
def batch_submit(request, pk):
    batch = _get_batch(request, pk)
    if batch.owner_id != request.user.pk:
        raise PermissionDenied("Only its owner submits a batch.")
    try:
        submit(batch, request.user)
    except BatchRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"All {len(batch.rows)} rows are queued.")
    return redirect("batches:detail", pk=batch.pk)


@login_required
@require_POST
def batch_cancel(request, pk):
    batch = _get_batch(request, pk)
    canceled, late = cancel_rest(batch, request.user)
    text = f"{canceled} not yet sent canceled; their holds are released."
    if late:
        text += f" {late} had just been sent upstream, which has no cancel."
    messages.success(request, text)
    return redirect("batches:detail", pk=batch.pk)


def zip_response(batch):
    if batch.status != Batch.Status.SUBMITTED:
        raise Http404("A draft has no models yet.")
    response = StreamingHttpResponse(zip_stream(batch), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.zip"'
    return response


@login_required
def batch_zip(request, pk):
    return zip_response(_get_batch(request, pk))
