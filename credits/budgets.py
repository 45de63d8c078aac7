"""Monthly budgets: what is left, and the atomic check at submit.

Spend against a budget is minus the sum of the matching ledger entries this
calendar month, read from the rollups (which are updated in each entry's own
transaction, so they are exactly the sums). A held estimate counts as spent
until it is released.
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth import get_user_model
from django.db.models import Q, Sum
from django.utils import timezone

from .models import Budget, SpendRollup

Scope = SpendRollup.Scope
Grain = SpendRollup.Grain

WARN_AT = 80  # percent of a budget used before the member's header warns


def month_start(today: date | None = None) -> date:
    today = today or timezone.localdate()
    return today.replace(day=1)


def applicable(user, provider=None):
    """The budgets that limit ``user``: theirs, the team's, and the provider caps if asked."""
    providers = Q(provider="") if provider is None else Q(provider="") | Q(provider=provider)
    return Budget.objects.filter(Q(user=user) | Q(user__isnull=True)).filter(providers)


def _rollup_filter(budget):
    if budget.user_id is None and not budget.provider:
        return Q(scope=Scope.TEAM)
    if budget.user_id is None:
        return Q(scope=Scope.PROVIDER, provider=budget.provider)
    if not budget.provider:
        return Q(scope=Scope.USER, user_id=budget.user_id)
    return Q(scope=Scope.USER_PROVIDER, user_id=budget.user_id, provider=budget.provider)


def spent_this_month(budgets, today=None):
    """{budget.pk: credits spent this month}, in one query whatever the number of budgets."""
    budgets = list(budgets)
    if not budgets:
        return {}
    wanted = Q()
    sums = {}
    for budget in budgets:
        condition = _rollup_filter(budget)
        wanted |= condition
        sums[f"b{budget.pk}"] = Sum("amount", filter=condition)
    # One month row per budget: the month grain holds this month's sums.
    totals = SpendRollup.objects.filter(
        wanted, grain=Grain.MONTH, day=month_start(today)
    ).aggregate(**sums)
    return {budget.pk: -(totals[f"b{budget.pk}"] or 0) for budget in budgets}


@dataclass(frozen=True)
class Usage:
    budget: Budget
    spent: int

    @property
    def left(self):
        return max(0, self.budget.monthly_limit - self.spent)

    @property
    def percent(self):
        if self.budget.monthly_limit == 0:
            return 100
        return min(999, round(100 * self.spent / self.budget.monthly_limit))

    @property
    def provider_label(self):
        from generations.catalogue import PROVIDERS

        spec = PROVIDERS.get(self.budget.provider)
        return spec.label if spec else self.budget.provider

    @property
    def whose(self):
        owner = "your" if self.budget.user_id else "the team's"
        if self.budget.provider:
            from generations.catalogue import PROVIDERS

            spec = PROVIDERS.get(self.budget.provider)
            return f"{owner} {spec.label if spec else self.budget.provider} cap"
        return f"{owner} monthly budget"


def usage(user, provider=None, budgets=None):
    """Each budget that applies to ``user``, with what was spent against it this month."""
    budgets = list(applicable(user, provider) if budgets is None else budgets)
    spent = spent_this_month(budgets)
    return [Usage(budget, spent[budget.pk]) for budget in budgets]


def remaining(user, provider=None):
    """Credits ``user`` may still spend this month, or None when no budget applies."""
    rows = usage(user, provider)
    if not rows:
        return None
    return min(row.left for row in rows)


def who_to_ask():
    """Names of the admins a member can ask to raise a budget."""
    User = get_user_model()
    admins = (
        User.objects.filter(Q(groups__name="Admins") | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")[:3]
    )
    names = [admin.get_full_name() or admin.get_username() for admin in admins]
    if not names:
        return "an admin"
    return "an admin (" + ", ".join(names) + ")"


def reserve(user, provider, amount):
    """Check, under lock, that ``amount`` more credits fit every budget of ``user``.

    Call inside the transaction that then writes the hold. On PostgreSQL the
    matching budget rows are locked (``SELECT ... FOR UPDATE``, in primary-key
    order so two submits never deadlock) until that transaction commits, so a
    second submit reads the spend only after the first one's hold is visible:
    concurrent submits can never overrun a budget. (SQLite ignores the lock, but
    the embedded set-up opens every transaction with an IMMEDIATE write lock,
    which serialises writers anyway.)

    Raises ``generations.models.BudgetExceeded`` saying how much is left and who to ask.
    """
    from generations.models import BudgetExceeded

    budgets = list(applicable(user, provider).select_for_update().order_by("pk"))
    if not budgets:
        return
    for row in usage(user, provider, budgets=budgets):
        if amount > row.budget.monthly_limit - row.spent:
            raise BudgetExceeded(
                f"This generation costs {amount} credits, but only {row.left} of "
                f"{row.whose} of {row.budget.monthly_limit} credits are left this month. "
                f"Ask {who_to_ask()} to raise it."
            )
