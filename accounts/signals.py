from django.contrib.auth.signals import user_logged_out  # noqa: F401  (review connects to it)
from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def create_roles(sender, **kwargs):
    from .roles import sync_roles

    sync_roles()
