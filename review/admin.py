from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from hashing.algorithms import ALGORITHMS
from moderation_site.admin import ReadOnlyAdmin, export_as_csv
from uploads.kinds import KINDS

from . import claims
from .classifiers.base import ClassifierError
from .classifiers.registry import provider_class
from .decisions import confirmation_rate
from .models import (
    Analysis,
    Category,
    ClassifierLabel,
    Decision,
    Policy,
    PolicyChange,
    QueueEntry,
    Term,
    Voter,
)
from .policy import add_policy, record_policy_change, record_row_changes
from .terms import save_term


def _algorithm_choices():
    return [(name, algorithm.label or name) for name, algorithm in ALGORITHMS.items()]


def _kind_choices():
    return [(name, kind.label or name) for name, kind in KINDS.items()]


class VoterForm(forms.ModelForm):
    # Choices read from the registry when the form is built: a new algorithm needs no edit.
    algorithm = forms.ChoiceField(choices=_algorithm_choices)

    class Meta:
        model = Voter
        fields = ("algorithm", "enabled", "threshold", "weight")


class CategoryForm(forms.ModelForm):
    media_kind = forms.ChoiceField(choices=_kind_choices)

    class Meta:
        model = Category
        fields = ("name", "label", "media_kind", "review_at", "flag_at", "rank", "at_least")


class VoterInline(admin.TabularInline):
    model = Voter
    form = VoterForm
    extra = 0
    fields = ("algorithm", "enabled", "threshold", "weight")
    verbose_name = "hash voter"
    verbose_name_plural = "Hash voters (a row per algorithm; missing ones are added at migrate)"


class CategoryInline(admin.TabularInline):
    model = Category
    form = CategoryForm
    extra = 0
    fields = (
        "name",
        "label",
        "media_kind",
        "review_at",
        "flag_at",
        "rank",
        "at_least",
        "confirmations",
    )
    readonly_fields = ("confirmations",)

    @admin.display(description="Model blocks confirmed by moderators")
    def confirmations(self, obj):
        if obj is None or obj.pk is None:
            return "–"
        return str(confirmation_rate(obj.name, obj.media_kind))


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    """The site's policy ("Moderation policy", pk 1) and any others, e.g. an API client's
    (chosen on the client). A new one starts with the default rows, edited after it is
    saved; none is deleted (its changes stay on record)."""

    list_display = ("__str__", "providers", "quorum", "updated_at")
    fieldsets = [
        ("Classifiers", {"fields": ["providers"]}),
        (
            "Duplicates and hash voters",
            {"fields": ["mirror_aware", "quorum"]},
        ),
        ("Video", {"fields": ["video_max_mb", "video_max_seconds", "video_sample_fps"]}),
        (
            "Review and strikes",
            {
                "fields": [
                    "confirm_model_flags",
                    "strikes_to_ban",
                    ("claim_batch_default", "claim_batch_max"),
                    "lease_minutes",
                    "reject_reasons",
                ]
            },
        ),
        ("Public API", {"fields": ["batch_max_items"]}),
    ]
    inlines = [CategoryInline, VoterInline]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # rows are seeded when it is added

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            record_policy_change(obj, form.changed_data, request.user)
        else:
            add_policy(obj, request.user)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request, f"{obj} added with the default categories and voters: edit them here."
        )
        return HttpResponseRedirect(reverse("admin:review_policy_change", args=[obj.pk]))

    def save_formset(self, request, form, formset, change):
        record_row_changes(form.instance, formset, request.user)


# What a weight does, as review.categories.category_scores computes it; shown on the
# label list and form.
LABEL_WEIGHTS_HELP = (
    "Each row counts one classifier label towards one category. A detection of the label "
    "with score s counts s × weight towards the category: weight 1 counts it in full, 0.5 "
    "half (a detection at 90 % counts 45 %), 0 stops the label counting. A category's score "
    "is the highest of its weighted labels over every provider, and never below the score "
    "of its “at least” category (suggestive is at least explicit); the category's "
    "“review at” and “flag at” scores (Policy) then apply to it. Labels are matched without "
    "regard to case; a label without a row counts for nothing. “Default” is the weight the "
    "provider ships with (documented in review/classifiers/), seeded at migrate."
)


