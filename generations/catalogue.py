"""The provider catalogue: every provider, edition and input mode we offer.

The form, the validation, the request builder and the price estimate all read
from here, so nothing about a provider is written twice in the dashboard. (The
sandbox keeps its own reading of the contract on purpose: a mistake here must
show up as a failing test, not be shared by both sides.) The source is
the API reference; where it is silent or ambiguous the choice is marked
"Reading:".

Vocabulary
    provider  one upstream product: ``hunyuan_pro``, ``hunyuan_rapid``,
              ``trellis2``, ``tripo_v3``, ``tripo_p1`` (``PROVIDERS``).
    edition   a model version chosen by the member: ``"3.0"``/``"3.1"`` for
              Hunyuan Pro (sent as ``model``) and Tripo (in the URL path).
              Other providers have none (``editions == ()``); ``None`` or ``""``
              always means ``default_edition``.
    mode      the input: ``"text"``, ``"image"`` (one image) or
              ``"multiview"`` (one image per view slot).

API (everything a caller needs; ``edition`` may always be ``None``)
    ``get_provider(key)``, ``PROVIDERS``, ``choices(key=None)``,
    ``MAX_PROMPT_LENGTH``, ``MODE_LABELS``, ``PRICE_TABLE``,
    ``expected_seconds(provider, options)``, ``InvalidRequest``.

    ``Provider.modes``, ``.editions``, ``.default_edition``,
    ``.mode_choices()``, ``.edition_choices()``, ``.display(edition)``
    ``Provider.options_for(mode, edition)`` -> the ``Option`` list of exactly
        that combination (defaults, help, ranges, choices).
    ``Provider.takes_prompt(mode, edition)`` -> whether a prompt field belongs
        on the form (text input; Hunyuan Pro 3.0 image for Sketch).
    ``Provider.views_for(mode, edition)`` -> ``[(slot, label, required)]``
        for multi-view (empty otherwise); ``.view_limits(mode, edition)`` ->
        ``(fewest, most)`` images.
    ``Provider.image_rules`` -> ``ImageRules`` (limits, flatten transparency).
    ``Provider.clean_options(mode, edition, options)`` -> typed values of the
        options that are set ("on", "4096" from a form become True, 4096).
    ``Provider.validate(mode, edition, prompt, options, image_count=, views=)``
        -> ``{field: message}``, empty when the request is fine. Image checks
        run only when ``image_count`` (image mode) or ``views`` (an iterable
        of slot keys, multi-view) is given, so the live cost can validate
        options alone. Field keys: ``mode``, ``edition``, ``prompt``, an
        option name, ``image`` or ``views``.
    ``Provider.price(mode, options, edition=None)`` -> ``(total, breakdown)``,
        breakdown ``[("Base", 60), ("PBR materials", 20), ...]`` always led by
        a "Base" line. Tolerant: unknown or invalid options are priced at
        their defaults, so a half-filled form still gets a price.
    ``Provider.request_body(mode, prompt, options, edition=None, images=None)``
        -> the JSON body; ``images`` is ``[(slot, data_uri)]``. Raises
        ``InvalidRequest`` (with ``.errors`` from ``validate``) rather than
        build a body we know the upstream would refuse.
    ``Provider.endpoint_for(mode, edition)`` -> the submit path;
        ``Provider.endpoint`` is the path of the first mode and default
        edition (the only path for Hunyuan Rapid).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

MAX_PROMPT_LENGTH = 1024

MODE_LABELS = {"text": "Text", "image": "Single image", "multiview": "Multi-view"}

# Every credit price, in one JSON-shaped structure: the defaults of the admins' versioned
# price tables (credits/prices.py), which have exactly this shape. A provider's prices
# are under its key; the finishing steps' and the concept images' under PRICE_SECTIONS.
PRICE_TABLE = {
    "hunyuan_pro": {
        "base": {"text": 60, "image": 60, "multiview": 60},
        "pbr": 20,
        "multiview": 20,
    },
    "hunyuan_rapid": {
        # Reading: PBR is +20 (one source says +15; the contract gives 20 first).
        "base": {"text": 35, "image": 35},
        "pbr": 20,
    },
    "trellis2": {
        # The contract's table, by resolution: total price without textures, with
        # 1024 or 2048 textures, and with 4096 textures. The breakdown shows the
        # textured prices as a surcharge over the geometry-only price.
        "geometry": {"512": 15, "1024": 20, "1536": 25},
        "textured": {"512": 25, "1024": 30, "1536": 40},
        "textured_4096": {"512": 30, "1024": 40, "1536": 55},
        "thumbnail": 2,
    },
    "tripo_v3": {
        "base": {"text": 20, "image": 40, "multiview": 40},
        "texture": {"standard": 20, "detailed": 40},
        "geometry_detailed": 40,
        "quad": 10,
        "smart_low_poly": 20,
        "parts": 40,
    },
    "tripo_p1": {
        "base": {"text": 60, "image": 80, "multiview": 80},
        "texture": {"standard": 20, "detailed": 40},
    },
    # The finishing steps (generations/finishing.py prices a step's options with these).
    "finishing": {
        # Tripo's convert-model, plus the quads surcharge; Tencent's smart topology is flat.
        "remesh": {"tripo": 10, "quads": 10, "tencent": 100},
        "texture": {"standard": 20, "detailed": 40},
        "repair": {"base": 60, "hollow": 30},
        "optimize": 10,
        # One still; several images (a turntable) or an animation.
        "render": {"still": 5, "several": 20},
    },
    # Concept images (generations/image_models.py): credits per image by the model's priced
    # option (its resolution), "each" for a flat price; edit costs as generate.
    "images": {
        "gemini_3_pro": {"1K": 50, "2K": 50, "4K": 80},
        # Reading: the tiers are cut off in the docs; 10/15/20/25 as the sandbox charges.
        "gemini_31_flash": {"512px": 10, "1K": 15, "2K": 20, "4K": 25},
        "gemini_25_flash": {"each": 5},
        "seedream_v5_lite": {"each": 10},
    },
}
# The sections of PRICE_TABLE that are not a provider's.
PRICE_SECTIONS = ("finishing", "images")

# The finishing section's prices in words (the admins' price form); the image models'
# come from their catalogue (image_models.py), the providers' from their own keys.
PRICE_LABELS = {
    ("finishing", "remesh", "tripo"): "Remesh (Tripo)",
    ("finishing", "remesh", "quads"): "Remesh (Tripo): extra for quads",
    ("finishing", "remesh", "tencent"): "Remesh (Tencent smart topology)",
    ("finishing", "texture", "standard"): "Texture edit, standard quality",
    ("finishing", "texture", "detailed"): "Texture edit, detailed quality",
    ("finishing", "repair", "base"): "Repair",
    ("finishing", "repair", "hollow"): "Repair: extra for hollowing it",
    ("finishing", "optimize"): "Optimize for the web",
    ("finishing", "render", "still"): "Render one still",
    ("finishing", "render", "several"): "Render a turntable (images or animation)",
}

_TRUE_WORDS = {"true", "on", "1", "yes"}
_FALSE_WORDS = {"false", "off", "0", "no"}


class InvalidRequest(ValueError):
    """A request body was asked for a request that `Provider.validate` refuses."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _unset(value):
    # Forms give "" for an empty choice or number: that means "not chosen".
    return value is None or value == ""


