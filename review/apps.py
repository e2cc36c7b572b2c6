from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate, post_save


class ReviewConfig(AppConfig):
    name = "review"

    def ready(self):
        # Django's place for wiring: the models are loaded only from here on.
        from accounts.sessions import access_ended, credential_of
        from moderation_site.metrics import register_collector
        from uploads.intake import set_analysis_hook
        from uploads.video import set_limits_hook

        from . import claims, tasks
        from .metrics import QueueCollector
        from .models import Policy

        set_analysis_hook(tasks.enqueue_analysis)
        register_collector(QueueCollector())  # /metrics: the queue's figures, at scrape time
        set_limits_hook(lambda: Policy.current().video_limits())  # the video caps

        def release_claims_at_logout(sender, request=None, user=None, **kwargs):
            """Logging out hands back what that session claimed; the same moderator's API
            token and other browsers keep theirs."""
            if user is not None and user.pk and request is not None:
                claims.release_at_logout(user, credential_of(request))

        def release_claims_when_access_ends(sender, user_id, **kwargs):
            """A ban or a deactivation (accounts.sessions.end_access) hands back everything
            the user held, at once."""
            claims.release_all_of(user_id)

        def seed_policy(sender, **kwargs):
            """Every migrate (and a test database's flush) makes the policy rows that are
            missing: a voter per registered algorithm, default categories and labels."""
            Policy.objects.get_or_create(pk=1)[0].seed_defaults()

        user_logged_out.connect(
            release_claims_at_logout, dispatch_uid="review.release_at_logout", weak=False
        )
        access_ended.connect(
            release_claims_when_access_ends, dispatch_uid="review.release_at_end", weak=False
        )
        post_migrate.connect(seed_policy, sender=self, dispatch_uid="review.seed", weak=False)
        # Claims cache the policy's claim numbers for a few seconds; an edit here is seen now.
        post_save.connect(
            claims.forget_claim_settings, sender=Policy, dispatch_uid="review.claim_settings"
        )
