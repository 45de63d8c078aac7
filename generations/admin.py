from django.contrib import admin

from .models import Alert, Asset, Generation


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


admin.site.register(Alert)
