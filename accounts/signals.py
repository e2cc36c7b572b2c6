from django.db.models.signals import post_migrate
from django.dispatch import receiver

from .roles import sync_roles


@receiver(post_migrate, dispatch_uid="accounts.sync_roles")
def create_roles(sender, **kwargs):
    sync_roles()
