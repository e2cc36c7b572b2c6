"""Who may see which item, and the community feed. Intake is in uploads.intake."""

import logging

from django.core.files.base import ContentFile

from moderation_site.errors import NotFound

from .kinds import get_kind
from .models import MediaItem
from .renditions import public_name

log = logging.getLogger(__name__)


class ItemNotFound(NotFound, MediaItem.DoesNotExist):
    """No such item, or one this user may not see: the same answer, so as not to reveal
    what exists."""

    default_detail = "No such item."


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


def shown_source_url(user, item: MediaItem) -> str:
    """The source URL as this user may see it: in full for staff and moderators, the host
    alone for everyone else, the uploader included (a pasted pre-signed URL's query string,
    path or user name can be a key)."""
    return item.source_url if sees_everything(user) else item.source_host


def item_for_user(user, item_uuid, *, original: bool = False) -> MediaItem:
    """The one permission-checked look-up of an item for pages, API and consumers."""
    item = MediaItem.objects.select_related("author", "duplicate_of").filter(uuid=item_uuid).first()
    if item is None:
        raise ItemNotFound
    allowed = can_view_original(user, item) if original else can_view_item(user, item)
    if not allowed:
        raise ItemNotFound  # same answer as missing: do not reveal what exists
    return item


def make_public_copy(item: MediaItem, data: bytes | None = None) -> str | None:
    """Make and store the kind's public rendition once, next to the original in the
    private storage; the analysis calls it in the worker (review.pipeline), with the bytes
    it has read. Returns the stored name, or None if it could not be made (logged: the
    view then says the copy is not ready). Never raises.

    Idempotent: a copy already stored is kept; of two runs racing, one copy is kept.
    """
    storage = item.file.storage
    name = public_name(item)
    try:
        if storage.exists(name):
            return name
        if data is None:
            with item.file.open("rb") as fh:
                data = fh.read()
        rendition = get_kind(item.kind).public_rendition(data, item.mime)
        saved = storage.save(name, ContentFile(rendition))
        if saved != name:  # another run stored it meanwhile: keep that one
            storage.delete(saved)
    except Exception:  # storage down, undecodable bytes: the original is untouched
        log.exception("could not make the public copy of item %s", item.pk)
        return None
    return name


def public_file(item: MediaItem):
    """The stored public rendition, opened; None when it has not been made (yet). Nothing
    is decoded here: a web request only ever streams the stored copy."""
    storage = item.file.storage
    name = public_name(item)
    if not storage.exists(name):
        return None
    return storage.open(name, "rb")
