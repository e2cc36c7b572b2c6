"""Analyses: a client sends an item (a URL or a file, for one of its users) and gets the
verdict, now or later.

``POST analyses`` takes one item through the one intake (uploads.intake.ingest_bytes: the
same validation, storage and analysis as an upload, source "api"); a Submission row links it
to the client, its ``user_uuid`` (an Author scoped to the client, so strikes and bans
apply), its metadata and its Idempotency-Key. ``?wait=`` holds the answer until the item
is decided, up to ``API_WAIT_MAX_S``; otherwise, or when the analysis takes longer, 202 and
the status URL.

Idempotency: the key is unique per client (a constraint on Submission). A keyed request
takes a row lock on its client (``SELECT ... FOR NO KEY UPDATE``, which does not block the
client's other inserts) around "is the key taken? else ingest and record it", so N
concurrent identical posts make one item and one analysis; the constraint catches the
race where no row lock exists (SQLite, whose writes are serialised anyway). The same key
with the same body answers the same analysis (its current state, header
``Idempotent-Replayed: true``); with another body, 409.

``POST analyses/batch`` fetches the batch's URLs ``max_concurrent`` at a time, then takes
each item alone (one bad item fails alone) in input order. The same bytes for the same user
twice are one item and one analysis: the later position answers with the first's
(``same_as``). Near copies (other bytes a quorum of hash voters agree on) are analysed each:
a crop or an overlay can change what the classifier sees, and each needs its own verdict.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.models import Author
from moderation_site.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, describe
from uploads.intake import AuthorBanned, ingest_bytes
from uploads.kinds import largest_upload_bytes
from uploads.models import MediaItem
from uploads.text import envelope
from uploads.urlfetch import FetchRefused, fetch_url
from uploads.validation import RefusedUpload, check_size

from .models import ANALYSE, ApiClient, Submission
from .serializers import (
    BANNED,
    DECISION,
    DECISIONS,
    AnalysisSerializer,
    BatchOptions,
    BatchRequest,
    BatchResponse,
    FileAnalysisRequest,
    LogFilters,
    PageSerializer,
    TextAnalysisRequest,
    UrlAnalysisRequest,
    analysis_payload,
    status_url,
    summary_payload,
)
from .services import author_for
from .views import ClientView

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_CONCURRENT = 10
# The wait polls the item's status (one indexed read): 2 ms, then 1.5x longer, at most 20 ms
# apart, so a verdict is seen about 10 ms after the worker commits it at worst on average
# (100 ms apart cost the sequential benchmark 35 ms an item).
POLL_FIRST_S, POLL_MAX_S = 0.002, 0.02
_STATUS_OF = {word: status for status, word in DECISION.items()}


def wait_cap() -> float:
    return float(getattr(settings, "API_WAIT_MAX_S", 5.0))


def batch_wait_cap() -> float:
    return float(getattr(settings, "API_BATCH_WAIT_MAX_S", 30.0))


def batch_limit(client: ApiClient) -> int:
    """Items per batch at most: the client's policy's cap (Policy.batch_max_items)."""
    return client.judging_policy().batch_max_items


# -- refusals ---------------------------------------------------------------------------------


class AuthorRefused(Forbidden):
    """The client's user is banned: nothing of theirs is taken (403, code author_banned)."""

    code = "author_banned"
    default_detail = (
        "This user is banned, so their content is refused. A moderator can lift the ban."
    )

    def body(self) -> dict:
        return {"code": self.code, "detail": self.detail, "author_status": Author.Status.BANNED}


def _on_field(exc: DomainError, field: str) -> DomainError:
    """The refusal, with its message under the input field it is about."""
    exc.fields = {field: [exc.detail]}
    return exc


def _digest(parts: dict) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def wait_seconds(request, cap: float, default: float = 0.0) -> float:
    """``?wait=`` as seconds within [0, cap] (above the cap: the cap); absent: ``default``."""
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return min(default, cap)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise Invalid(
            "wait is a number of seconds, e.g. wait=5.",
            fields={"wait": [f"A number of seconds from 0 (at most {cap:g} are waited)."]},
        )
    return min(value, cap)


