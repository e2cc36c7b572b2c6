"""Intake: validate, store privately, record, enqueue the analysis. Shared by web, API, Slack."""

import logging
import os
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Author
from accounts.services import author_for_user

from .models import MediaItem
from .urlfetch import fetch_url
from .validation import validate_image

log = logging.getLogger(__name__)


class AuthorBanned(PermissionDenied):
    message = "Your account is banned, so uploads are refused. Contact the moderators to appeal."


def ingest_bytes(
    data: bytes,
    *,
    name: str = "",
    source: str,
    uploader=None,
    author=None,
    source_url: str = "",
    source_ref: dict | None = None,
) -> MediaItem:
    """Validate and keep one image; file and row are written together or not at all.

    Raises RefusedUpload (bad input) or AuthorBanned. The analysis runs after commit.
    """
    if author is None and uploader is not None:
        author = author_for_user(uploader)
    if (
        author is not None
        and Author.objects.filter(pk=author.pk, status=Author.Status.BANNED).exists()
    ):
        raise AuthorBanned(AuthorBanned.message)  # read fresh: a cached author may be stale
    info = validate_image(
        data, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS
    )
    item = MediaItem(
        original_name=os.path.basename(name or "")[:255],
        sha256=info.sha256,
        mime=info.mime,
        width=info.width,
        height=info.height,
        size=info.size,
        source=source,
        source_url=source_url[:2000],
        source_ref=source_ref or {},
        uploader=uploader,
        author=author,
    )
    try:
        with transaction.atomic():
            item.file.save(f"upload{info.extension}", ContentFile(data), save=False)
            item.save()
            transaction.on_commit(lambda: enqueue_analysis(item.pk))
    except Exception:
        if item.file.name:
            item.file.storage.delete(item.file.name)
        raise
    return item


def ingest_url(url: str, **kwargs) -> MediaItem:
    """Fetch through the SSRF guard, then the same intake as a file."""
    fetched = fetch_url(
        url, max_bytes=settings.UPLOAD_MAX_BYTES, timeout=settings.URL_FETCH_TIMEOUT
    )
    name = os.path.basename(fetched.final_url.split("?", 1)[0]) or "url-image"
    return ingest_bytes(fetched.data, name=name, source_url=url, **kwargs)


def enqueue_analysis(item_id: int) -> None:
    from review.tasks import analyse_item

    try:
        analyse_item.delay(item_id)
    except Exception:  # broker down: the item stays "processing" and is retried by the sweeper
        log.exception("could not enqueue analysis of item %s", item_id)


def requeue_stuck_items(older_than: timedelta = timedelta(minutes=5)) -> int:
    """Enqueue again every item still processing after `older_than` (the analysis is idempotent)."""
    stuck = MediaItem.objects.filter(
        status=MediaItem.Status.PROCESSING, created_at__lt=timezone.now() - older_than
    ).values_list("pk", flat=True)
    count = 0
    for pk in stuck.iterator():
        enqueue_analysis(pk)
        count += 1
    return count


def feed_items():
    """What the community sees: passed and approved items, newest first."""
    return MediaItem.objects.filter(status__in=MediaItem.VISIBLE).select_related("author")


def sees_everything(user) -> bool:
    """Staff and moderators see every item and its exact original, flagged ones included."""
    return user.is_authenticated and (
        user.is_staff or user.has_perm("uploads.view_original") or user.has_perm("review.moderate")
    )


def can_view_item(user, item: MediaItem) -> bool:
    """An item's page and status: its uploader, anyone for visible items, and staff."""
    return user.is_authenticated and (
        item.uploader_id == user.pk or item.is_visible or sees_everything(user)
    )


def can_view_original(user, item: MediaItem) -> bool:
    """Staff and moderators see all; others see visible items and their own unflagged ones."""
    if sees_everything(user):
        return True
    if item.status in (MediaItem.Status.FLAGGED, MediaItem.Status.REJECTED):
        return False
    return can_view_item(user, item)


def can_view_exact_original(user, item: MediaItem) -> bool:
    """The byte-exact original (with its metadata): staff, moderators and the uploader."""
    return sees_everything(user) or item.uploader_id == user.pk


def item_for_user(user, item_uuid, *, original: bool = False) -> MediaItem:
    """The one permission-checked look-up of an item for pages, API and consumers."""
    item = MediaItem.objects.select_related("author", "duplicate_of").filter(uuid=item_uuid).first()
    if item is None:
        raise MediaItem.DoesNotExist
    allowed = can_view_original(user, item) if original else can_view_item(user, item)
    if not allowed:
        raise MediaItem.DoesNotExist  # same answer as missing: do not reveal what exists
    return item