@dataclass(frozen=True)
class Option:
    """One upstream field a member can set, for the modes and editions listed."""

    name: str  # the upstream field name, sent as is
    label: str
    kind: str  # "bool", "int", "choice", "text"
    default: object = None  # what the form starts with; None: the upstream decides
    help: str = ""
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None  # for "text"
    modes: tuple = ()  # the modes that take it; empty: every mode
    editions: tuple = ()  # the editions that take it; empty: every edition
    # (option name, value) this one depends on; otherwise it is not sent, and a
    # value other than the default is refused.
    requires: tuple = ()
    # Send `default` even when the member did not set the option. For options whose
    # upstream default the contract does not document while our price depends on it:
    # the body must say what the estimate assumed.
    send_default: bool = False

    def applies_to(self, mode, edition):
        return (not self.modes or mode in self.modes) and (
            not self.editions or edition in self.editions
        )

    def clean(self, raw):
        """(typed value, None) or (None, a message naming the field)."""
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw, None
            if isinstance(raw, str) and raw.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
                return raw.strip().lower() in _TRUE_WORDS, None
            return None, f"{self.label} must be yes or no."
        if self.kind == "int":
            value = raw
            if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
                value = int(raw.strip())
            if isinstance(value, bool) or not isinstance(value, int):
                return None, f"{self.label} must be a whole number."
            if self.minimum is not None and self.maximum is not None:
                if not self.minimum <= value <= self.maximum:
                    return None, (
                        f"{self.label} must be between {self.minimum:,} and {self.maximum:,}."
                    )
            elif self.minimum is not None and value < self.minimum:
                return None, f"{self.label} must be at least {self.minimum:,}."
            return value, None
        if self.kind == "choice":
            for choice in self.choices:
                # Match "4096" from a form to 4096, and 1024 to the string "1024".
                if raw == choice or str(raw) == str(choice):
                    return choice, None
            listed = ", ".join(str(c) for c in self.choices)
            return None, f"{self.label} must be one of {listed}."
        if not isinstance(raw, str):
            return None, f"{self.label} must be text."
        if self.max_length is not None and len(raw) > self.max_length:
            return None, f"{self.label} must be at most {self.max_length:,} characters."
        return raw, None


