"""Admin pieces shared by the apps."""

import csv

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone


@admin.action(description="Export the selected rows as CSV")
def export_as_csv(modeladmin, request, queryset):
    """Every concrete field, foreign keys as ids; cells that a spreadsheet would run as a
    formula are quoted (reasons are free text)."""
    fields = [f for f in queryset.model._meta.concrete_fields]
    name = queryset.model._meta.model_name
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow([f.attname for f in fields])
    for row in queryset.values_list(*[f.attname for f in fields]).iterator():
        writer.writerow([_cell(v) for v in row])
    return response


def _cell(value):
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit records (decisions, analyses, policy, bank and account changes) are never edited
    or deleted, not even by superusers; they can be listed, filtered and exported."""

    actions = [export_as_csv]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