def _default_weight(provider: str, label: str, category: str) -> float | None:
    """The provider's own default for this label and category, None if it has none."""
    try:
        defaults = provider_class(provider).default_labels
    except ClassifierError:
        return None
    wanted = label.lower()
    for name, (default_category, weight) in defaults.items():
        if name.lower() == wanted and default_category == category:
            return weight
    return None


@admin.register(ClassifierLabel)
class ClassifierLabelAdmin(admin.ModelAdmin):
    """Which provider label counts towards which category, and how much."""

    list_display = ("provider", "label", "category", "weight", "default_weight", "policy")
    list_editable = ("weight",)
    list_filter = ("policy", "provider", "category__name")
    list_select_related = ("category", "policy")
    search_fields = ("label",)
    fieldsets = [
        (
            None,
            {
                "fields": ("provider", "label", "category", "weight"),
                "description": LABEL_WEIGHTS_HELP,
            },
        )
    ]

    @admin.display(description="default")
    def default_weight(self, obj):
        weight = _default_weight(obj.provider, obj.label, obj.category.name)
        return "–" if weight is None else f"{weight:g}"

    def changelist_view(self, request, extra_context=None):
        extra = {"weights_help": LABEL_WEIGHTS_HELP, **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def has_delete_permission(self, request, obj=None):
        return False  # a weight of 0 stops a label counting, and the change stays on record

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "category":  # each policy has its own "explicit"
            field.queryset = field.queryset.select_related("policy")
            field.label_from_instance = lambda c: f"{c.name} ({c.policy})"
        return field

    def save_model(self, request, obj, form, change):
        obj.policy = obj.category.policy  # a label counts in its category's policy
        old = ClassifierLabel.objects.filter(pk=obj.pk).first() if obj.pk else None
        obj.save()
        fields = form.changed_data if old is not None else ["added"]
        PolicyChange.objects.bulk_create(
            PolicyChange(
                policy=obj.policy,
                field=f"label {obj.provider}:{obj.label} {name}"[:64],
                old_value="" if old is None else str(getattr(old, name, "")),
                new_value=str(getattr(obj, name, "added")),
                changed_by=request.user,
            )
            for name in fields
        )


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
        "purpose",
        "severity",
        "item_created_at",
        "claimed_by",
        "claimed_at",
        "lease_expires_at",
        "group_key",
    )
    list_filter = (ClaimedFilter, "purpose", "claimed_by")
    search_fields = ("item__uuid", "claimed_by__username", "group_key")
    list_select_related = ("item", "claimed_by")
    actions = ["release_claims", export_as_csv]

    def has_release_permission(self, request):
        return request.user.has_perm("review.moderate")

    @admin.action(description="Release the claims of the selected items", permissions=["release"])
    def release_claims(self, request, queryset):
        released = claims.release_entries(queryset.values_list("pk", flat=True))
        self.message_user(request, f"Released {released} claim(s).", messages.SUCCESS)


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    """The term banks of text items: per category, block and allow terms (review.terms
    says how they are matched and count). Every edit is recorded as a policy change; a
    term is disabled, never deleted."""

    list_display = ("text", "kind", "category", "enabled", "note", "policy", "updated_at")
    list_editable = ("enabled",)
    list_filter = ("policy", "kind", "category__name", "enabled")
    list_select_related = ("category", "policy")
    search_fields = ("text", "note")
    fields = ("category", "kind", "text", "note", "enabled")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "category":  # the text kind's categories, of each policy
            field.queryset = field.queryset.filter(media_kind="text").select_related("policy")
            field.label_from_instance = lambda c: f"{c.name} ({c.policy})"
        return field

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        save_term(obj, form.changed_data if change else [], request.user)