@dataclass(frozen=True)
class ImageRules:
    """What the upstream accepts for reference images (the API reference, Transport)."""

    formats: tuple = ("PNG", "JPEG", "WEBP")
    max_bytes: int = 6 * 1024 * 1024
    min_side: int = 128
    max_side: int = 5000
    # Larger uploads are downscaled to this longest side before sending.
    send_max_side: int = 2048
    # Tripo has refused a transparent PNG: composite onto `background`, send JPEG.
    flatten_transparency: bool = False
    background: tuple = (255, 255, 255)


@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    modes: tuple  # of "text", "image", "multiview"
    # mode -> submit path; "{edition}" is replaced by the edition.
    endpoints: dict
    options: tuple = ()  # every option of every mode and edition
    # Computes the breakdown from PRICE_TABLE[key], the mode and effective options.
    pricing: Callable | None = None
    editions: tuple = ()
    default_edition: str | None = None
    edition_labels: dict = field(default_factory=dict)
    # Body field that carries the edition (Hunyuan Pro's "model"); None: in the path.
    edition_field: str | None = None
    # Multi-view slots per edition ("" for every edition): (slot, label, required).
    views: dict = field(default_factory=dict)
    min_views: int = 1
    # Tripo reads its images by position (front, left, back, right), so a gap would
    # shift a view into the wrong slot.
    positional_views: bool = False
    # (option, value) with which a prompt goes together with the image (Sketch).
    prompt_with_image: tuple = ()
    image_rules: ImageRules = ImageRules()
    # Typical upstream duration in seconds, before we have our own history.
    typical_seconds: float = 120.0
    # Boolean option -> extra seconds when it is on (for poll planning).
    slow_options: dict = field(default_factory=dict)

    # --- editions and modes ---------------------------------------------------------
    def edition_or_default(self, edition):
        """The edition to use; raises ValueError for one this provider does not have."""
        if edition is None or edition == "":
            return self.default_edition
        if edition not in self.editions:
            raise ValueError(f"{self.label} has no edition {edition!r}")
        return edition

    def display(self, edition=None):
        """The name in messages: "Hunyuan 3D Pro 3.1", "Tripo v3.0", "TRELLIS.2"."""
        edition = self.edition_or_default(edition)
        if edition is None:
            return self.label
        return f"{self.label} {self.edition_labels.get(edition, edition)}"

    def mode_choices(self):
        return [(mode, MODE_LABELS[mode]) for mode in self.modes]

    def edition_choices(self):
        return [(e, self.edition_labels.get(e, e)) for e in self.editions]

    def _check(self, mode, edition):
        if mode not in self.modes:
            raise ValueError(f"{self.label} takes no {mode!r} input")
        return self.edition_or_default(edition)

    @property
    def endpoint(self):
        return self.endpoint_for(self.modes[0], self.default_edition)

    def endpoint_for(self, mode, edition=None):
        edition = self._check(mode, edition)
        return self.endpoints[mode].replace("{edition}", edition or "")

    # --- fields -----------------------------------------------------------------------
    def option(self, name, mode=None, edition=None):
        """The option called `name` (in that mode and edition when given)."""
        for opt in self.options:
            if opt.name == name and (
                mode is None or opt.applies_to(mode, self.edition_or_default(edition))
            ):
                return opt
        raise KeyError(name)

    def options_for(self, mode, edition=None):
        edition = self._check(mode, edition)
        return [opt for opt in self.options if opt.applies_to(mode, edition)]

    def takes_prompt(self, mode, edition=None):
        edition = self._check(mode, edition)
        if mode == "text":
            return True
        if self.prompt_with_image and mode == "image":
            name, value = self.prompt_with_image
            return any(
                value in opt.choices for opt in self.options_for(mode, edition) if opt.name == name
            )
        return False

    def views_for(self, mode, edition=None):
        edition = self._check(mode, edition)
        if mode != "multiview":
            return []
        return list(self.views.get(edition, self.views.get("", ())))

    def view_limits(self, mode, edition=None):
        slots = self.views_for(mode, edition)
        if not slots:
            return (0, 0)
        return (self.min_views, len(slots))

    # --- options ------------------------------------------------------------------------
    def clean_options(self, mode, edition, options):
        """Typed values of this combination's options that are set and valid."""
        values = {}
        for opt in self.options_for(mode, edition):
            raw = (options or {}).get(opt.name)
            if not _unset(raw):
                value, error = opt.clean(raw)
                if error is None:
                    values[opt.name] = value
        return values

    def _effective(self, mode, edition, options):
        """Every option of the combination with its value: set and valid, else the default.

        An option whose dependency is not met takes its default: it is not sent.
        """
        offered = self.options_for(mode, edition)
        values = self.clean_options(mode, edition, options)
        effective = {opt.name: values.get(opt.name, opt.default) for opt in offered}
        for opt in offered:
            if opt.requires and effective.get(opt.requires[0]) != opt.requires[1]:
                effective[opt.name] = opt.default
        return effective

    # --- validation ---------------------------------------------------------------------
    def validate(self, mode, edition, prompt, options, image_count=None, views=None):
        if mode not in self.modes:
            offered = " or ".join(MODE_LABELS[m].lower() for m in self.modes)
            label = MODE_LABELS.get(mode, str(mode))
            return {"mode": f"{label} input is not available on {self.label}: use {offered} input."}
        try:
            edition = self.edition_or_default(edition)
        except ValueError:
            if self.editions:
                listed = " or ".join(self.edition_labels.get(e, e) for e in self.editions)
                return {"edition": f"Edition {edition} does not exist for {self.label}: {listed}."}
            return {"edition": f"{self.label} has no editions: leave Edition empty."}

        errors = {}
        offered = {opt.name: opt for opt in self.options_for(mode, edition)}
        values = {}
        for name, raw in (options or {}).items():
            if _unset(raw):
                continue
            opt = offered.get(name)
            if opt is None:
                errors[name] = self._not_offered(name, mode, edition)
                continue
            value, error = opt.clean(raw)
            if error is not None:
                errors[name] = self._unavailable_choice(opt, raw, mode, edition) or error
            else:
                values[name] = value
        effective = {name: values.get(name, opt.default) for name, opt in offered.items()}

        for opt in offered.values():
            if not opt.requires or opt.name not in values or values[opt.name] == opt.default:
                continue
            dep_name, dep_value = opt.requires
            if effective.get(dep_name) != dep_value:
                dep = offered[dep_name]
                wanted = dep_value if dep.kind != "bool" else ("on" if dep_value else "off")
                errors.setdefault(
                    opt.name, f"{opt.label} can only be set when {dep.label} is {wanted}."
                )

        # Tripo: parts come as separate untextured meshes.
        if effective.get("generate_parts"):
            if effective.get("texture") or effective.get("pbr"):
                errors.setdefault(
                    "generate_parts",
                    "Generate parts needs Texture and PBR turned off.",
                )
            if effective.get("quad"):
                errors.setdefault("quad", "Quad mesh cannot be combined with Generate parts.")

        self._validate_prompt(mode, edition, prompt or "", effective, errors)
        self._validate_images(mode, edition, image_count, views, errors)
        return errors

    def _validate_prompt(self, mode, edition, prompt, effective, errors):
        with_image = bool(self.prompt_with_image) and (
            effective.get(self.prompt_with_image[0]) == self.prompt_with_image[1]
        )
        if mode == "text" or (mode == "image" and with_image):
            if not prompt.strip():
                if mode == "text":
                    errors["prompt"] = "Prompt is required for text input."
                else:
                    name, value = self.prompt_with_image
                    errors["prompt"] = (
                        f"Prompt is required with {self._label_of(name)} {value}: "
                        "describe what the sketch shows."
                    )
            elif len(prompt) > MAX_PROMPT_LENGTH:
                errors["prompt"] = f"Prompt must be at most {MAX_PROMPT_LENGTH:,} characters."
        elif prompt.strip():
            if self.takes_prompt(mode, edition):
                name, value = self.prompt_with_image
                errors["prompt"] = (
                    f"Prompt can go with an image only when {self._label_of(name)} is {value}."
                )
            else:
                errors["prompt"] = (
                    f"Prompt is not used with {MODE_LABELS[mode].lower()} input on "
                    f"{self.label}: leave it empty."
                )

    def _validate_images(self, mode, edition, image_count, views, errors):
        if mode == "text":
            if image_count or views:
                errors["image"] = "Image is not used with text input: remove it."
            return
        if mode == "image":
            if image_count is None:
                return
            if image_count < 1:
                errors["image"] = "Image is required: add one reference image."
            elif image_count > 1:
                errors["image"] = "Image input takes exactly one image."
            return
        if views is None:
            return
        given = list(views)
        slots = [slot for slot, _, _ in self.views_for(mode, edition)]
        unknown = [v for v in given if v not in slots]
        if unknown:
            errors["views"] = (
                f"View {unknown[0]} is not available on {self.display(edition)} "
                f"(views: {', '.join(slots)})."
            )
            return
        doubled = sorted({v for v in given if given.count(v) > 1})
        if doubled:
            errors["views"] = f"Each view takes one image: {doubled[0]} was given twice."
            return
        missing = [slot for slot, label, required in self.views_for(mode, edition) if required]
        missing = [slot for slot in missing if slot not in given]
        fewest, most = self.view_limits(mode, edition)
        if missing:
            errors["views"] = f"The {missing[0]} view is required."
        elif not fewest <= len(given) <= most:
            errors["views"] = (
                f"{self.display(edition)} needs {fewest} to {most} views (front first); "
                f"{len(given)} given."
            )
        elif self.positional_views and given and set(given) != set(slots[: len(given)]):
            errors["views"] = (
                f"{self.label} reads views by position: fill "
                f"{', '.join(slots)} in that order, without gaps."
            )

    def _label_of(self, name):
        for provider in PROVIDERS.values():
            for opt in provider.options:
                if opt.name == name:
                    return opt.label
        return name

    def _not_offered(self, name, mode, edition):
        label = self._label_of(name)
        same_name = [opt for opt in self.options if opt.name == name]
        if any(opt.applies_to(mode, e) for opt in same_name for e in self.editions):
            return f"{label} is not available on {self.display(edition)}."
        if same_name:
            modes = {m for opt in same_name for m in (opt.modes or self.modes)}
            listed = " or ".join(MODE_LABELS[m].lower() for m in self.modes if m in modes)
            return f"{label} is only for {listed} input."
        return f"{label} is not available on {self.label}."

    def _unavailable_choice(self, opt, raw, mode, edition):
        """A choice that exists in another edition or mode says so, not just "one of"."""
        others = [o for o in self.options if o.name == opt.name and o is not opt]
        accepting = [o for o in others if o.clean(raw)[1] is None]
        if not accepting:
            return None
        value = accepting[0].clean(raw)[0]
        this_edition = [o for o in accepting if not o.editions or edition in o.editions]
        if this_edition:
            modes = {m for o in this_edition for m in (o.modes or self.modes)}
            listed = " or ".join(MODE_LABELS[m].lower() for m in self.modes if m in modes)
            return f"{opt.label} {value} needs {listed} input."
        return f"{opt.label} {value} is not available on {self.display(edition)}."

    # --- price ----------------------------------------------------------------------------
    def price(self, mode, options, edition=None):
        """The credit cost and its breakdown: (55, [("Base", 35), ("PBR materials", 20)])."""
        effective = self._effective(mode, edition, options)
        breakdown = self.pricing(PRICE_TABLE[self.key], mode, effective)
        return sum(amount for _, amount in breakdown), breakdown

    # --- request body -------------------------------------------------------------------
    def request_body(self, mode, prompt, options, edition=None, images=None):
        """The exact JSON body for the upstream: only this combination's fields.

        Options the member did not set are left out so the upstream applies its
        documented default, except `send_default` ones (see `Option`). Options whose
        dependency is not met (a polygon type without LowPoly) are left out.
        """
        images = list(images or [])
        if mode == "multiview":
            errors = self.validate(mode, edition, prompt, options, views=[s for s, _ in images])
        else:
            errors = self.validate(mode, edition, prompt, options, image_count=len(images))
        if errors:
            raise InvalidRequest(errors)
        edition = self.edition_or_default(edition)

        body = {}
        if self.edition_field:
            body[self.edition_field] = edition
        effective = self._effective(mode, edition, options)
        if self.takes_prompt(mode, edition) and (prompt or "").strip():
            body["prompt"] = prompt
        if mode == "image":
            body["image"] = images[0][1]
        elif mode == "multiview":
            by_slot = dict(images)
            order = [slot for slot, _, _ in self.views_for(mode, edition) if slot in by_slot]
            if self.positional_views:
                body["images"] = [{"image": by_slot[slot]} for slot in order]
            else:
                body["multi_view_images"] = [
                    {"view_type": slot, "view_image": by_slot[slot]} for slot in order
                ]
        chosen = self.clean_options(mode, edition, options)
        for opt in self.options_for(mode, edition):
            if opt.requires and effective.get(opt.requires[0]) != opt.requires[1]:
                continue
            if opt.name in chosen:
                body[opt.name] = chosen[opt.name]
            elif opt.send_default and opt.default is not None:
                body[opt.name] = opt.default
        return body


