"""The one place a credit estimate comes from.

The form's live cost, the saved estimate and so the ledger's charge all call
``estimate``, so what a member sees before submitting is exactly what is held
and charged. Prices are data: the catalogue's PRICE_TABLE is the default, and
the credits app may supply an admin-edited, versioned table.
"""

from dataclasses import dataclass

from .catalogue import PROVIDERS


@dataclass(frozen=True)
class Estimate:
    total: int
    breakdown: list  # [(label, credits), ...], "Base" first
    version: int | None  # price table version; None = the catalogue's defaults


def estimate(provider: str, mode: str, options: dict, edition: str | None = None) -> Estimate:
    total, breakdown = PROVIDERS[provider].price(mode, options, edition=edition or None)
    return Estimate(total=total, breakdown=breakdown, version=None)
