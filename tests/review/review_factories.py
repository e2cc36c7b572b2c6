"""Items already sent to review, made directly (no classifier) for the review tests."""

import hashlib
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.services import author_for_user
from review.claims import claim_items, enqueue_for_review
from review.decisions import record_decision
from review.models import QueueEntry
from review.pipeline import analyse_item
from tests.factories import MediaItemFactory
from uploads.intake import ingest_bytes
from uploads.models import MediaItem


def review_item(
    uploader=None,
    *,
    explicit=0.4,
    suggestive=0.1,
    age=timedelta(0),
    duplicates=(),
    data: bytes | None = None,
    name="photo.jpg",
) -> MediaItem:
    """One item in review and in the queue. With `data` the original is stored for real."""
    item = MediaItemFactory.build(
        original_name=name,
        size=len(data or b"x"),
        uploader=uploader,
        status=MediaItem.Status.REVIEW,
        reason="explicit_for_review",
        reason_text=f"Possibly explicit ({round(explicit * 100)}%; review from 30%).",
        category="suggestive" if suggestive > explicit else "neutral",
        confidence=max(explicit, suggestive),
        scores={"explicit": explicit, "suggestive": suggestive},
        matches={"duplicates": [_dup(d) for d in duplicates], "bank": None},
    )
    if data is not None:
        item.sha256 = hashlib.sha256(data).hexdigest()
        item.file.save("upload.jpg", ContentFile(data), save=False)
    item.save()
    if age:
        MediaItem.objects.filter(pk=item.pk).update(created_at=timezone.now() - age)
        item.refresh_from_db()
    enqueue_for_review(item)
    return item


def rejected_item(data: bytes, uploader, moderator, name="cat.jpg") -> MediaItem:
    """An uploaded picture, analysed (its hashes stored), sent to review and rejected by a
    moderator through the queue."""
    item = ingest_bytes(data, name=name, source="web", uploader=uploader)
    analyse_item(item.pk)
    MediaItem.objects.filter(pk=item.pk).update(status=MediaItem.Status.REVIEW)
    item.refresh_from_db()
    enqueue_for_review(item)
    claim_items(moderator, 1)
    record_decision(moderator, item, "reject", "Known banned image")
    item.refresh_from_db()
    return item


def _dup(other: MediaItem, distance=3) -> dict:
    return {
        "id": str(other.uuid),
        "pk": other.pk,
        "distance": distance,
        "exact": False,
        "status": other.status,
    }


def many_review_items(count: int, uploader=None) -> list[int]:
    """Bulk version for the concurrency tests: `count` queued items, severities spread."""
    author = author_for_user(uploader) if uploader else None
    now = timezone.now()
    items = MediaItem.objects.bulk_create(
        MediaItemFactory.build(
            sha256=f"{i:064x}",
            width=1,
            height=1,
            source=MediaItem.Source.API,
            uploader=uploader,
            author=author,
            status=MediaItem.Status.REVIEW,
            scores={"explicit": (i % 97) / 97},
        )
        for i in range(count)
    )
    if not items or items[0].pk is None:  # backends that do not return ids
        items = list(MediaItem.objects.filter(status=MediaItem.Status.REVIEW).order_by("pk"))
    QueueEntry.objects.bulk_create(
        [
            QueueEntry(
                item=item,
                severity=item.scores["explicit"],
                item_created_at=now - timedelta(seconds=i),
            )
            for i, item in enumerate(items)
        ]
    )
    return [item.pk for item in items]
