from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The public API for third-party clients: keys, scopes, analyses, hashes, banks and
    callbacks, on the one intake and the one answer vocabulary of the apps below."""

    name = "api"
    verbose_name = "Public API"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from accounts.sessions import access_ended
        from moderation_site.metrics import register_collector
        from review.policy import register_policy_source
        from uploads.events import item_changed
        from uploads.models import MediaItem

        from . import schema, tasks  # noqa: F401  (schema: the OpenAPI description of keys)
        from .authentication import forget_keys
        from .metrics import DeliveryCollector
        from .models import ApiClient, ApiKey
        from .services import client_policy

        # A decided item of a client with a callback URL is POSTed to it (api.callbacks).
        item_changed.connect(tasks.on_item_changed, dispatch_uid="api.callbacks", weak=False)
        # A client's items are judged by its own policy (ApiClient.policy), else the site's.
        register_policy_source(MediaItem.Source.API, client_policy)
        # Each process keeps valid keys for API_KEY_CACHE_S: a change to a key, a client or
        # a user empties this process's copy at once (api.authentication).
        for model in (ApiKey, ApiClient, get_user_model()):
            for signal in (post_save, post_delete):
                signal.connect(forget_keys, sender=model, dispatch_uid=f"api.keys.{model}")
        access_ended.connect(forget_keys, dispatch_uid="api.keys.access_ended", weak=False)
        register_collector(DeliveryCollector())  # /metrics: callback delivery failures
