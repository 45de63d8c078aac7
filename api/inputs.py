"""Request bodies into the pages' own forms, so the API validates exactly as they do.

A JSON body (base64 images) or a multipart one becomes the fields, options and uploads
that ``generations.rows`` checks with the new-generation form.
"""

import base64
import binascii
import hashlib
import json
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict

from generations.concept_forms import ConceptCostForm, ConceptForm, MakeModelForm
from generations.forms import CostForm
from generations.image_models import IMAGE_MODELS
from generations.models import Mode
from generations.rows import Invalid, combination, form_data, form_errors, valid_form

# Idempotency keys become form tokens: one generation per key and user, as the form's
# token makes one per form. The user is part of the name, so two people's keys never meet.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d3c52-1f57-4d8e-9a51-7b2f0c4e2a10")
MAX_IDEMPOTENCY_KEY = 200
BODY_FIELDS = {"provider", "mode", "edition", "prompt", "options", "images"}


def form_token(user, key):
    """The generation's form token for an Idempotency-Key (a fresh one without a key)."""
    if not key:
        return uuid.uuid4()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise Invalid({"Idempotency-Key": [f"At most {MAX_IDEMPOTENCY_KEY} characters."]})
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user.pk}:{key}")


def fingerprint(request):
    """SHA-256 of what a request asks for: its method, its path and its canonical body
    (a JSON body with its keys sorted; a multipart body's fields sorted, each file by the
    SHA-256 of its bytes), so the same request sent again has the same fingerprint
    whatever order its keys come in."""
    data = request.data
    if hasattr(data, "getlist"):
        files = request.FILES
        body = {
            "fields": {name: data.getlist(name) for name in data if name not in files},
            "files": {name: [_file_digest(f) for f in files.getlist(name)] for name in files},
        }
    else:
        body = data
    canonical = json.dumps(
        [request.method, request.path, body], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _file_digest(upload):
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)  # the form reads it next
    return digest.hexdigest()


def _body(request):
    """(fields, options, uploads by form field name) of a JSON or multipart body."""
    data = request.data
    if hasattr(data, "getlist"):  # multipart or form-encoded: the page's own field names
        fields = {name: data.get(name) for name in ("provider", "mode", "edition", "prompt")}
        fields = {name: value for name, value in fields.items() if value is not None}
        options = {k: data.get(k) for k in data if k not in BODY_FIELDS and k not in request.FILES}
        return fields, options, dict(request.FILES.items()), None
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["Send a JSON object or a multipart form."]})
    fields = {k: data[k] for k in ("provider", "mode", "edition", "prompt") if k in data}
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise Invalid({name: ["Must be a string."]})
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise Invalid({"options": ["Must be an object of option names and values."]})
    unknown = sorted(set(data) - BODY_FIELDS)
    if unknown:
        raise Invalid({name: ["Not a field of this request."] for name in unknown})
    return fields, options, {}, data.get("images")


def _decode_images(images, spec, mode, edition):
    """Base64 images of a JSON body as uploads named like the form's file fields."""
    if images in (None, {}, []):
        return {}
    if mode == Mode.IMAGE:
        names = {"image": "image"}
    elif mode == Mode.MULTIVIEW:
        names = {slot: f"view_{slot}" for slot, _label, _req in spec.views_for(mode, edition)}
    else:
        raise Invalid({"images": ["Text input takes no images."]})
    if isinstance(images, list):
        if len(images) > len(names):
            raise Invalid({"images": [f"At most {len(names)} images for this input."]})
        images = dict(zip(names, images, strict=False))
    if not isinstance(images, dict):
        raise Invalid({"images": ["Must be an object of slot names and base64 images."]})
    uploads, errors = {}, {}
    for slot, encoded in images.items():
        key = f"images.{slot}"
        if slot not in names:
            errors[key] = [f"Not a slot of this input; use {', '.join(names)}."]
            continue
        upload = _decoded(key, slot, encoded, errors)
        if upload is not None:
            uploads[names[slot]] = upload
    if errors:
        raise Invalid(errors)
    return uploads


