from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from . import prices
from .models import Budget, LedgerEntry, PriceTable, WalletSnapshot


class PriceTableAdminForm(forms.ModelForm):
    class Meta:
        model = PriceTable
        fields = ["table", "note"]

    def clean_table(self):
        errors = prices.shape_errors(self.cleaned_data["table"])
        if errors:
            raise ValidationError(errors)
        return self.cleaned_data["table"]


@admin.register(PriceTable)
class PriceTableAdmin(admin.ModelAdmin):
    """Versions are added, never edited: the add form publishes the next version."""

    form = PriceTableAdminForm
    list_display = ["version", "created_by", "created_at", "note"]
    readonly_fields = ["version", "created_by", "created_at"]

    def get_changeform_initial_data(self, request):
        return {"table": prices.active()[1]}

    def has_change_permission(self, request, obj=None):
        # The change page doubles as the detail view: allowed to look, not to save.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        row = prices.publish(obj.table, user=request.user, note=obj.note)
        obj.pk, obj.version, obj.created_at = row.pk, row.version, row.created_at


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "provider", "monthly_limit", "updated_by", "updated_at"]
    list_filter = ["provider"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change):
        from django.utils import timezone

        from .audit import record

        obj.updated_by = request.user
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        record(
            request.user,
            "budget.set",
            f"Budget set in the admin: {obj}",
            target=obj,
            details={"limit": obj.monthly_limit},
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "user",
        "generation",
        "conversion",
        "concept_job",
        "amount",
        "created_at",
    ]
    list_filter = ["kind"]
    # Ids, not a select of every generation, conversion and concept job on the add page.
    raw_id_fields = ["generation", "conversion", "concept_job"]

    # The ledger is append-only, here as everywhere.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(WalletSnapshot)
