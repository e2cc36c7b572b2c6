from django.apps import AppConfig


class HashingConfig(AppConfig):
    name = "hashing"

    def ready(self):
        # Algorithms in modules of their own register themselves on import.
        from moderation_site.metrics import register_collector

        from . import text, video  # noqa: F401
        from .metrics import BankCollector

        register_collector(BankCollector())  # /metrics: bank index size and version
