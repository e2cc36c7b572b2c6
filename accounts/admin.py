from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from moderation_site.admin import ReadOnlyAdmin

from .forms import AdminLoginForm
from .models import AccountEvent, Author, Strike, User
from .services import lift_ban

admin.site.register(User, UserAdmin)
admin.site.login_form = AdminLoginForm  # a banned admin is refused at log-in too


class StrikeInline(admin.TabularInline):
    model = Strike
    extra = 0
    can_delete = False
    readonly_fields = ("source", "reason", "item", "resulting_status", "created_by", "created_at")


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "status", "strikes", "banned_at")
    list_filter = ("kind", "status")
    search_fields = ("display_name", "external_id", "user__username")
    readonly_fields = ("strikes", "status", "banned_at", "created_at")
    inlines = [StrikeInline]
    actions = ["lift_bans"]

    @admin.action(description="Lift the ban of the selected authors", permissions=["change"])
    def lift_bans(self, request, queryset):
        lifted = 0
        for author in queryset.filter(status=Author.Status.BANNED):
            lift_ban(author, actor=request.user, note="Lifted in admin.")
            lifted += 1
        self.message_user(request, f"Lifted {lifted} ban(s).", messages.SUCCESS)


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "author", "action", "actor")
    list_filter = ("action",)
