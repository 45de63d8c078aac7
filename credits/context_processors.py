from django.utils.functional import SimpleLazyObject

from . import budgets


def _warning(request):
    """The tightest of the user's budgets once 80% of it is used, else None."""
    rows = budgets.usage(request.user)
    if not rows:
        return None
    tightest = max(rows, key=lambda row: row.percent)
    if tightest.percent < budgets.WARN_AT:
        return None
    return tightest


def budget_warning(request):
    """``budget_warning`` for the header banner: a ``budgets.Usage`` at 80% or more, or None.

    Lazy, so pages and fragments that do not show the banner run no query for it.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"budget_warning": None}
    return {"budget_warning": SimpleLazyObject(lambda: _warning(request))}
