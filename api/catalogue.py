"""The provider catalogue as JSON: every mode and edition with its options and price."""

from credits.prices import active
from generations import pricing
from generations.catalogue import MODE_LABELS, PROVIDERS
from generations.image_models import IMAGE_MODELS


def _option(opt):
    return {
        "name": opt.name,
        "label": opt.label,
        "kind": opt.kind,
        "default": opt.default,
        "help": opt.help,
        "choices": list(opt.choices),
        "minimum": opt.minimum,
        "maximum": opt.maximum,
        "max_length": opt.max_length,
        "requires": list(opt.requires) or None,
    }


def providers():
    version, table = active()
    listed = []
    for spec in PROVIDERS.values():
        combinations = []
        for edition in spec.editions or ("",):
            for mode in spec.modes:
                price = pricing.estimate(spec.key, mode, {}, edition)
                combinations.append(
                    {
                        "mode": mode,
                        "mode_label": MODE_LABELS[mode],
                        "edition": edition,
                        "takes_prompt": spec.takes_prompt(mode, edition),
                        "views": [
                            {"slot": slot, "label": label, "required": required}
                            for slot, label, required in spec.views_for(mode, edition)
                        ],
                        "options": [_option(opt) for opt in spec.options_for(mode, edition)],
                        "default_cost": price.total,
                    }
                )
        listed.append(
            {
                "key": spec.key,
                "label": spec.label,
                "modes": list(spec.modes),
                "editions": [{"key": k, "label": v} for k, v in spec.edition_choices()],
                "default_edition": spec.default_edition,
                "combinations": combinations,
                "prices": table[spec.key],
                "price_version": version,
            }
        )
    return listed


def image_models():
    """The concept jobs' image models: options, limits and credits per image."""
    listed = []
    for model in IMAGE_MODELS.values():
        defaults = {option.name: option.default for option in model.options}
        priced = next((o for o in model.options if o.name == model.priced_by), None)
        if priced is None:
            prices = {"each": model.price_per_image(defaults)}
        else:
            prices = {c: model.price_per_image({priced.name: c}) for c in priced.choices}
        listed.append(
            {
                "key": model.key,
                "label": model.label,
                "max_images": model.max_images,
                "max_edit_images": model.max_edit_images,
                "options": [
                    {
                        "name": option.name,
                        "label": option.label,
                        "choices": list(option.choices),
                        "default": option.default,
                    }
                    for option in model.options
                ],
                "priced_by": model.priced_by,
                "credits_per_image": prices,
                "default_cost": model.price(defaults, 1)[0],
            }
        )
    return listed