def idempotency_key(request) -> str:
    key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    if len(key) > 255:
        raise Invalid(
            "The Idempotency-Key is too long.",
            fields={IDEMPOTENCY_HEADER: ["At most 255 characters."]},
        )
    return key


# -- taking one item --------------------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    submission: Submission
    replayed: bool = False


def _replay(client: ApiClient, key: str, digest: str) -> Submission | None:
    existing = (
        Submission.objects.select_related("item", "item__author")
        .filter(client=client, idempotency_key=key)
        .first()
    )
    if existing is not None and existing.body_digest != digest:
        raise Conflict(
            "This Idempotency-Key was already used with another request; use a new key "
            "for a new request.",
            code="idempotency_conflict",
        )
    return existing


def check_author(author: Author) -> None:
    if author.status == Author.Status.BANNED:
        raise AuthorRefused()


def fetch(url: str) -> tuple[bytes, str]:
    """The URL's bytes through the SSRF guard, and a name from its last path segment."""
    try:
        answer = fetch_url(
            url, max_bytes=largest_upload_bytes(), timeout=settings.URL_FETCH_TIMEOUT
        )
    except FetchRefused as exc:
        raise _on_field(exc, "url") from None
    name = answer.final_url.split("?", 1)[0].rsplit("/", 1)[-1] or "url-image"
    return answer.data, name


def submit(
    client: ApiClient,
    *,
    user_uuid: str,
    metadata: dict | None = None,
    url: str = "",
    data: bytes | None = None,
    name: str = "",
    key: str = "",
    digest: str = "",
    batch=None,
    position: int | None = None,
    author: Author | None = None,
    field: str = "",
) -> Taken:
    """Take one item for a client's user. ``data`` (bytes already in hand) or ``url``
    (fetched here, outside any lock). Raises DomainErrors with field messages."""
    author = author or author_for(client, user_uuid)
    check_author(author)
    if key:
        existing = _replay(client, key, digest)  # a retry: no fetch, no work
        if existing is not None:
            return Taken(existing, replayed=True)
    field = field or ("url" if url else "file")
    if data is None:
        data, name = fetch(url)
    made = None
    try:
        with transaction.atomic():
            if key:
                # One keyed request of this client at a time from here to the commit.
                list(ApiClient.objects.select_for_update(no_key=True).filter(pk=client.pk))
                existing = _replay(client, key, digest)
                if existing is not None:
                    return Taken(existing, replayed=True)
            made = ingest_bytes(
                data,
                name=name,
                source=MediaItem.Source.API,
                uploader=client.user,
                author=author,
                source_url=url,
            )
            submission = Submission.objects.create(
                client=client,
                item=made,
                user_uuid=user_uuid,
                metadata=metadata or {},
                idempotency_key=key,
                body_digest=digest,
                batch=batch,
                position=position,
            )
    except RefusedUpload as exc:
        raise _on_field(exc, field) from None
    except AuthorBanned:  # banned between the check above and the intake's own
        raise AuthorRefused() from None
    except IntegrityError:
        _drop_file(made)
        existing = _replay(client, key, digest) if key else None
        if existing is None:
            raise
        return Taken(existing, replayed=True)
    except Exception:
        _drop_file(made)
        raise
    submission.item = made
    return Taken(submission)


def _drop_file(item: MediaItem | None) -> None:
    """The stored original of an item whose row went with a rollback."""
    if item is not None and item.file.name:
        item.file.storage.delete(item.file.name)


def wait_for(item_ids: list[int], seconds: float) -> None:
    """Until none of the items is processing, or ``seconds`` have passed. Inside a
    transaction nothing can change (the analysis starts after commit): no wait."""
    if seconds <= 0 or connection.in_atomic_block or not item_ids:
        return
    deadline = time.monotonic() + seconds
    delay = POLL_FIRST_S
    while MediaItem.objects.filter(pk__in=item_ids, status=MediaItem.Status.PROCESSING).exists():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        pause(min(delay, left))
        delay = min(delay * 1.5, POLL_MAX_S)


