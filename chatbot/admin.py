"""Workspaces configured by hand (a single internal app) or installed through OAuth; their
secrets are write-only here: typed once, sealed, then shown only as "set"."""

from django import forms
from django.contrib import admin

from moderation_site.admin import ReadOnlyAdmin

from .models import Action, Appeal, Event, Workspace

SECRET_FIELDS = {
    "signing_secret": "Signing secret of the workspace's own Slack app (Basic Information); "
    "empty: the app's SLACK_SIGNING_SECRET.",
    "bot_token": "Bot user OAuth token (xoxb-…).",
    "admin_token": "Optional user OAuth token of a workspace admin (xoxp-…, chat:write and "
    "files:write): deletes members' messages and files.",
}


def _secret_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=True,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class WorkspaceForm(forms.ModelForm):
    """Each secret: a new value replaces the stored one, empty keeps it, "clear" drops it."""

    signing_secret = _secret_field()
    clear_signing_secret = forms.BooleanField(required=False, label="clear")
    bot_token = _secret_field()
    clear_bot_token = forms.BooleanField(required=False, label="clear")
    admin_token = _secret_field()
    clear_admin_token = forms.BooleanField(required=False, label="clear")

    class Meta:
        model = Workspace
        fields = (
            "team_id",
            "name",
            "active",
            "bot_user_id",
            "bot_id",
            "admin_channel",
            "policy",
            "max_file_bytes",
            "check_text",
            "check_video",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, help_text in SECRET_FIELDS.items():
            is_set = self.instance.pk and self.instance.has_secret(name)
            self.fields[
                name
            ].help_text = f"{'Set' if is_set else 'Not set'}. {help_text} Never shown again."

    def save(self, commit=True):
        workspace = super().save(commit=False)
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(f"clear_{name}"):
                workspace.set_secret(name, "")
            elif self.cleaned_data.get(name):
                workspace.set_secret(name, self.cleaned_data[name])
        if commit:
            workspace.save()
        return workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    list_display = ("__str__", "team_id", "active", "admin_channel", "policy", "installed_at")
    search_fields = ("name", "team_id")

    def get_fields(self, request, obj=None):
        fields = list(WorkspaceForm.Meta.fields)
        for name in SECRET_FIELDS:
            fields += [name, f"clear_{name}"]
        return fields


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "team_id", "type", "status", "deliveries", "received_at", "note")
    list_filter = ("status", "type")
    search_fields = ("event_id", "team_id")


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "workspace", "method", "why", "token", "actor", "ok", "error")
    list_filter = ("ok", "method", "why", "workspace")
    search_fields = ("error", "item__uuid")


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ("item", "status", "opened_at", "decided_at")
    list_filter = ("status",)
