"""Who may see which item, and the community feed. Intake is in uploads.intake."""

from django.core.files.base import ContentFile

from moderation_site.errors import NotFound

from .kinds import get_kind
from .models import MediaItem
from .renditions import public_name


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


def item_for_user(user, item_uuid, *, original: bool = False) -> MediaItem:
    """The one permission-checked look-up of an item for pages, API and consumers."""
    item = MediaItem.objects.select_related("author", "duplicate_of").filter(uuid=item_uuid).first()
    if item is None:
        raise ItemNotFound
    allowed = can_view_original(user, item) if original else can_view_item(user, item)
    if not allowed:
        raise ItemNotFound  # same answer as missing: do not reveal what exists
    return item


def public_file(item: MediaItem):
    """The kind's public rendition, stored on first request (idempotent: a lost race only
    writes twice)."""
    storage = item.file.storage
    name = public_name(item)
    if not storage.exists(name):
        with item.file.open("rb") as fh:
            data = fh.read()
        rendition = get_kind(item.kind).public_rendition(data, item.mime)
        name = storage.save(name, ContentFile(rendition))
    return storage.open(name, "rb")
