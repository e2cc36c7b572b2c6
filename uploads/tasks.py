from celery import shared_task

from . import intake


@shared_task(name="uploads.requeue_stuck_items")
def requeue_stuck_items() -> int:
    """Items left 'processing' (broker down, worker killed) are analysed again."""
    return intake.requeue_stuck_items()
