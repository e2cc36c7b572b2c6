from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import MODERATOR, POLICY_ADMIN, UPLOADER, sync_roles

# The names on the command line; the groups are accounts.roles'.
ROLES = {"uploader": UPLOADER, "moderator": MODERATOR, "policy_admin": POLICY_ADMIN}


class Command(BaseCommand):
    help = (
        "Give an existing user a role: uploader, moderator or policy_admin (a policy admin is "
        "also made staff, to reach /admin/). --revoke takes the role away (and, for "
        "policy_admin, staff status unless the user is a superuser)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=sorted(ROLES))
        parser.add_argument("--revoke", action="store_true", help="take the role away")

    def handle(self, *args, username, role, revoke, **options):
        sync_roles()
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(
                f"There is no user {username!r}. They sign up at /accounts/signup/ first "
                "(or: manage.py createsuperuser), then you give them the role."
            ) from None
        group = Group.objects.get(name=ROLES[role])
        if revoke:
            user.groups.remove(group)
            if role == "policy_admin" and not user.is_superuser:
                user.is_staff = False
        else:
            user.groups.add(group)
            if role == "policy_admin":
                user.is_staff = True
        user.save(update_fields=["is_staff"])
        roles = sorted(user.groups.values_list("name", flat=True)) or ["none"]
        action = "no longer has" if revoke else "now has"
        self.stdout.write(
            f"{user.get_username()} {action} the role {role}. Roles: {', '.join(roles)}"
            + ("; staff (admin site)." if user.is_staff else ".")
        )
        if not user.is_active:
            self.stdout.write(f"Note: {user.get_username()} is inactive and cannot sign in.")
