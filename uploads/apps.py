from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "uploads"

    def ready(self):
        # Kinds in modules of their own register themselves on import.
        from . import text, video  # noqa: F401