def _decoded(key, name, encoded, errors):
    """An upload of a base64 string (a data URI's too), or None with the error at ``key``."""
    if not isinstance(encoded, str):
        errors[key] = ["Must be a base64 string."]
        return None
    if encoded.startswith("data:") and "," in encoded:
        encoded = encoded.split(",", 1)[1]
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        errors[key] = ["Not valid base64."]
        return None
    return SimpleUploadedFile(f"{name}.bin", raw)


def generation_form(request, token, source=None):
    """A bound, valid ``GenerationForm`` for the body; raises ``Invalid`` otherwise."""
    fields, options, uploads, images = _body(request)
    spec, mode, edition = combination(fields, source)
    if images is not None:
        uploads = _decode_images(images, spec, mode, edition)
    data = form_data(spec, mode, edition, fields, options, token, source)
    return valid_form(spec, mode, edition, data, uploads, source)


def cost_form(request):
    """A bound ``CostForm`` (tolerant, images aside) and its errors, for the estimate."""
    fields, options, _uploads, _images = _body(request)
    spec, mode, edition = combination(fields)
    data = form_data(spec, mode, edition, fields, options, uuid.uuid4())
    form = CostForm(data, spec=spec, mode=mode, edition=edition)
    form.is_valid()
    errors = form_errors(form, form.option_names)
    # The estimate is asked before the prompt is written: a missing one is no error here.
    errors.pop("prompt", None)
    return form, errors


# --- concept jobs ---------------------------------------------------------------------------

CONCEPT_FIELDS = ("image_model", "prompt", "count", "edit_of")
CONCEPT_BODY = {*CONCEPT_FIELDS, "options", "images"}


def concept_body(request):
    """(fields, options, reference uploads) of a concept job's JSON or multipart body.

    JSON: ``images`` is a list of base64 images to edit; multipart: each option is a
    field of its own name and the images are files named ``images``.
    """
    data = request.data
    if hasattr(data, "getlist"):
        fields = {name: data.get(name) for name in CONCEPT_FIELDS if data.get(name) is not None}
        files = request.FILES
        options = {k: data.get(k) for k in data if k not in CONCEPT_BODY and k not in files}
        stray = sorted(set(files) - {"images"})
        if stray:
            raise Invalid(
                {name: ["Send the images to edit as files named images."] for name in stray}
            )
        return fields, options, files.getlist("images")
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["Send a JSON object or a multipart form."]})
    unknown = sorted(set(data) - CONCEPT_BODY)
    if unknown:
        raise Invalid({name: ["Not a field of this request."] for name in unknown})
    fields = {name: data[name] for name in CONCEPT_FIELDS if data.get(name) is not None}
    for name in ("image_model", "prompt"):
        if name in fields and not isinstance(fields[name], str):
            raise Invalid({name: ["Must be a string."]})
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise Invalid({"options": ["Must be an object of option names and values."]})
    images = data.get("images") or []
    if not isinstance(images, list):
        raise Invalid({"images": ["Must be a list of base64 images."]})
    errors, uploads = {}, []
    for n, encoded in enumerate(images):
        upload = _decoded(f"images.{n}", f"image-{n}", encoded, errors)
        if upload is not None:
            uploads.append(upload)
    if errors:
        raise Invalid(errors)
    return fields, options, uploads


def _concept_data(model_key, fields, options, token, form_class):
    """The concept form's data; an unknown model or an option it does not offer is an
    error on its field (the page would fall back to the default model instead)."""
    model = IMAGE_MODELS.get(model_key)
    if model is None:
        listed = ", ".join(IMAGE_MODELS)
        message = f"Unknown image model; use one of {listed}." if model_key else "Required."
        raise Invalid({"image_model": [message]})
    offered = {option.name for option in model.options}
    unknown = sorted(set(options) - offered)
    if unknown:
        raise Invalid({f"options.{name}": [f"Not an option of {model.label}."] for name in unknown})
    count = fields.get("count", form_class.base_fields["count"].initial)
    data = {"form_token": str(token), "image_model": model.key, "count": count}
    data["prompt"] = fields.get("prompt", "")
    data.update({name: "" if value is None else value for name, value in options.items()})
    return data


