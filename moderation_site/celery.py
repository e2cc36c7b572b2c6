"""Celery app. Without REDIS_URL tasks run eagerly in-process (settings decide)."""

import os

from celery import Celery
from celery.signals import task_postrun

from .memory import release_freed_memory

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")

app = Celery("moderation_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# An analysis frees a decoded picture of up to 200 MB: back to the system after each task.
task_postrun.connect(release_freed_memory, weak=False, dispatch_uid="release_freed_memory")
