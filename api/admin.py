import json

from django.contrib import admin, messages
from django.db import models
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html

from moderation_site.admin import ReadOnlyAdmin, export_as_csv

from . import analyses, services, tasks
from .models import (
    ApiClient,
    ApiKey,
    Delivery,
    DeliveryAttempt,
    Submission,
    new_signing_secret,
)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("prefix", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued by the action, which shows them once


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "scopes", "throttle_rate", "callback_url", "created_at")
    search_fields = ("name",)
    # The signing secret never appears on a page after it is made (rotate shows it once).
    fields = (
        "name",
        "active",
        "scopes",
        "throttle_rate",
        "callback_url",
        "signing_secret_masked",
        "policy",
    )
    readonly_fields = ("signing_secret_masked",)
    # A callback URL typed without its scheme is https (Django 5.2 would assume http and
    # warns that 6.0 changes it): signed callbacks carry a verdict, not for plain HTTP.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [ApiKeyInline]
    actions = ["issue_key", "rotate_signing_secret"]

    def save_model(self, request, obj, form, change):
        if obj.pk is None:
            made = services.create_client(
                obj.name,
                scopes=obj.scopes,
                active=obj.active,
                throttle_rate=obj.throttle_rate,
                callback_url=obj.callback_url,
                policy=obj.policy,
            )
            obj.pk, obj.user = made.pk, made.user
            obj._state.adding = False
            return
        super().save_model(request, obj, form, change)

    @admin.display(description="Signing secret")
    def signing_secret_masked(self, obj):
        """Enough to tell which secret is in use (its last 4 characters), never the secret."""
        secret = obj.signing_secret if obj is not None and obj.pk else ""
        return f"whsec_…{secret[-4:]}  (rotate to see a new one once)" if secret else "-"

    @admin.action(description="Issue a new key (shown once)")
    def issue_key(self, request, queryset):
        for client in queryset:
            _, raw = services.issue_key(client, name=f"issued by {request.user} in admin")
            self.message_user(
                request,
                f"New key for {client}: {raw}  (copy it now: it is not stored and will not "
                "be shown again)",
                messages.WARNING,
            )

    @admin.action(description="Rotate the callback signing secret (shown once)")
    def rotate_signing_secret(self, request, queryset):
        for client in queryset:
            client.signing_secret = new_signing_secret()
            client.save(update_fields=["signing_secret"])
            self.message_user(
                request,
                f"New signing secret for {client}: {client.signing_secret}  (copy it now)",
                messages.WARNING,
            )


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "client", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("client",)
    actions = ["revoke", export_as_csv]

    def has_revoke_permission(self, request):
        return request.user.has_perm("api.change_apikey")

    @admin.action(description="Revoke the selected keys", permissions=["revoke"])
    def revoke(self, request, queryset):
        count = services.revoke_keys(queryset)
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyAdmin):
    """Every client's log: filter it, then export it (the analysis's decision, reason and
    sentence with the client's fields, one row per item) as CSV."""

    list_display = (
        "item",
        "client",
        "user_uuid",
        "decision",
        "reason",
        "idempotency_key",
        "batch",
        "created_at",
    )
    list_filter = ("client", "item__status", "item__reason", "created_at")
    search_fields = ("item__uuid", "user_uuid", "idempotency_key", "batch")
    list_select_related = ("item", "client")
    date_hierarchy = "created_at"
    actions = ["export_log", export_as_csv]

    @admin.display(description="Decision", ordering="item__status")
    def decision(self, obj):
        return analyses.DECISION.get(obj.item.status, "processing")

    @admin.display(description="Reason", ordering="item__reason")
    def reason(self, obj):
        return obj.item.reason

    @admin.action(description="Export the log of the selected analyses as CSV")
    def export_log(self, request, queryset):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            analyses.log_csv(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="api-log-{stamp}.csv"'
        return response


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "retry_in",
        "manual",
        "url",
        "response_excerpt",
    )
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Each callback and its attempts; the body as sent (it never holds the secret, and no
    page shows the secret or a signature made with it)."""

    list_display = (
        "event_id",
        "event",
        "client",
        "item",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event", "client")
    search_fields = ("event_id", "item__uuid")
    list_select_related = ("client", "item")
    # The list's columns, then when it was delivered and made, and the body as sent.
    fields = (*list_display[:-1], "delivered_at", "created_at", "pretty_body")
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["resend", export_as_csv]

    @admin.display(description="Body")
    def pretty_body(self, obj):
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text)

    def has_resend_permission(self, request):
        return request.user.has_perm("api.change_delivery")

    @admin.action(description="Resend the selected callbacks now", permissions=["resend"])
    def resend(self, request, queryset):
        count = 0
        for delivery in queryset.select_related("client"):
            if not delivery.client.callback_url:
                self.message_user(
                    request, f"{delivery.client} has no callback URL: not resent.", messages.ERROR
                )
                continue
            tasks.resend(delivery)
            count += 1
        if count:
            self.message_user(
                request,
                f"Resending {count} callback(s); each attempt is listed on its delivery.",
                messages.SUCCESS,
            )
