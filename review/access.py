"""Who may review: the one permission check of the review workflow and the moderator's
look-up of an item, used by pages, the API, consumers and tasks alike."""

from django.core.exceptions import PermissionDenied

from uploads.models import MediaItem
from uploads.services import item_for_user


def is_moderator(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.has_perm("review.moderate")
    )


def require_moderator(user):
    """The one permission check of the review workflow (pages, API, consumers)."""
    if not is_moderator(user):
        raise PermissionDenied("Only moderators can review items.")
    return user


def item_for_moderator(user, item_uuid) -> MediaItem:
    """A moderator's look-up of any item; raises PermissionDenied or MediaItem.DoesNotExist."""
    require_moderator(user)
    return item_for_user(user, item_uuid)
