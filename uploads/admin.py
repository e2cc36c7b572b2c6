from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import MediaItem


@admin.register(MediaItem)
class MediaItemAdmin(admin.ModelAdmin):
    list_display = (
        "uuid",
        "status",
        "reason",
        "category",
        "confidence",
        "source",
        "author",
        "created_at",
    )
    list_filter = ("kind", "status", "source", "reason", "category")
    search_fields = ("uuid", "sha256", "original_name", "author__display_name")
    readonly_fields = [f.name for f in MediaItem._meta.fields] + ["preview"]
    exclude = ("file",)
    actions = []  # hashing.admin adds "Add to a hash bank…"

    @admin.display(description="Original")
    def preview(self, obj):
        url = reverse("uploads:original", args=[obj.uuid])
        return format_html('<a href="{}" target="_blank" rel="noopener">open original</a>', url)

    def has_add_permission(self, request):
        return False