# --- pricing rules (the numbers are in PRICE_TABLE) ------------------------------------------


def _price_hunyuan(table, mode, o):
    lines = [("Base", table["base"][mode])]
    if o.get("enable_pbr"):
        lines.append(("PBR materials", table["pbr"]))
    if mode == "multiview":
        lines.append(("Multi-view", table["multiview"]))
    return lines


def _price_trellis(table, mode, o):
    resolution = o["resolution"]
    geometry = table["geometry"][resolution]
    lines = [(f"Base {resolution}", geometry)]
    if o.get("textures"):
        size = o["texture_size"]
        textured = table["textured_4096" if size == 4096 else "textured"][resolution]
        lines.append((f"Textures {size}", textured - geometry))
    if o.get("generate_thumbnail"):
        lines.append(("Thumbnail", table["thumbnail"]))
    return lines


def _price_tripo(table, mode, o):
    lines = [("Base", table["base"][mode])]
    if o.get("texture"):
        quality = o.get("texture_quality") or "standard"
        lines.append((f"Texture {quality}", table["texture"][quality]))
    # P1 has none of these options, so `o` never holds them there.
    if o.get("geometry_quality") == "detailed":
        lines.append(("Detailed geometry", table["geometry_detailed"]))
    if o.get("quad"):
        lines.append(("Quad mesh", table["quad"]))
    if o.get("smart_low_poly"):
        lines.append(("Smart low-poly", table["smart_low_poly"]))
    if o.get("generate_parts"):
        lines.append(("Parts", table["parts"]))
    return lines


