from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.roles import MODERATOR, POLICY_ADMIN, UPLOADER, sync_roles
from accounts.services import author_for_user

DEMO = [
    # username, password, groups, staff, superuser
    ("admin", "admin-demo-pass", [POLICY_ADMIN, MODERATOR, UPLOADER], True, True),
    ("moderator", "moderator-demo-pass", [MODERATOR, UPLOADER], False, False),
]


class Command(BaseCommand):
    help = "Create the demo admin and moderator (for local trials only) and print their logins."

    def handle(self, *args, **options):
        sync_roles()
        User = get_user_model()
        for username, password, groups, staff, superuser in DEMO:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
            user.is_staff, user.is_superuser = staff, superuser
            user.save()
            user.groups.add(*[Group.objects.get(name=g) for g in groups])
            author_for_user(user)
            self.stdout.write(f"  {username:<10} / {password}")
