import logging

from celery import shared_task
from django.core.cache import cache

from . import intake, services
from .models import MediaItem

log = logging.getLogger(__name__)

# How long a requested public copy is not asked for again (a feed re-asks on every view).
PUBLIC_COPY_RETRY_S = 300


@shared_task(name="uploads.requeue_stuck_items")
def requeue_stuck_items() -> int:
    """Items left 'processing' (broker down, worker killed) are analysed again."""
    return intake.requeue_stuck_items()


@shared_task(name="uploads.make_public_copy", acks_late=True)
def make_public_copy(item_id: int) -> str | None:
    """The public rendition of an item that has none (made before this existed, or its
    analysis failed before making it), in the worker."""
    item = MediaItem.objects.filter(pk=item_id).first()
    return services.make_public_copy(item) if item is not None else None


def request_public_copy(item: MediaItem) -> None:
    """Ask a worker for the missing public copy, at most once per PUBLIC_COPY_RETRY_S per
    item. Never raises (broker down: the next view after the pause asks again)."""
    if not cache.add(f"uploads.public_copy.{item.uuid.hex}", 1, PUBLIC_COPY_RETRY_S):
        return
    try:
        make_public_copy.delay(item.pk)
    except Exception:
        log.exception("could not ask for the public copy of item %s", item.pk)
