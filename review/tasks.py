from celery import shared_task

from . import services


@shared_task(name="review.analyse_item", acks_late=True)
def analyse_item(item_id: int, request_id: str | None = None) -> str | None:
    analysis = services.analyse_item(item_id, request_id=request_id)
    return analysis.outcome if analysis else None