# --- the catalogue ---------------------------------------------------------------------------

_PRO = "/v1/3d-models/tencent/generate/pro/"
_PRO_VIEWS_30 = (
    ("front", "Front", True),
    ("left", "Left", False),
    ("right", "Right", False),
    ("back", "Back", False),
)
_PRO_VIEWS_31 = _PRO_VIEWS_30 + (
    ("top", "Top", False),
    ("bottom", "Bottom", False),
    ("left_front", "Left front", False),
    ("right_front", "Right front", False),
)
_GENERATE_TYPE_HELP = (
    "Normal: textured model. Geometry: shape only. LowPoly: fewer, cleaner polygons. "
    "Sketch: a drawing plus a prompt."
)

HUNYUAN_PRO = Provider(
    key="hunyuan_pro",
    label="Hunyuan 3D Pro",
    modes=("text", "image", "multiview"),
    endpoints={"text": _PRO, "image": _PRO, "multiview": _PRO},
    editions=("3.0", "3.1"),
    # Reading: `model` is required upstream, so there is no upstream default; we
    # start the form on the newest model.
    default_edition="3.1",
    edition_field="model",
    views={"3.0": _PRO_VIEWS_30, "3.1": _PRO_VIEWS_31},
    # Reading: front plus at least one more view; a front view alone is a
    # single-image generation that would cost 20 credits more.
    min_views=2,
    prompt_with_image=("generate_type", "Sketch"),
    pricing=_price_hunyuan,
    typical_seconds=270.0,
    options=(
        Option(
            "enable_pbr",
            "PBR materials",
            "bool",
            default=False,
            help="Physically based materials (metalness, roughness).",
        ),
        Option(
            "face_count",
            "Face count",
            "int",
            default=500_000,
            help="Target number of faces, 40,000 to 1,500,000.",
            minimum=40_000,
            maximum=1_500_000,
        ),
        # Three readings of one field: Sketch needs an image, LowPoly and Sketch are
        # not on 3.1.
        Option(
            "generate_type",
            "Generation type",
            "choice",
            default="Normal",
            help=_GENERATE_TYPE_HELP,
            choices=("Normal", "LowPoly", "Geometry", "Sketch"),
            modes=("image",),
            editions=("3.0",),
        ),
        Option(
            "generate_type",
            "Generation type",
            "choice",
            default="Normal",
            help=_GENERATE_TYPE_HELP,
            choices=("Normal", "LowPoly", "Geometry"),
            modes=("text", "multiview"),
            editions=("3.0",),
        ),
        Option(
            "generate_type",
            "Generation type",
            "choice",
            default="Normal",
            help=_GENERATE_TYPE_HELP,
            choices=("Normal", "Geometry"),
            editions=("3.1",),
        ),
        Option(
            "polygon_type",
            "Polygon type",
            "choice",
            default="triangle",
            help="Triangles or quads; only for the LowPoly generation type.",
            choices=("triangle", "quadrilateral"),
            editions=("3.0",),
            requires=("generate_type", "LowPoly"),
        ),
    ),
)

