"""Background jobs: thin wrappers around the pipeline and the claims (tasks take ids)."""

from celery import shared_task

from . import claims, pipeline


@shared_task(name="review.analyse_item", acks_late=True)
def analyse_item(item_id: int, request_id: str | None = None) -> str | None:
    analysis = pipeline.analyse_item(item_id, request_id=request_id)
    return analysis.outcome if analysis else None


def enqueue_analysis(item_id: int) -> None:
    """The analysis hook uploads.intake calls after an item's commit (see review.apps)."""
    analyse_item.delay(item_id)


@shared_task(name="review.release_expired_claims")
def release_expired_claims() -> int:
    """Beat: a crashed tab's claims return to the queue once their lease runs out."""
    return claims.release_expired()
