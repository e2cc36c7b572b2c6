from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate, post_save
from django.dispatch import receiver

from .models import User
from .roles import sync_roles
from .sessions import close_session_sockets, end_access


@receiver(post_migrate, dispatch_uid="accounts.sync_roles")
def create_roles(sender, **kwargs):
    sync_roles()


@receiver(user_logged_out, dispatch_uid="accounts.close_sockets_at_logout")
def close_sockets_at_logout(sender, request=None, user=None, **kwargs):
    """A log-out closes the websockets of that browser session (sent before its flush)."""
    session = getattr(request, "session", None)
    close_session_sockets(getattr(session, "session_key", None))


@receiver(post_save, sender=User, dispatch_uid="accounts.end_deactivated")
def end_deactivated_user(sender, instance, created, update_fields=None, **kwargs):
    """Deactivating a user (admin, shell) closes their sockets and releases their claims.
    Saves that leave is_active out (a log-in's last_login) change nothing."""
    if instance.is_active or created:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    end_access(instance.pk, cause="deactivated")
