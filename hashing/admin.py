from django.contrib import admin

from .models import Fingerprint


@admin.register(Fingerprint)
class FingerprintAdmin(admin.ModelAdmin):
    list_display = ("item", "ahash", "dhash", "phash", "mhash", "pdq_quality")
    search_fields = ("pdq",)

    def has_change_permission(self, request, obj=None):
        return False
