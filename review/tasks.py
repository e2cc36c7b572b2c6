"""Background jobs: thin wrappers around the pipeline and the claims (tasks take ids)."""

import logging
import threading

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from . import claims, pipeline
from .classifiers.registry import warm_up
from .models import Policy

log = logging.getLogger(__name__)


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


@worker_process_init.connect(weak=False, dispatch_uid="review.warm_classifiers")
def warm_classifiers(**kwargs) -> None:
    """A worker process loads the policies' classifiers as it starts, in a thread (Celery
    gives process init 4 s before it kills the child; loading takes ~1-3 s here), so that
    the first item waits at most for what is left of the loading, not for all of it."""
    if not settings.CLASSIFIERS_WARM_AT_START:
        return
    try:
        names = sorted({n for p in Policy.objects.all() for n in p.provider_names})
    except Exception:  # noqa: BLE001 - no database yet: the first item loads them
        log.warning("could not read the policies' classifiers at start", exc_info=True)
        return
    threading.Thread(target=warm_up, args=(names,), name="warm-classifiers", daemon=True).start()