def pause(seconds: float) -> None:
    """Sleep between two polls holding no database connection. A pooled one (settings:
    DATABASE_POOL) goes back to the process's pool for the sleep and the next poll takes
    one again. A batch may wait 30 s: as many such waits as the pool holds
    (DATABASE_POOL_MAX_SIZE) took every connection of their web process, and its next
    request of any kind waited for one, failing after DATABASE_POOL_TIMEOUT (10 s). Without
    a pool the connection is kept: a new one costs ~3 ms, and polls are 2-20 ms apart."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()
    time.sleep(seconds)


def settled(submission_id: int, seconds: float) -> Submission:
    """One submission read afresh once its item is decided, or after ``seconds``; each
    poll is the read that answers (with tasks in-process, the first one already does)."""
    deadline = time.monotonic() + seconds
    delay = POLL_FIRST_S
    while True:
        submission = fresh([submission_id])[submission_id]
        left = deadline - time.monotonic()
        if (
            submission.item.status != MediaItem.Status.PROCESSING
            or left <= 0
            or connection.in_atomic_block
        ):
            return submission
        pause(min(delay, left))
        delay = min(delay * 1.5, POLL_MAX_S)


def fresh(submission_ids: list[int]) -> dict[int, Submission]:
    return Submission.objects.select_related("item", "item__author").in_bulk(submission_ids)


# -- a batch ----------------------------------------------------------------------------------


@dataclass
class Slot:
    """One position of a batch: its fields, then what became of it."""

    index: int
    fields: dict | None = None
    error: dict | None = None
    status: int = 0
    submission: Submission | None = None
    same_as: int | None = None
    data: bytes | None = None
    name: str = ""


def _error(exc: Exception) -> tuple[int, dict]:
    if isinstance(exc, AuthorRefused):
        return exc.status, exc.body()
    described = describe(exc)
    if described is None:  # never a raw exception in an answer
        log.error("batch item failed unexpectedly", exc_info=exc)
        return 500, {"code": "server_error", "detail": "This item could not be taken."}
    return described


def _fetched(url: str):
    try:
        return fetch(url)
    except Exception as exc:  # each URL's failure is its own item's answer
        return exc
    finally:
        # A fetch thread may read the policy (the size cap): hand its connection back to
        # the pool, or the thread would keep it (settings: DATABASE_POOL).
        connections.close_all()  # this thread's connections only


def run_batch(
    client: ApiClient, items: list, *, max_concurrent: int, wait: float, batch
) -> list[Slot]:
    """Each item validated, fetched (``max_concurrent`` at a time; a text item has nothing to
    fetch) and taken on its own, in input order; the same bytes for the same user are taken
    once."""
    slots = []
    for index, raw in enumerate(items):
        slot = Slot(index)
        # A text item names its text (and no URL); anything else is read as a URL item,
        # so its errors name the URL's fields.
        is_text = isinstance(raw, dict) and "text" in raw and "url" not in raw
        checked = (TextAnalysisRequest if is_text else UrlAnalysisRequest)(data=raw)
        if checked.is_valid():
            slot.fields = dict(checked.validated_data)
        else:
            slot.status, slot.error = _error(ValidationError(checked.errors))
        slots.append(slot)
    authors: dict[str, Author] = {}
    for slot in slots:
        if slot.fields is None:
            continue
        user = slot.fields["user_uuid"]
        if user not in authors:
            authors[user] = author_for(client, user)
        if authors[user].status == Author.Status.BANNED:
            slot.status, slot.error = _error(AuthorRefused())
            slot.fields = None
    urls = list(dict.fromkeys(s.fields["url"] for s in slots if s.fields and "url" in s.fields))
    with ThreadPoolExecutor(max_workers=max(1, min(max_concurrent, len(urls) or 1))) as pool:
        got = dict(zip(urls, pool.map(_fetched, urls), strict=True))
    owners: dict[tuple[str, str], Slot] = {}
    for slot in slots:
        if slot.fields is None:
            continue
        field = "url" if "url" in slot.fields else "text"
        if field == "text":
            answer = (envelope(slot.fields["text"], slot.fields["thread_context"]), "text")
        else:
            answer = got[slot.fields["url"]]
        if isinstance(answer, Exception):
            slot.status, slot.error = _error(answer)
            continue
        data, name = answer
        user = slot.fields["user_uuid"]
        same = (hashlib.sha256(data).hexdigest(), user)
        if same in owners:
            first = owners[same]
            slot.same_as, slot.submission = first.index, first.submission
            slot.status, slot.error = first.status, first.error
            continue
        owners[same] = slot
        try:
            taken = submit(
                client,
                user_uuid=user,
                metadata=slot.fields.get("metadata"),
                url=slot.fields.get("url", ""),
                data=data,
                name=name,
                batch=batch,
                position=slot.index,
                author=authors[user],
                field=field,
            )
        except Exception as exc:
            if isinstance(exc, RefusedUpload):
                exc = _on_field(exc, field)  # the URL's content (or the text) was refused
            slot.status, slot.error = _error(exc)
            if isinstance(exc, AuthorRefused):
                authors[user].status = Author.Status.BANNED
            continue
        slot.submission = taken.submission
    taken_ids = [s.submission.pk for s in slots if s.submission is not None]
    wait_for([s.submission.item_id for s in slots if s.submission is not None], wait)
    now = fresh(taken_ids)
    for slot in slots:
        if slot.submission is not None:
            slot.submission = now[slot.submission.pk]
            processing = slot.submission.item.status == MediaItem.Status.PROCESSING
            slot.status = 202 if processing else 200
    return slots


# -- the log ----------------------------------------------------------------------------------


class LogCursor(CursorPagination):
    ordering = ("-created_at", "-pk")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


LOG_PARAMETERS = [
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="ISO 8601."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="ISO 8601."),
    OpenApiParameter("decision", OpenApiTypes.STR, enum=list(DECISIONS)),
    OpenApiParameter("reason", OpenApiTypes.STR, description="A reason code, e.g. bank_match."),
    OpenApiParameter("user_uuid", OpenApiTypes.STR, description="One of your users."),
    OpenApiParameter("batch", OpenApiTypes.UUID, description="The batch_id of a batch."),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="From next or previous."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200 (50)."),
]


def client_log(client: ApiClient, params) -> object:
    """The client's submissions, newest first, filtered by ``params`` (400 on bad ones)."""
    filters = LogFilters(data=params)
    filters.is_valid(raise_exception=True)
    f = filters.validated_data
    rows = Submission.objects.filter(client=client).select_related("item", "item__author")
    if "created_after" in f:
        rows = rows.filter(created_at__gte=f["created_after"])
    if "created_before" in f:
        rows = rows.filter(created_at__lt=f["created_before"])
    if "decision" in f:
        rows = rows.filter(item__status=_STATUS_OF.get(f["decision"], f["decision"]))
    if "reason" in f:
        rows = rows.filter(item__reason=f["reason"])
    if "user_uuid" in f:
        rows = rows.filter(user_uuid=f["user_uuid"])
    if "batch" in f:
        rows = rows.filter(batch=f["batch"])
    return rows