def _concept_errors(form):
    errors = {}
    for field, messages in form.errors.items():
        if field in form.option_names:
            field = f"options.{field}"
        elif field == "references":
            field = "images"
        elif field == "__all__":
            field = "non_field_errors"
        errors[field] = list(messages)
    return errors


def concept_form(model_key, fields, options, uploads, token):
    """A bound, valid ``ConceptForm`` (its references cleaned); raises ``Invalid``."""
    data = _concept_data(model_key, fields, options, token, ConceptForm)
    files = MultiValueDict({"references": list(uploads)}) if uploads else None
    form = ConceptForm(data, files, model_key=model_key)
    if not form.is_valid():
        raise Invalid(_concept_errors(form))
    return form


def concept_cost_form(request):
    """A bound ``ConceptCostForm`` (tolerant, images aside) and its errors, for the estimate."""
    fields, options, _uploads = concept_body(request)
    model_key = fields.get("image_model")
    form = ConceptCostForm(
        _concept_data(model_key, fields, options, uuid.uuid4(), ConceptCostForm),
        model_key=model_key,
    )
    form.is_valid()
    return form, _concept_errors(form)


def make_model_form(request, token, job_images):
    """A bound, valid ``MakeModelForm`` for a body naming the target (``provider``,
    ``edition``, ``mode``) and the picks (``image``: one concept image id; ``views``: an
    object of view slots and ids); raises ``Invalid`` with each error on its field."""
    data = request.data
    if not hasattr(data, "get"):
        raise Invalid({"non_field_errors": ["Send a JSON object or a multipart form."]})
    unknown = sorted(set(data) - {"provider", "edition", "mode", "image", "views"})
    if unknown:
        raise Invalid({name: ["Not a field of this request."] for name in unknown})
    views = data.get("views") or {}
    if not isinstance(views, dict):
        raise Invalid({"views": ["Must be an object of view slots and concept image ids."]})
    fields = {name: data.get(name) for name in ("provider", "edition", "mode")}
    fields = {name: value for name, value in fields.items() if value is not None}
    fields.setdefault("mode", Mode.MULTIVIEW if views else Mode.IMAGE)
    if fields["mode"] not in (Mode.IMAGE, Mode.MULTIVIEW):
        raise Invalid({"mode": ["A concept image is modelled with image or multiview input."]})
    spec, mode, edition = combination(fields)
    slots = [slot for slot, _label, _required in spec.views_for(mode, edition)]
    values = {"form_token": str(token), "target": f"{spec.key}:{edition}:{mode}"}
    if mode == Mode.IMAGE:
        if views:
            raise Invalid({"views": ["Image input takes one image: send image, not views."]})
        values["image"] = data.get("image")
    else:
        if data.get("image") is not None:
            raise Invalid({"image": ["Multi-view input takes views, not image."]})
        stray = sorted(set(views) - set(slots))
        if stray:
            listed = ", ".join(slots)
            raise Invalid(
                {f"views.{s}": [f"Not a view of this input; use {listed}."] for s in stray}
            )
        values.update({f"view_{slot}": pk for slot, pk in views.items()})
    form = MakeModelForm(values, job_images=job_images)
    if not form.is_valid():
        errors = {}
        for field, messages in form.errors.items():
            if field.startswith("view_"):
                field = f"views.{field[5:]}"
            elif field in ("__all__", "target"):
                field = "image" if mode == Mode.IMAGE else "views"
            # A pick that is not one of the job's images is also "no image" to the form's
            # clean(): its own reason, first, is the one to give.
            errors.setdefault(field, [messages[0]])
        raise Invalid(errors)
    return form
