"""Request bodies into the pages' own forms, so the API validates exactly as they do.

A JSON body (base64 images) or a multipart one becomes the data and files of a
``GenerationForm`` for the provider, mode and edition asked for. Unlike the page's
selection, which falls back to a default on an unknown value so a stale link still
opens, the API refuses an unknown provider, mode or edition, and an option the
combination does not offer, each with a message on its field.
"""

import base64
import binascii
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict

from generations.catalogue import PROVIDERS
from generations.forms import CostForm, GenerationForm
from generations.models import Mode

# Idempotency keys become form tokens: one generation per key and user, as the form's
# token makes one per form. The user is part of the name, so two people's keys never meet.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d3c52-1f57-4d8e-9a51-7b2f0c4e2a10")
MAX_IDEMPOTENCY_KEY = 200
BODY_FIELDS = {"provider", "mode", "edition", "prompt", "options", "images"}


class Invalid(Exception):
    """Field-level messages: ``{"field": ["message", ...]}``."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


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


def _combination(fields, source=None):
    """(spec, mode, edition) asked for, with the source generation's as defaults."""
    provider = fields.get("provider") or (source.provider if source else "")
    if not provider:
        raise Invalid({"provider": ["This field is required."]})
    spec = PROVIDERS.get(provider)
    if spec is None:
        raise Invalid({"provider": [f"Unknown provider; use one of {', '.join(PROVIDERS)}."]})
    same = source is not None and source.provider == provider
    mode = fields.get("mode") or (source.mode if same else spec.modes[0])
    if mode not in spec.modes:
        raise Invalid({"mode": [f"{spec.label} takes {', '.join(spec.modes)} input."]})
    edition = fields.get("edition")
    if edition is None:
        edition = source.edition if same else ""
    edition = edition or spec.default_edition or ""
    if spec.editions and edition not in spec.editions:
        raise Invalid({"edition": [f"{spec.label} editions: {', '.join(spec.editions)}."]})
    if not spec.editions and edition:
        raise Invalid({"edition": [f"{spec.label} has no editions."]})
    return spec, mode, edition


def _form_data(spec, mode, edition, fields, options, token, source=None):
    """The form's data: the options asked for over the source's, over the catalogue's
    defaults (an absent checkbox would otherwise read as "off")."""
    offered = {opt.name: opt for opt in spec.options_for(mode, edition)}
    unknown = sorted(set(options) - set(offered))
    if unknown:
        where = f"{spec.display(edition)} with {mode} input"
        raise Invalid({f"options.{name}": [f"Not an option of {where}."] for name in unknown})
    values = {name: opt.default for name, opt in offered.items() if opt.default is not None}
    if source is not None and source.provider == spec.key and source.mode == mode:
        values.update({k: v for k, v in (source.options or {}).items() if k in offered})
    values.update(options)
    data = {"form_token": str(token), "provider": spec.key, "mode": mode, "edition": edition}
    prompt = fields.get("prompt")
    if prompt is None and source is not None:
        prompt = source.prompt
    data["prompt"] = prompt or ""
    for name, value in values.items():
        data[name] = "" if value is None else value
    return data


def _errors(form, option_names):
    """The form's errors keyed as the API's fields are."""
    errors = {}
    for field, messages in form.errors.items():
        if field == "__all__":
            key = "non_field_errors"
        elif field in option_names:
            key = f"options.{field}"
        elif field == "image":
            key = "images.image"
        elif field.startswith("view_"):
            key = f"images.{field[5:]}"
        else:
            key = field
        errors[key] = list(messages)
    return errors


def generation_form(request, token, source=None):
    """A bound, valid ``GenerationForm`` for the body; raises ``Invalid`` otherwise."""
    fields, options, uploads, images = _body(request)
    spec, mode, edition = _combination(fields, source)
    if images is not None:
        uploads = _decode_images(images, spec, mode, edition)
    data = _form_data(spec, mode, edition, fields, options, token, source)
    form = GenerationForm(
        data,
        MultiValueDict({k: [v] for k, v in uploads.items()}),
        spec=spec,
        mode=mode,
        edition=edition,
        source=source,
    )
    if not form.is_valid():
        raise Invalid(_errors(form, form.option_names))
    return form


def cost_form(request):
    """A bound ``CostForm`` (tolerant, images aside) and its errors, for the estimate."""
    fields, options, _uploads, _images = _body(request)
    spec, mode, edition = _combination(fields)
    data = _form_data(spec, mode, edition, fields, options, uuid.uuid4())
    form = CostForm(data, spec=spec, mode=mode, edition=edition)
    form.is_valid()
    errors = _errors(form, form.option_names)
    # The estimate is asked before the prompt is written: a missing one is no error here.
    errors.pop("prompt", None)
    return form, errors
