"""One intake for every source (web page, API, Slack, admin): validate, keep, analyse.

``take`` receives a batch and answers in one shape, accepted items and refusals, whatever
the source; the batch rules (how many at once, an empty request, a banned author) live
here and nowhere else. The analysis is started after commit through the one hook the
review app installs (``set_analysis_hook``), so this app never imports the apps above it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import Author
from accounts.services import author_for_user
from moderation_site.errors import Forbidden

from .kinds import kind_for, largest_upload_bytes
from .models import MediaItem
from .urlfetch import FetchRefused, fetch_url
from .validation import RefusedUpload, check_size

log = logging.getLogger(__name__)


class AuthorBanned(Forbidden):
    code = "banned"
    message = "Your account is banned, so uploads are refused. Contact the moderators to appeal."
    default_detail = message


@dataclass(frozen=True)
class Submission:
    """One thing sent in: bytes (or a reader and a size known before reading) or a URL."""

    name: str = ""
    data: bytes | None = None
    read: Callable[[], bytes] | None = None
    size: int | None = None
    url: str = ""


@dataclass(frozen=True)
class Refusal:
    name: str
    code: str
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "code": self.code, "detail": self.detail}


@dataclass
class IntakeResult:
    accepted: list[MediaItem] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    banned: bool = False

    @property
    def status(self) -> int:
        """200 when anything was taken; else 403 for a banned author, 400 for bad input."""
        if self.accepted:
            return 200
        return 403 if self.banned else 400


def take(
    submissions: Sequence[Submission],
    *,
    source: str,
    uploader=None,
    author=None,
    source_ref: dict | None = None,
) -> IntakeResult:
    """Validate and keep each submission; one refusal does not stop the others.

    Nothing is taken from a batch over ``UPLOAD_MAX_FILES`` or from a banned author. An
    author banned part-way (an earlier item of the batch was known-bad content) keeps
    what was taken before, and the rest is refused.
    """
    result = IntakeResult()
    if len(submissions) > settings.UPLOAD_MAX_FILES:
        detail = f"At most {settings.UPLOAD_MAX_FILES} files at once."
        result.refused.append(Refusal("", "too_many_files", detail))
        return result
    if not submissions:
        detail = "Choose at least one image or paste an image URL."
        result.refused.append(Refusal("", "empty", detail))
        return result
    if author is None and uploader is not None:
        author = author_for_user(uploader)
    for submission in submissions:
        label = submission.name or submission.url[:200]
        try:
            result.accepted.append(
                _take_one(
                    submission,
                    source=source,
                    uploader=uploader,
                    author=author,
                    source_ref=source_ref,
                )
            )
        except (RefusedUpload, FetchRefused) as exc:
            result.refused.append(Refusal(label, exc.code, exc.message))
        except AuthorBanned as exc:
            result.refused.append(Refusal("", AuthorBanned.code, str(exc)))
            result.banned = True
            break
    return result


def _take_one(submission: Submission, **kwargs) -> MediaItem:
    if submission.url:
        return ingest_url(submission.url, **kwargs)
    data = submission.data
    if data is None:
        if submission.size is not None:
            check_size(submission.size, largest_upload_bytes())  # before reading it
        data = submission.read() if submission.read else b""
    return ingest_bytes(data, name=submission.name, **kwargs)


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
    """Validate and keep one item; file and row are written together or not at all.

    Raises RefusedUpload (bad input) or AuthorBanned. The analysis starts after commit.
    """
    if author is None and uploader is not None:
        author = author_for_user(uploader)
    if (
        author is not None
        and Author.objects.filter(pk=author.pk, status=Author.Status.BANNED).exists()
    ):
        raise AuthorBanned(AuthorBanned.message)  # read fresh: a cached author may be stale
    # Each kind has its cap (a video's is the policy's, 200 MB; an image's 20 MB): the
    # largest before the kind is known, then the kind's own.
    check_size(len(data), largest_upload_bytes())
    if not data:
        raise RefusedUpload("empty", "The file is empty.")
    kind = kind_for(data)
    info = kind.validate(data, max_bytes=kind.max_bytes(), max_pixels=settings.UPLOAD_MAX_PIXELS)
    item = MediaItem(
        kind=info.kind,
        original_name=os.path.basename(name or "")[:255],
        sha256=info.sha256,
        mime=info.mime,
        width=info.width,
        height=info.height,
        size=info.size,
        details=info.details,
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
            transaction.on_commit(lambda: start_analysis(item.pk))
    except Exception:
        if item.file.name:
            item.file.storage.delete(item.file.name)
        raise
    return item


def ingest_url(url: str, **kwargs) -> MediaItem:
    """Fetch through the SSRF guard, then the same intake as a file."""
    fetched = fetch_url(url, max_bytes=largest_upload_bytes(), timeout=settings.URL_FETCH_TIMEOUT)
    name = os.path.basename(fetched.final_url.split("?", 1)[0]) or "url-image"
    return ingest_bytes(fetched.data, name=name, source_url=url, **kwargs)


# -- the analysis hook ------------------------------------------------------------------------

_analysis_hook: Callable[[int], None] | None = None


def set_analysis_hook(hook: Callable[[int], None]) -> None:
    """The review app installs its task here at start-up (review.apps)."""
    global _analysis_hook
    _analysis_hook = hook


def start_analysis(item_id: int) -> None:
    if _analysis_hook is None:
        log.error("no analysis hook installed: item %s stays processing", item_id)
        return
    try:
        _analysis_hook(item_id)
    except Exception:  # broker down: the item stays "processing" and is retried by the sweeper
        log.exception("could not start the analysis of item %s", item_id)


def requeue_stuck_items(older_than: timedelta = timedelta(minutes=5)) -> int:
    """Start again every item still processing after `older_than` (the analysis is
    idempotent)."""
    stuck = MediaItem.objects.filter(
        status=MediaItem.Status.PROCESSING, created_at__lt=timezone.now() - older_than
    ).values_list("pk", flat=True)
    count = 0
    for pk in stuck.iterator():
        start_analysis(pk)
        count += 1
    return count
