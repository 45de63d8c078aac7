"""Request bodies into the pages' own forms, so the API validates exactly as they do.

A JSON body (base64 images) or a multipart one becomes the fields, options and uploads
that ``generations.rows`` checks with the new-generation form.
"""

import base64
import binascii
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile

from generations.forms import CostForm
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
        if not isinstance(encoded, str):
            errors[key] = ["Must be a base64 string."]
            continue
        if encoded.startswith("data:") and "," in encoded:
            encoded = encoded.split(",", 1)[1]
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            errors[key] = ["Not valid base64."]
            continue
        uploads[names[slot]] = SimpleUploadedFile(f"{slot}.bin", raw)
    if errors:
        raise Invalid(errors)
    return uploads


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
