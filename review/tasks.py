from celery import shared_task

from . import queue, services


@shared_task(name="review.analyse_item", acks_late=True)
def analyse_item(item_id: int, request_id: str | None = None) -> str | None:
    analysis = services.analyse_item(item_id, request_id=request_id)
    return analysis.outcome if analysis else None


@shared_task(name="review.release_expired_claims")
def release_expired_claims() -> int:
    """Beat: a crashed tab's claims return to the queue once their lease runs out."""
    return queue.release_expired()
