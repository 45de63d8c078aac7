"""A generation asked for as plain fields (an API body, a CSV row of a batch), checked by
the new-generation form itself, so every way in refuses exactly what the page refuses.

``fields``: provider, mode, edition, prompt (strings, each optional); ``options``: option
names to values as written (``"true"``, ``"4096"``) or typed; ``uploads``: the form's file
fields (``image``, ``view_<slot>``) to uploaded files. Unlike the page's selection, which
falls back to a default on an unknown value so a stale link still opens, an unknown
provider, mode or edition, or an option the combination does not offer, is an error on
its field. Errors are keyed as the API names its fields: ``options.<name>``,
``images.<slot>``, ``non_field_errors``.
"""

from django.utils.datastructures import MultiValueDict

from .catalogue import PROVIDERS
from .forms import GenerationForm
from .models import Generation


class Invalid(Exception):
    """Field-level messages: ``{"field": ["message", ...]}``."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def combination(fields, source=None):
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


def form_data(spec, mode, edition, fields, options, token, source=None):
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


def form_errors(form, option_names):
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


def bound_form(fields, options, uploads, token, source=None):
    """A bound, valid ``GenerationForm``; raises ``Invalid`` otherwise."""
    spec, mode, edition = combination(fields, source)
    data = form_data(spec, mode, edition, fields, options, token, source)
    return valid_form(spec, mode, edition, data, uploads, source)


def valid_form(spec, mode, edition, data, uploads, source=None):
    form = GenerationForm(
        data,
        MultiValueDict({k: [v] for k, v in uploads.items()}),
        spec=spec,
        mode=mode,
        edition=edition,
        source=source,
    )
    if not form.is_valid():
        raise Invalid(form_errors(form, form.option_names))
    return form


def queue(owner, form, token):
    """``create_queued`` with a valid form's values (raises ``BudgetExceeded``)."""
    return Generation.objects.create_queued(
        owner=owner,
        provider=form.spec.key,
        mode=form.mode,
        edition=form.edition,
        prompt=form.cleaned_data.get("prompt", ""),
        options=form.options(),
        form_token=token,
        images=form.clean_images,
    )