LOG_COLUMNS = (
    "created_at",
    "analysis_id",
    "client",
    "user_uuid",
    "author_status",
    "decision",
    "reason",
    "reason_text",
    "category",
    "confidence",
    "source_host",
    "batch",
    "position",
    "idempotency_key",
    "analysed_at",
    "decided_at",
)


def log_csv(queryset):
    """The log as CSV text, a row at a time (streamed); cells a spreadsheet would run as a
    formula are quoted (reasons and user ids are the client's or a moderator's text)."""
    buffer = _Line()
    writer = csv.writer(buffer)
    for row in log_rows(queryset):
        yield writer.writerow([_cell(v) for v in row])


class _Line:
    def write(self, value):
        return value


def _cell(value):
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def log_rows(queryset):
    """The log as CSV rows (admin's export): the header, then one row per submission."""
    yield LOG_COLUMNS
    rows = queryset.select_related("item", "item__author", "client").order_by("-created_at")
    for s in rows.iterator(chunk_size=500):
        item = s.item
        yield (
            s.created_at.isoformat(),
            str(item.uuid),
            s.client.name,
            s.user_uuid,
            item.author.status if item.author_id else "",
            DECISION.get(item.status, "processing"),
            item.reason,
            item.reason_text,
            item.category,
            "" if item.confidence is None else f"{item.confidence:.4f}",
            item.source_host,
            str(s.batch or ""),
            "" if s.position is None else s.position,
            s.idempotency_key,
            item.analysed_at.isoformat() if item.analysed_at else "",
            item.decided_at.isoformat() if item.decided_at else "",
        )


