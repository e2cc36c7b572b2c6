from django.contrib import admin, messages
from django.utils import timezone

from moderation_site.admin import ReadOnlyAdmin, export_as_csv

from . import queue
from .models import Analysis, Decision, Policy, PolicyChange, QueueEntry
from .services_policy import record_policy_change


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


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = (
        "decided_at",
        "item",
        "decision",
        "reason",
        "moderator",
        "seconds_to_decide",
        "is_override",
    )
    list_filter = ("decision", "is_override", "moderator", "decided_at")
    search_fields = ("item__uuid", "reason", "moderator__username", "batch")
    date_hierarchy = "decided_at"
    list_select_related = ("item", "moderator")


class ClaimedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("claimed", "Claimed"), ("expired", "Lease ran out")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(claimed_by__isnull=True)
        if self.value() == "claimed":
            return queryset.filter(claimed_by__isnull=False)
        if self.value() == "expired":
            return queryset.filter(lease_expires_at__lt=timezone.now())
        return queryset


@admin.register(QueueEntry)
class QueueEntryAdmin(ReadOnlyAdmin):
    """The queue as it stands; only claims can be changed, by releasing them."""

    list_display = (
        "item",
        "severity",
        "item_created_at",
        "claimed_by",
        "claimed_at",
        "lease_expires_at",
        "group_key",
    )
    list_filter = (ClaimedFilter, "claimed_by")
    search_fields = ("item__uuid", "claimed_by__username", "group_key")
    list_select_related = ("item", "claimed_by")
    actions = ["release_claims", export_as_csv]

    def has_release_permission(self, request):
        return request.user.has_perm("review.moderate")

    @admin.action(description="Release the claims of the selected items", permissions=["release"])
    def release_claims(self, request, queryset):
        released = queue.release_entries(queryset.values_list("pk", flat=True))
        self.message_user(request, f"Released {released} claim(s).", messages.SUCCESS)