HUNYUAN_RAPID = Provider(
    key="hunyuan_rapid",
    label="Hunyuan 3D Rapid",
    modes=("text", "image"),
    endpoints={
        "text": "/v1/3d-models/tencent/generate/rapid/",
        "image": "/v1/3d-models/tencent/generate/rapid/",
    },
    pricing=_price_hunyuan,
    typical_seconds=150.0,
    options=(
        Option(
            "enable_pbr",
            "PBR materials",
            "bool",
            default=False,
            help="Physically based materials (metalness, roughness).",
            # Reading: no documented default, and it changes the price.
            send_default=True,
        ),
        Option(
            "enable_geometry",
            "Geometry only",
            "bool",
            default=False,
            help="Only the shape, without textures.",
        ),
    ),
)

TRELLIS2 = Provider(
    key="trellis2",
    label="TRELLIS.2",
    modes=("image",),
    endpoints={"image": "/v1/3d-models/trellis2/generate/"},
    pricing=_price_trellis,
    typical_seconds=60.0,
    slow_options={"textures": 60.0},
    options=(
        Option(
            "resolution",
            "Resolution",
            "choice",
            default="1024",
            help="Geometry resolution; higher is finer and costs more.",
            # Strings upstream, not numbers.
            choices=("512", "1024", "1536"),
        ),
        Option(
            "steps",
            "Steps",
            "int",
            default=12,
            help="Sampling steps, 1 to 50.",
            minimum=1,
            maximum=50,
        ),
        Option(
            "textures",
            "Textures",
            "bool",
            default=False,
            help="Bake textures onto the model.",
        ),
        Option(
            "texture_size",
            "Texture size",
            "choice",
            default=2048,
            help="Texture size in pixels; 4096 costs more. Only with textures.",
            choices=(1024, 2048, 4096),
            requires=("textures", True),
        ),
        Option(
            "decimation_target",
            "Decimation target",
            "int",
            default=1_000_000,
            help="Faces to keep, 1,000 to 16,000,000.",
            minimum=1_000,
            maximum=16_000_000,
        ),
        Option(
            "seed",
            "Seed",
            "int",
            help="Repeat a result with the same seed (0 or more).",
            minimum=0,
        ),
        Option(
            "generate_thumbnail",
            "Thumbnail",
            "bool",
            default=False,
            help="Also render a preview image.",
            # Reading: no documented default, and it changes the price.
            send_default=True,
        ),
    ),
)