# -- views ------------------------------------------------------------------------------------

WAIT_PARAMETER = OpenApiParameter(
    "wait",
    OpenApiTypes.NUMBER,
    description="Seconds to wait for the verdict (at most API_WAIT_MAX_S, 5 by default); "
    "without it, or when the analysis takes longer, 202 and the status URL.",
)
KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Any unique string of yours (≤ 255). A retry with the same key and body "
    "answers the first request's analysis; the same key with another body, 409.",
)


def _body(request) -> tuple[dict, str, bytes | None, str]:
    """(validated fields, the request's digest, the file's bytes or None, its name)."""
    upload = request.FILES.get("file") if request.FILES else None
    if upload is None and isinstance(request.data, dict) and "text" in request.data:
        return text_body(request)
    if upload is not None:
        check_size(upload.size, largest_upload_bytes())  # before reading it (a video's cap)
        checked = FileAnalysisRequest(data=request.data)
    else:
        checked = UrlAnalysisRequest(data=request.data)
    checked.is_valid(raise_exception=True)
    fields = dict(checked.validated_data)
    if upload is None:
        digest = _digest({k: fields.get(k) for k in ("url", "user_uuid", "metadata")})
        return fields, digest, None, ""
    data = upload.read()
    check_size(len(data), largest_upload_bytes())
    digest = _digest(
        {
            "file": hashlib.sha256(data).hexdigest(),
            "user_uuid": fields["user_uuid"],
            "metadata": fields.get("metadata"),
        }
    )
    return fields, digest, data, upload.name or ""


def text_body(request) -> tuple[dict, str, bytes, str]:
    """A text item's fields, digest and stored bytes (uploads.text.envelope)."""
    checked = TextAnalysisRequest(data=request.data)
    checked.is_valid(raise_exception=True)
    fields = dict(checked.validated_data)
    fields["field"] = "text"
    digest = _digest(
        {k: fields.get(k) for k in ("text", "thread_context", "user_uuid", "metadata")}
    )
    return fields, digest, envelope(fields["text"], fields["thread_context"]), "text"


def take_one(client, request, cap: float, default_wait: float = 0.0) -> tuple[Submission, bool]:
    """The one-item intake of POST analyses (and of the old API's analyse/image)."""
    wait = wait_seconds(request, cap, default_wait)
    key = idempotency_key(request)
    fields, digest, data, name = _body(request)
    taken = submit(
        client,
        user_uuid=fields["user_uuid"],
        metadata=fields.get("metadata"),
        url=fields.get("url", ""),
        data=data,
        name=name,
        key=key,
        digest=digest,
        field=fields.get("field", ""),
    )
    return settled(taken.submission.pk, wait), taken.replayed


def banned_answer(exc: AuthorRefused) -> Response:
    return Response(exc.body(), status=exc.status)


