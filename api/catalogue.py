"""The provider catalogue as JSON: every mode and edition with its options and price."""

from credits.prices import active
from generations import pricing
from generations.catalogue import MODE_LABELS, PROVIDERS


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
