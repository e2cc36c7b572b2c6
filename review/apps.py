from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        user_logged_out.connect(release_claims_at_logout, dispatch_uid="review.release_at_logout")


def release_claims_at_logout(sender, request=None, user=None, **kwargs):
    """Logging out hands back everything the moderator held."""
    if user is not None and user.pk:
        from .queue import release_claims

        release_claims(user)
