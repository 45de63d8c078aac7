from django.contrib import admin

from .models import Alert, Asset, ConceptImage, ConceptJob, Generation


class AssetInline(admin.TabularInline):
    model = Asset
    extra = 0
    readonly_fields = ["role", "file", "format", "bytes", "sha256", "facts", "created_at"]
    can_delete = False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "provider", "state", "progress", "credit_estimate", "created_at"]
    list_filter = ["state", "provider"]
    search_fields = ["prompt", "upstream_task_id"]
    readonly_fields = ["upstream_task_id", "claim", "deliveries", "results", "last_raw_response"]
    inlines = [AssetInline]


class ConceptImageInline(AssetInline):
    """Stored results, shown as an asset is: read-only, never deleted here."""

    model = ConceptImage
    readonly_fields = ["position", "file", "format", "width", "height", "bytes", "created_at"]


@admin.register(ConceptJob)
class ConceptJobAdmin(admin.ModelAdmin):
    """Concept jobs ("Start from an image"), to find one that needs attention: made only by
    its form (a job added here would be sent upstream), never deleted (the ledger names it)."""

    list_display = ["id", "owner", "image_model", "state", "count", "credit_estimate", "created_at"]
    list_filter = ["state", "image_model"]
    search_fields = ["prompt", "upstream_task_id"]
    readonly_fields = ["upstream_task_id", "claim", "deliveries", "results", "failure_reason"]
    inlines = [ConceptImageInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(Alert)
