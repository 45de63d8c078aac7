"""The image model catalogue: the models a concept job ("Start from an image") runs on.

Like ``catalogue.py`` for the 3D providers, this is data: each model's endpoints,
options (choices and defaults), limits and prices, read by the form, the request
builder and the estimate, so nothing about a model is written twice. The source is
the API reference "Image generation"; readings are marked "Reading:".

API
    ``IMAGE_MODELS`` (key -> ``ImageModel``), ``choices()``.
    ``ImageModel.endpoint(edit)``, ``.options`` (``ImageOption`` list),
    ``.clean_options(values)`` -> (options, errors), ``.price(options, count, table=None)``
    -> ``(total, breakdown)``, ``.request_body(prompt, options, count, images=())``.

Prices are the "images" section of the price table (``catalogue.PRICE_TABLE`` holds the
defaults; an admin publishes new versions, credits/prices.py): ``price`` reads the table
in force, so the form's cost, the hold and the charge are one figure.
"""

from dataclasses import dataclass

from .catalogue import MAX_PROMPT_LENGTH

ASPECTS = ("auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
SEEDREAM_SIZES = (
    "auto_2K",
    "auto_3K",
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
)


@dataclass(frozen=True)
class ImageOption:
    name: str
    label: str
    choices: tuple
    default: str


@dataclass(frozen=True)
class ImageModel:
    key: str
    label: str
    path: str  # "gemini/3/pro": /v1/images/<path>/generate/ and .../edit/
    options: tuple
    max_images: int  # num_images
    max_edit_images: int  # reference images an edit takes
    edit_field: str  # the edit's list of data URIs
    # The option the price depends on (its value keys PRICE_TABLE["images"][key]), or None:
    # one price an image ("each").
    priced_by: str | None = None

    def endpoint(self, edit):
        return f"/v1/images/{self.path}/{'edit' if edit else 'generate'}/"

    def clean_options(self, values):
        """(options, errors): this model's options from ``values`` (others ignored), each a
        known choice; an empty or missing value is the default."""
        cleaned, errors = {}, {}
        for option in self.options:
            value = values.get(option.name) or option.default
            if value not in option.choices:
                errors[option.name] = f"{option.label} must be one of {', '.join(option.choices)}."
            cleaned[option.name] = value
        return cleaned, errors

    def price_per_image(self, options, table=None):
        """Credits an image with ``options``, from ``table`` (PRICE_TABLE's shape; by default
        the price table in force)."""
        if table is None:
            from credits.prices import active

            table = active()[1]
        tiers = table["images"][self.key]
        if self.priced_by is None:
            return tiers["each"]
        option = next(o for o in self.options if o.name == self.priced_by)
        return tiers.get(options.get(self.priced_by), tiers[option.default])

    def price(self, options, count, table=None):
        """(total, breakdown): per image times the count. Tolerant of unknown values."""
        each = self.price_per_image(options, table)
        return each * count, [(f"{count} x {each} credits an image:", each * count)]

    def price_labels(self):
        """{tier: words} of this model's prices, for the admins' price form."""
        if self.priced_by is None:
            return {"each": "Each image"}
        option = next(o for o in self.options if o.name == self.priced_by)
        return {tier: f"{option.label} {tier}, each image" for tier in option.choices}

    def request_body(self, prompt, options, count, images=()):
        """The JSON body; ``images`` (data URIs) make it an edit. Options left at their
        default are omitted (the API reference: omit rather than send a default)."""
        body = {"prompt": prompt[:MAX_PROMPT_LENGTH], "num_images": count}
        for option in self.options:
            value = options.get(option.name, option.default)
            if value != option.default:
                body[option.name] = value
        if images:
            body[self.edit_field] = list(images)
        return body


_GEMINI_COMMON = (
    ImageOption("aspect_ratio", "Aspect ratio", ASPECTS, "auto"),
    ImageOption("output_format", "File format", OUTPUT_FORMATS, "png"),
)

IMAGE_MODELS = {
    model.key: model
    for model in (
        ImageModel(
            "gemini_3_pro",
            "Gemini 3 Pro",
            "gemini/3/pro",
            (*_GEMINI_COMMON, ImageOption("resolution", "Resolution", ("1K", "2K", "4K"), "1K")),
            max_images=4,
            max_edit_images=14,
            edit_field="images",
            priced_by="resolution",
        ),
        ImageModel(
            "gemini_31_flash",
            "Gemini 3.1 Flash",
            "gemini/3.1/flash",
            (
                ImageOption(
                    "aspect_ratio", "Aspect ratio", (*ASPECTS, "1:4", "4:1", "1:8", "8:1"), "auto"
                ),
                _GEMINI_COMMON[1],
                ImageOption("resolution", "Resolution", ("512px", "1K", "2K", "4K"), "1K"),
            ),
            max_images=4,
            max_edit_images=14,
            edit_field="images",
            priced_by="resolution",
        ),
        ImageModel(
            "gemini_25_flash",
            "Gemini 2.5 Flash",
            "gemini/2.5/flash",
            _GEMINI_COMMON,
            max_images=4,
            max_edit_images=14,
            edit_field="images",
        ),
        # Reading: the edit's list is `image_urls` (cut off in the docs; a public client's).
        ImageModel(
            "seedream_v5_lite",
            "Seedream V5 Lite",
            "seedream/v5/lite",
            (ImageOption("image_size", "Image size", SEEDREAM_SIZES, "auto_2K"),),
            # The issue asks for 1-4 concept images; Seedream would take 6.
            max_images=4,
            max_edit_images=10,
            edit_field="image_urls",
        ),
    )
}

# Every option name of any model: the form has one field for each.
ALL_OPTIONS = {o.name: o for model in IMAGE_MODELS.values() for o in model.options}


def choices():
    return [(key, model.label) for key, model in IMAGE_MODELS.items()]
