from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods

from studio_dashboard import csvsafe, dataversion

from . import budgets, prices, reconcile, spend
from .forms import AdjustmentForm, BudgetForm, PriceTableForm, SpendFilterForm
from .models import Budget, LedgerEntry, PriceTable, WalletSnapshot

VIEW_SPEND = "credits.view_spend"


def _require(request, perm):
    """Refuse unless the user holds ``perm`` (checked in the view, not only hidden in menus)."""
    if not request.user.has_perm(perm):
        raise PermissionDenied


@login_required
@permission_required(VIEW_SPEND, raise_exception=True)
@require_GET
def spend_review(request):
    """The admins' spend review. Its body is a cached fragment under the data version
    (templates/credits/spend.html); the report is computed only on a miss. A range the
    form refuses shows the form's error, never another range in its place."""
    form = SpendFilterForm(request.GET or None)
    context = {
        "form": form,
        "query": dataversion.query_key(request, form.fields),
        # "This month" by default: the day is part of what the body shows.
        "today": timezone.localdate(),
        "low_balance_threshold": settings.LOW_BALANCE_WARNING,
        "report": None,
        "refused": form.is_bound and not form.is_valid(),
    }
    if not context["refused"]:
        start, end, user, provider = form.filters()
        if not form.is_bound:
            context["form"] = SpendFilterForm(initial={"start": start, "end": end})
        report = SimpleLazyObject(lambda: spend.report(start, end, user=user, provider=provider))
        context.update(
            report=report,
            chart=SimpleLazyObject(lambda: spend.chart_svg(report.days)),
            wallet=SimpleLazyObject(
                lambda: WalletSnapshot.objects.order_by("-fetched_at", "-id").first()
            ),
            drift=SimpleLazyObject(
                lambda: reconcile.attributed_between(start, end, user=user, provider=provider)
            ),
        )
    return render(request, "credits/spend.html", context)


CSV_HEADER = [
    "id",
    "created_at",
    "kind",
    "user",
    "provider",
    "edition",
    "generation",
    "conversion",
    "amount",
    "note",
    # Added after the columns above, which keep their place: what was paid for, in words
    # ("Hunyuan 3D Pro", "Gemini 3 Pro (concept images)", "Remesh", "Convert to FBX":
    # spend.item_label), and the concept job an entry is for.
    "item",
    "concept_job",
]


@login_required
@permission_required(VIEW_SPEND, raise_exception=True)
@require_GET
def ledger_csv(request):
    form = SpendFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        errors = " ".join(" ".join(messages) for messages in form.errors.values())
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    start, end, user, provider = form.filters()
    rows = spend.ledger_rows(start, end, user=user, provider=provider)
    # Notes and usernames are typed by people: no cell may open as a formula.
    writer = csvsafe.writer()

    def lines():
        yield writer.writerow(CSV_HEADER)
        # iterator(): rows stream from a server-side cursor, never all in memory.
        for row in rows.iterator(chunk_size=2000):
            values = list(row[:10])
            values[1] = values[1].isoformat()
            values[5] = values[5] or ""
            values[6] = values[6] or ""
            values[7] = values[7] or ""
            yield writer.writerow([*values, spend.csv_item(row), row[12] or ""])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ledger-{start}-to-{end}.csv"'
    return response


@login_required
@permission_required(VIEW_SPEND, raise_exception=True)
@require_GET
def wallet(request):
    latest = WalletSnapshot.objects.order_by("-fetched_at", "-id").first()
    return render(
        request,
        "credits/wallet.html",
        {
            "intervals": reconcile.intervals(),
            "latest": latest,
            "narrowing": reconcile.last_narrowing(),
            "narrowing_cost": reconcile.narrowing_cost(latest),
            "max_narrowed": reconcile.MAX_NARROWED_SUBMITS,
            "attributions": reconcile.attributions(),
            "low_balance": reconcile.low_balance(latest),
            "low_balance_threshold": settings.LOW_BALANCE_WARNING,
            "refused_402": reconcile.insufficient_credit_failures(),
        },
    )


@login_required
@permission_required(VIEW_SPEND, raise_exception=True)
@require_http_methods(["GET", "POST"])
def price_table(request):
    version, table = prices.active()
    if request.method == "POST":
        _require(request, "credits.manage_prices")
        form = PriceTableForm(request.POST, table=table)
        if form.is_valid():
            row = prices.publish(form.table(), user=request.user, note=form.cleaned_data["note"])
            messages.success(request, f"Published price table v{row.version}.")
            return redirect("credits:prices")
    else:
        form = PriceTableForm(table=table)
    return render(
        request,
        "credits/prices.html",
        {
            "form": form,
            "version": version,
            "history": PriceTable.objects.select_related("created_by")[:20],
            "can_edit": request.user.has_perm("credits.manage_prices"),
        },
    )


@login_required
@permission_required("credits.manage_budgets", raise_exception=True)
@require_http_methods(["GET", "POST"])
def budget_list(request):
    if request.method == "POST":
        form = BudgetForm(request.POST)
        if form.is_valid():
            _before, after = form.save(request.user)
            messages.success(
                request, "Budget removed." if after is None else f"Budget set to {after} credits."
            )
            return redirect("credits:budgets")
    else:
        form = BudgetForm()
    rows = list(Budget.objects.select_related("user"))
    spent = budgets.spent_this_month(rows)
    return render(
        request,
        "credits/budgets.html",
        {"form": form, "rows": [budgets.Usage(row, spent[row.pk]) for row in rows]},
    )


@login_required
@permission_required("credits.make_adjustment", raise_exception=True)
@require_http_methods(["GET", "POST"])
def adjustment_new(request):
    if request.method == "POST":
        form = AdjustmentForm(request.POST)
        if form.is_valid():
            entry = form.save(request.user)
            messages.success(
                request, f"Adjusted {entry.user.get_username()} by {entry.amount} credits."
            )
            return redirect("credits:adjust")
    else:
        form = AdjustmentForm()
    recent = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT)
        .select_related("user")
        .order_by("-id")[:20]
    )
    return render(request, "credits/adjust.html", {"form": form, "recent": recent})