class Analyses(ClientView):
    """The client's analyses: send one (POST), or read the log (GET)."""

    required_scope = ANALYSE
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="analyses_create",
        summary="Analyse one item",
        description="JSON `{url, user_uuid, metadata?}`, JSON `{text, thread_context?, "
        "user_uuid, metadata?}` (a post or comment) or multipart `{file, user_uuid, "
        "metadata?}`. 200 with the verdict when it is reached within `wait` seconds, else "
        "202 with the analysis as it stands (status processing), a `Location` and "
        "`status_url` to poll, and the callback when it is decided. A banned user's content "
        "is refused: 403, code author_banned.",
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="AnalysisRequest",
                serializers=[UrlAnalysisRequest, TextAnalysisRequest],
                resource_type_field_name=None,
            ),
            "multipart/form-data": FileAnalysisRequest,
        },
        parameters=[WAIT_PARAMETER, KEY_PARAMETER],
        responses={
            200: AnalysisSerializer,
            202: AnalysisSerializer,
            403: BANNED,
        },
        tags=["analyses"],
    )
    def post(self, request):
        try:
            submission, replayed = take_one(self.client, request, wait_cap())
        except AuthorRefused as exc:
            return banned_answer(exc)
        processing = submission.item.status == MediaItem.Status.PROCESSING
        response = Response(analysis_payload(submission), status=202 if processing else 200)
        if processing:
            response["Location"] = status_url(submission.item)
            response["Retry-After"] = "1"
        if replayed:
            response[REPLAYED_HEADER] = "true"
        return response

    @extend_schema(
        operation_id="analyses_list",
        summary="Your analyses (the log)",
        description="Newest first, filtered, in pages (follow `next`).",
        parameters=LOG_PARAMETERS,
        responses={200: PageSerializer},
        tags=["analyses"],
    )
    def get(self, request):
        rows = client_log(self.client, request.query_params)
        paginator = LogCursor()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([summary_payload(s) for s in page])


class AnalysisDetail(ClientView):
    """One analysis as it stands now, a moderator's later decision included."""

    required_scope = ANALYSE

    @extend_schema(
        operation_id="analyses_retrieve",
        summary="One analysis",
        responses={200: AnalysisSerializer},
        tags=["analyses"],
    )
    def get(self, request, analysis_id):
        submission = (
            Submission.objects.select_related("item", "item__author")
            .filter(client=self.client, item__uuid=analysis_id)
            .first()
        )
        if submission is None:  # another client's looks exactly like none at all
            raise NotFound("No such analysis.")
        return Response(analysis_payload(submission))


class AnalysesBatch(ClientView):
    """Several items in one request, answered in input order, each on its own."""

    required_scope = ANALYSE
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="analyses_batch",
        summary="Analyse a batch",
        description="At most the policy's batch cap (50) items; 400 above. Each item is a "
        "URL item `{url, user_uuid, metadata?}` or a text item `{text, thread_context?, "
        "user_uuid, metadata?}`, answered "
        "at its position with its own status (200 decided, 202 processing, or its "
        "error): one bad item never fails the batch. The same bytes for the same user twice "
        "are analysed once (`same_as`). `?wait=` up to API_BATCH_WAIT_MAX_S (30).",
        request=BatchRequest,
        parameters=[WAIT_PARAMETER],
        responses={200: BatchResponse},
        tags=["analyses"],
    )
    def post(self, request):
        wait = wait_seconds(request, batch_wait_cap())
        options = BatchOptions(data=request.data, max_items=batch_limit(self.client))
        options.is_valid(raise_exception=True)
        batch = uuid.uuid4()
        max_concurrent = options.validated_data["max_concurrent"]
        slots = run_batch(
            self.client,
            options.validated_data["items"],
            max_concurrent=max_concurrent,
            wait=wait,
            batch=batch,
        )
        results = [
            {
                "index": s.index,
                "status": s.status,
                "same_as": s.same_as,
                "analysis": summary_payload(s.submission) if s.submission else None,
                "error": s.error,
            }
            for s in slots
        ]
        return Response(
            {
                "batch_id": str(batch),
                "total": len(slots),
                "accepted": sum(1 for s in slots if s.submission is not None),
                "refused": sum(1 for s in slots if s.submission is None),
                "decided": sum(1 for s in slots if s.status == 200),
                "max_concurrent": max_concurrent,
                "results": results,
            }
        )
