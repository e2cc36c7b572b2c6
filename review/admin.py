from django.contrib import admin

from .models import Analysis, Policy, PolicyChange
from .services_policy import record_policy_change


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit records are never edited or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    fieldsets = [
        (
            "Classifiers",
            {
                "fields": [
                    "providers",
                    ("explicit_review_at", "explicit_flag_at"),
                    ("suggestive_review_at", "suggestive_flag_at"),
                ]
            },
        ),
        (
            "Duplicates and hash voters",
            {
                "fields": [
                    "near_duplicate_distance",
                    "mirror_aware",
                    "quorum",
                    ("ahash_enabled", "ahash_threshold"),
                    ("dhash_enabled", "dhash_threshold"),
                    ("phash_enabled", "phash_threshold"),
                    ("mhash_enabled", "mhash_threshold"),
                    ("pdq_enabled", "pdq_threshold"),
                ]
            },
        ),
        (
            "Review and strikes",
            {
                "fields": [
                    "strikes_to_ban",
                    ("claim_batch_default", "claim_batch_max"),
                    "lease_minutes",
                    "reject_reasons",
                ]
            },
        ),
    ]

    def has_add_permission(self, request):
        return not Policy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        record_policy_change(obj, form.changed_data, request.user)


@admin.register(PolicyChange)
class PolicyChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "field", "old_value", "new_value", "changed_by")
    list_filter = ("field", "changed_by")


@admin.register(Analysis)
class AnalysisAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "item", "source", "outcome", "reason", "author")
    list_filter = ("outcome", "reason", "source")
    search_fields = ("request_id", "item__uuid", "item__sha256")