_TRIPO_VIEWS = (
    ("front", "Front", True),
    ("left", "Left", False),
    ("back", "Back", False),
    ("right", "Right", False),
)


def _tripo_endpoints(version):
    return {
        "text": f"/v1/3d-models/tripo/text-to-3d/{version}/",
        "image": f"/v1/3d-models/tripo/image-to-3d/{version}/",
        "multiview": f"/v1/3d-models/tripo/multiview-to-3d/{version}/",
    }


def _tripo_options(*, p1):
    texture = (
        Option(
            "texture",
            "Texture",
            "bool",
            default=True,
            help="Paint the model with a texture.",
        ),
        Option(
            "pbr",
            "PBR materials",
            "bool",
            default=True,
            help="Physically based materials (metalness, roughness).",
        ),
        Option(
            "texture_quality",
            "Texture quality",
            "choice",
            default="standard",
            help="Detailed textures cost more.",
            choices=("standard", "detailed"),
            send_default=True,  # Reading: undocumented default, priced.
        ),
        Option(
            "texture_seed",
            "Texture seed",
            "int",
            help="Repeat a texture with the same seed.",
        ),
    )
    face_limit = Option(
        "face_limit",
        "Face limit",
        "int",
        help="At most this many faces, 48 to 20,000."
        if p1
        else "At most this many faces, 500 to 500,000.",
        minimum=48 if p1 else 500,
        maximum=20_000 if p1 else 500_000,
    )
    shared = (
        Option("export_uv", "Export UV", "bool", default=True, help="Unwrap UV coordinates."),
        Option(
            "auto_size",
            "Real-world size",
            "bool",
            default=False,
            help="Scale the model to a plausible real-world size.",
        ),
        Option(
            "compress",
            "Compression",
            "choice",
            help="Compress the geometry of the GLB.",
            choices=("geometry",),
        ),
    )
    negative = Option(
        "negative_prompt",
        "Negative prompt",
        "text",
        help="What the model should not have.",
        max_length=255 if p1 else 1024,
        modes=("text",),
    )
    if p1:
        seeds = (
            Option(
                "image_seed", "Image seed", "int", help="Repeat the concept image.", modes=("text",)
            ),
            Option("model_seed", "Model seed", "int", help="Repeat the shape.", modes=("text",)),
        )
        return (negative, *seeds, face_limit, *texture, *shared)
    image = (
        Option(
            "texture_alignment",
            "Texture alignment",
            "choice",
            help="Follow the original image or the geometry when texturing.",
            choices=("original_image", "geometry"),
            modes=("image",),
        ),
        Option(
            "orientation",
            "Orientation",
            "choice",
            help="Rotate the model to match the image.",
            choices=("default", "align_image"),
            modes=("image",),
        ),
        Option(
            "enable_image_autofix",
            "Fix the image",
            "bool",
            default=False,
            help="Let the upstream clean up the input image first.",
            modes=("image",),
        ),
    )
    geometry = (
        Option(
            "geometry_quality",
            "Geometry quality",
            "choice",
            default="standard",
            help="Detailed geometry costs more.",
            choices=("standard", "detailed"),
            send_default=True,  # Reading: undocumented default, priced.
        ),
        Option(
            "quad",
            "Quad mesh",
            "bool",
            default=False,
            help="Quads instead of triangles (also returns FBX). Not with parts.",
            send_default=True,  # Reading: undocumented default, priced.
        ),
        Option(
            "smart_low_poly",
            "Smart low-poly",
            "bool",
            default=False,
            help="A clean low-polygon mesh.",
            send_default=True,  # Reading: undocumented default, priced.
        ),
        Option(
            "generate_parts",
            "Generate parts",
            "bool",
            default=False,
            help="Split the model into parts. Needs Texture and PBR off; not with quads.",
            send_default=True,  # Reading: undocumented default, priced.
        ),
    )
    return (negative, *image, face_limit, *texture, *geometry, *shared)


