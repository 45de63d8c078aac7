"""The one place a credit estimate comes from.

The form's live cost, the saved estimate and so the ledger's charge all call
``estimate``, so what a member sees before submitting is exactly what is held
and charged. Prices are data: the catalogue's PRICE_TABLE is the default, and
the credits app may supply an admin-edited, versioned table. The same table
prices a concept job's images (``image_estimate``, ``ImageModel.price``) and a
finishing step (``finishing.price``).
"""

from dataclasses import dataclass

from .catalogue import PROVIDERS


@dataclass(frozen=True)
class Estimate:
    total: int
    breakdown: list  # [(label, credits), ...], "Base" first
    version: int | None  # price table version; None = the catalogue's defaults


def estimate(provider: str, mode: str, options: dict, edition: str | None = None) -> Estimate:
    from credits.prices import active

    version, table = active()
    spec = PROVIDERS[provider]
    # Provider.price reads the catalogue's defaults; the same rule is applied here
    # to the active table (the catalogue's own pricing function and option reading).
    effective = spec._effective(mode, edition or None, options)
    breakdown = spec.pricing(table[spec.key], mode, effective)
    total = sum(amount for _, amount in breakdown)
    return Estimate(total=total, breakdown=breakdown, version=version)


def image_estimate(image_model: str, options: dict, count: int) -> Estimate:
    """The price of ``count`` concept images on ``image_model`` (image_models.py)."""
    from credits.prices import active

    from .image_models import IMAGE_MODELS

    version, table = active()
    total, breakdown = IMAGE_MODELS[image_model].price(options, count, table)
    return Estimate(total=total, breakdown=breakdown, version=version)


def remaining_budget(user, provider: str | None = None) -> int | None:
    """Credits ``user`` may still spend this month under their own and the team's budget
    (and the provider's caps when ``provider`` is given); None when no budget applies."""
    from credits.budgets import remaining

    return remaining(user, provider)
