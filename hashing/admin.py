"""Bank admin: every write goes through hashing.services (audited, bumps the matcher)."""

import io

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import slugify

from moderation_site.admin import ReadOnlyAdmin
from uploads.admin import MediaItemAdmin

from . import services
from .forms import AddToBankForm, HashListForm, KnownMessagesForm, ReferenceImagesForm
from .models import Bank, BankChange, BankContent, BankEntry, Fingerprint
from .text import add_texts


@admin.register(Fingerprint)
class FingerprintAdmin(ReadOnlyAdmin):
    list_display = ("item", "algorithm", "value", "mirrored", "quality", "created_at")
    list_filter = ("algorithm", "mirrored")
    search_fields = ("value", "item__uuid")
    list_select_related = ("item",)


@admin.register(Bank)
class BankAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "active", "enabled_entries", "entry_list", "created_at")
    list_filter = ("kind", "active")
    search_fields = ("name", "description")
    fields = ("name", "kind", "active", "description", "created_by", "created_at", "tools")
    readonly_fields = ("created_by", "created_at", "tools")
    actions = ["export_csv"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                enabled_count=Count("entries", filter=Q(entries__enabled=True)),
                entry_count=Count("entries"),
            )
        )

    @admin.display(description="Enabled entries", ordering="enabled_count")
    def enabled_entries(self, obj):
        return obj.enabled_count

    @admin.display(description="Entries")
    def entry_list(self, obj):
        url = reverse("admin:hashing_bankentry_changelist") + f"?bank__id__exact={obj.pk}"
        return format_html('<a href="{}">{} entries</a>', url, obj.entry_count)

    @admin.display(description="Tools")
    def tools(self, obj):
        if obj.pk is None:
            return "Save the bank first, then add pictures or import a hash list."
        links = [
            (reverse("admin:hashing_bank_add_images", args=[obj.pk]), "Upload reference images"),
            (reverse("admin:hashing_bank_add_texts", args=[obj.pk]), "Add known bad messages"),
            (reverse("admin:hashing_bank_import", args=[obj.pk]), "Import CSV"),
            (reverse("admin:hashing_bank_export", args=[obj.pk]), "Export CSV"),
            (
                reverse("admin:hashing_bankentry_changelist") + f"?bank__id__exact={obj.pk}",
                "Entries",
            ),
            (
                reverse("admin:hashing_bankchange_changelist") + f"?bank__id__exact={obj.pk}",
                "Audit",
            ),
        ]
        return format_html(
            " · ".join(['<a href="{}">{}</a>'] * len(links)),
            *[part for link in links for part in link],
        )

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: entries and their audit stay

    def save_model(self, request, obj, form, change):
        services.save_bank(obj, actor=request.user)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:bank_id>/images/",
                wrap(self.add_images_view),
                name="hashing_bank_add_images",
            ),
            path("<int:bank_id>/texts/", wrap(self.add_texts_view), name="hashing_bank_add_texts"),
            path("<int:bank_id>/import/", wrap(self.import_view), name="hashing_bank_import"),
            path("<int:bank_id>/export/", wrap(self.export_view), name="hashing_bank_export"),
            *super().get_urls(),
        ]

    # -- views ------------------------------------------------------------------

    def _bank_for(self, request, bank_id, *, write=True) -> Bank:
        bank = get_object_or_404(Bank, pk=bank_id)
        allowed = (
            self.has_change_permission(request, bank)
            if write
            else self.has_view_permission(request, bank)
        )
        if not allowed:
            raise PermissionDenied
        return bank

    def _render(self, request, bank, template, title, form):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": bank,
            "title": title,
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, f"admin/hashing/bank/{template}", context)

    def _back(self, bank):
        return HttpResponseRedirect(reverse("admin:hashing_bank_change", args=[bank.pk]))

    def add_images_view(self, request, bank_id):
        bank = self._bank_for(request, bank_id)
        form = ReferenceImagesForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            files = [(f.name, f.read()) for f in form.cleaned_data["images"]]
            try:
                result = services.add_images(
                    bank, files, actor=request.user, note=form.cleaned_data["note"]
                )
            except services.BankError as exc:
                form.add_error("images", str(exc))
            else:
                added, skipped = result["added"], result["skipped"]
                text = f"Added {len(added)} reference image(s) to “{bank.name}”."
                if skipped:
                    text += f" Already in the bank: {', '.join(skipped)}."
                self.message_user(request, text, messages.SUCCESS)
                return self._back(bank)
        return self._render(
            request, bank, "add_images.html", f"Upload reference images to {bank.name}", form
        )

    def add_texts_view(self, request, bank_id):
        bank = self._bank_for(request, bank_id)
        form = KnownMessagesForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                added = add_texts(bank, form.cleaned_data["messages"], actor=request.user)
            except services.BankError as exc:
                form.add_error("messages", str(exc))
            else:
                new = sum(1 for _, created in added if created)
                text = f"Added {new} known bad message(s) to “{bank.name}”."
                if new < len(added):
                    text += f" {len(added) - new} were in the bank already."
                self.message_user(request, text, messages.SUCCESS)
                return self._back(bank)
        return self._render(
            request, bank, "add_texts.html", f"Add known bad messages to {bank.name}", form
        )

    def import_view(self, request, bank_id):
        bank = self._bank_for(request, bank_id)
        form = HashListForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
            samples = [(f.name, f.read()) for f in form.cleaned_data["samples"]]
            try:
                report = services.import_hash_list(
                    bank, text, actor=request.user, source_name=upload.name, samples=samples
                )
            except UnicodeDecodeError:
                form.add_error("file", "The file is not UTF-8 text.")
            except services.BankError as exc:
                form.add_error("file", str(exc))
            else:
                # A label the hashes seem to contradict is worth more than a green tick.
                level = messages.WARNING if report.warnings else messages.SUCCESS
                self.message_user(request, f"“{bank.name}”: {report.summary()}", level)
                return self._back(bank)
        return self._render(
            request, bank, "import.html", f"Import a hash list into {bank.name}", form
        )

    def export_view(self, request, bank_id):
        bank = self._bank_for(request, bank_id, write=False)
        return _csv_response(bank, request.user)

    @admin.action(description="Export the selected bank as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        banks = list(queryset[:2])
        if len(banks) != 1:
            self.message_user(request, "Select exactly one bank to export.", messages.WARNING)
            return None
        return _csv_response(banks[0], request.user)


def _csv_response(bank: Bank, actor) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = slugify(bank.name) or f"bank-{bank.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    services.export_hash_list(bank, response, actor=actor)
    return response


class BankEntryInline(admin.TabularInline):
    model = BankEntry
    extra = 0
    can_delete = False
    fields = ("algorithm", "value", "enabled", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BankContent)
class BankContentAdmin(admin.ModelAdmin):
    list_display = ("id", "bank", "source", "name", "source_item", "entry_count", "created_at")
    list_filter = ("bank", "source")
    search_fields = ("name", "note", "sha256", "source_item__uuid")
    readonly_fields = (
        "bank",
        "source",
        "source_item",
        "name",
        "sha256",
        "note",
        "created_by",
        "created_at",
    )
    inlines = [BankEntryInline]
    actions = ["disable_contents", "enable_contents"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("bank").annotate(n=Count("entries"))

    @admin.display(description="Entries", ordering="n")
    def entry_count(self, obj):
        return obj.n

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Disable all hashes of the selected contents", permissions=["change"])
    def disable_contents(self, request, queryset):
        n = services.set_contents_enabled(queryset, False, actor=request.user)
        self.message_user(request, f"Disabled {n} entr(y/ies).", messages.SUCCESS)

    @admin.action(description="Enable all hashes of the selected contents", permissions=["change"])
    def enable_contents(self, request, queryset):
        n = services.set_contents_enabled(queryset, True, actor=request.user)
        self.message_user(request, f"Enabled {n} entr(y/ies).", messages.SUCCESS)


@admin.register(BankEntry)
class BankEntryAdmin(admin.ModelAdmin):
    list_display = ("id", "bank", "algorithm", "value", "content", "enabled", "note", "created_at")
    list_filter = ("bank", "algorithm", "enabled", "content__source")
    search_fields = ("value", "note")
    list_select_related = ("bank", "content__bank")
    fields = ("bank", "content", "algorithm", "value", "note", "enabled", "created_by")
    readonly_fields = ("bank", "content", "algorithm", "value", "note", "created_by")
    actions = ["disable_entries", "enable_entries"]

    def has_add_permission(self, request):
        return False  # entries come from pictures, hash lists and reviewed items

    def has_delete_permission(self, request, obj=None):
        return False  # disable instead

    def save_model(self, request, obj, form, change):
        if "enabled" in form.changed_data:
            services.set_entries_enabled([obj], obj.enabled, actor=request.user)

    @admin.action(description="Disable the selected entries", permissions=["change"])
    def disable_entries(self, request, queryset):
        n = services.set_entries_enabled(queryset, False, actor=request.user)
        self.message_user(request, f"Disabled {n} entr(y/ies).", messages.SUCCESS)

    @admin.action(description="Enable the selected entries", permissions=["change"])
    def enable_entries(self, request, queryset):
        n = services.set_entries_enabled(queryset, True, actor=request.user)
        self.message_user(request, f"Enabled {n} entr(y/ies).", messages.SUCCESS)


@admin.register(BankChange)
class BankChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "bank_name", "entry", "content", "actor")
    list_filter = ("action", "bank")
    search_fields = ("bank_name",)


@admin.action(description="Add to a hash bank…")
def add_to_bank(modeladmin, request, queryset):
    """MediaItem admin action: hash each selected item's original into a chosen bank."""
    if not request.user.has_perm("hashing.add_bankentry"):
        modeladmin.message_user(request, "You may not add entries to banks.", messages.ERROR)
        return None
    form = AddToBankForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        bank, note = form.cleaned_data["bank"], form.cleaned_data["note"]
        added = 0
        for item in queryset:
            try:
                services.add_item_to_bank(item, bank, actor=request.user, note=note)
                added += 1
            except services.BankError as exc:
                modeladmin.message_user(request, f"{item}: {exc}", messages.ERROR)
        modeladmin.message_user(
            request, f"Added {added} item(s) to “{bank.name}”.", messages.SUCCESS
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": "Add items to a hash bank",
        "items": queryset,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/hashing/add_to_bank.html", context)


# Items are the uploads app's; banks are ours, so the action is attached from this side.
MediaItemAdmin.actions = [*MediaItemAdmin.actions, add_to_bank]
