from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The public API for third-party clients: keys, scopes, analyses, hashes, banks and
    callbacks, on the one intake and the one answer vocabulary of the apps below."""

    name = "api"
    verbose_name = "Public API"

    def ready(self):
        # A decided item of a client with a callback URL is POSTed to it (api.callbacks).
        from uploads.events import item_changed

        from . import schema, tasks  # noqa: F401  (schema: the OpenAPI description of keys)

        item_changed.connect(tasks.on_item_changed, dispatch_uid="api.callbacks", weak=False)