TRIPO_V3 = Provider(
    key="tripo_v3",
    label="Tripo",
    modes=("text", "image", "multiview"),
    endpoints=_tripo_endpoints("{edition}"),
    editions=("3.0", "3.1"),
    # The upstream's own default when the path has no version.
    default_edition="3.0",
    edition_labels={"3.0": "v3.0", "3.1": "v3.1"},
    views={"": _TRIPO_VIEWS},
    min_views=2,
    positional_views=True,
    image_rules=ImageRules(flatten_transparency=True),
    pricing=_price_tripo,
    typical_seconds=100.0,
    options=_tripo_options(p1=False),
)

TRIPO_P1 = Provider(
    key="tripo_p1",
    label="Tripo P1",
    modes=("text", "image", "multiview"),
    endpoints=_tripo_endpoints("p1"),
    views={"": _TRIPO_VIEWS},
    min_views=2,
    positional_views=True,
    image_rules=ImageRules(flatten_transparency=True),
    pricing=_price_tripo,
    typical_seconds=100.0,
    options=_tripo_options(p1=True),
)

PROVIDERS = {p.key: p for p in (HUNYUAN_PRO, HUNYUAN_RAPID, TRELLIS2, TRIPO_V3, TRIPO_P1)}


def get_provider(key: str) -> Provider:
    return PROVIDERS[key]


def choices(provider_key: str | None = None) -> list[tuple[str, str]]:
    """For forms: [(key, label)] of the providers, or of one provider's editions."""
    if provider_key is None:
        return [(p.key, p.label) for p in PROVIDERS.values()]
    return PROVIDERS[provider_key].edition_choices()


def expected_seconds(provider: Provider | str, options: dict | None = None) -> float:
    """The documented typical duration of one generation, for poll planning."""
    if isinstance(provider, str):
        provider = PROVIDERS[provider]
    seconds = provider.typical_seconds
    for name, extra in provider.slow_options.items():
        value = (options or {}).get(name)
        if not _unset(value) and provider.option(name).clean(value)[0]:
            seconds += extra
    return seconds
