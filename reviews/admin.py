from django.contrib import admin

from .models import AuditLog, Comment, Review, Tag


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "generation", "reviewer", "decision", "created_at"]
    list_filter = ["decision"]

    # Decisions are history; they are made on the review pages, not edited here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "summary"]
    list_filter = ["action"]
    search_fields = ["summary", "actor_name", "target_repr"]

    # Append-only, here as everywhere.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(Comment)
admin.site.register(Tag)
