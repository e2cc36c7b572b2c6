"""Bank curation for API clients: list banks, add content (a reference picture, or hashes
computed elsewhere, with a note and the client's own id), disable and remove entries, and
import or export CSV hash lists (streamed).

Every change goes through hashing.services with the client's service user as the actor,
so each is in the bank audit (BankChange) under the client's name, and each names the
entries it touched (BankJournal): every process's matcher applies them at its next vote,
so a new or disabled entry takes effect within milliseconds (hashing.matcher). Entries are
never deleted: "remove" disables them, and the record stays.
"""

from __future__ import annotations

import codecs
import csv
import queue
import tempfile
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.db.models import Count, Prefetch, Q
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from hashing import services
from hashing.matcher import content_rule
from hashing.models import Bank, BankContent, BankEntry
from hashing.text import add_texts
from hashing.textnorm import normalise
from moderation_site.errors import NotFound, TooLarge, describe, error_body
from uploads.validation import check_size

from .bank_serializers import (
    AddContentFileRequest,
    AddContentRequest,
    AddContentResponse,
    AddContentsRequest,
    AddContentsResponse,
    BankList,
    BankSerializer,
    ContentChanged,
    ContentPage,
    ContentSerializer,
    EnabledRequest,
    EntryChanged,
    EntrySerializer,
    ImportReportSerializer,
    ImportRequest,
)
from .hashes import PARSERS, fetched, fields_of, rules_for, sent
from .models import BANKS_READ, BANKS_WRITE
from .views import ClientView

NDJSON = "application/x-ndjson"
REMOVED = "removed through the API"
ADDED_AGAIN = "added again through the API"


def created_or_there(serializer, there: str) -> dict:
    """The schema's answers of an add: 201 made, 200 (``there``) nothing new."""
    return {201: serializer, 200: OpenApiResponse(serializer, description=there)}


PAGE, MAX_PAGE = 100, 500


class BankView(ClientView):
    """banks:read to look, banks:write to change."""

    @property
    def required_scope(self):
        return BANKS_READ if self.request.method in SAFE_METHODS else BANKS_WRITE

    @property
    def actor(self):
        return self.client.user

    def bank(self, bank_id: int) -> Bank:
        bank = Bank.objects.filter(pk=bank_id).first()
        if bank is None:
            raise NotFound("No bank has this id.")
        return bank


# -- shapes ---------------------------------------------------------------------------------


def _banks():
    return Bank.objects.annotate(
        live=Count("entries", filter=Q(entries__enabled=True)),
        off=Count("entries", filter=Q(entries__enabled=False)),
    )


def bank_payload(bank) -> dict:
    return {
        "id": bank.pk,
        "name": bank.name,
        "kind": bank.kind,
        "active": bank.active,
        "description": bank.description,
        "entries": bank.live,
        "disabled_entries": bank.off,
        "created_at": bank.created_at,
        "updated_at": bank.updated_at,
    }


def entry_payload(entry: BankEntry) -> dict:
    return {
        "id": entry.pk,
        "content_id": entry.content_id,
        "algorithm": entry.algorithm,
        "value": entry.value,
        "enabled": entry.enabled,
        "note": entry.note,
        "created_at": entry.created_at,
    }


def _contents():
    return (
        BankContent.objects.filter(variant_of=None)
        .annotate(versions=Count("variants", distinct=True))
        .prefetch_related(Prefetch("entries", queryset=BankEntry.objects.order_by("pk")))
    )


def content_payload(content: BankContent) -> dict:
    entries = [entry_payload(e) for e in content.entries.all()]
    return {
        "id": content.pk,
        "bank_id": content.bank_id,
        "source": content.source,
        "name": content.name,
        "note": content.note,
        "external_id": content.external_id,
        "sha256": content.sha256,
        "enabled": any(e["enabled"] for e in entries),
        "entries": entries,
        "rotated_versions": getattr(content, "versions", 0),
        "created_at": content.created_at,
    }


def _content(bank: Bank, content_id: int) -> BankContent:
    content = _contents().filter(bank=bank, pk=content_id).first()
    if content is None:
        raise NotFound("No content of this bank has this id.")
    return content


# -- banks ----------------------------------------------------------------------------------


class Banks(BankView):
    """Every bank, with its entry counts (inactive banks take no part in votes)."""

    @extend_schema(
        responses=BankList, tags=["banks"], summary="List banks", operation_id="banks_list"
    )
    def get(self, request):
        return Response({"results": [bank_payload(b) for b in _banks()]})


class BankDetail(BankView):
    @extend_schema(
        responses=BankSerializer, tags=["banks"], summary="A bank", operation_id="bank_retrieve"
    )
    def get(self, request, bank_id: int):
        bank = _banks().filter(pk=bank_id).first()
        if bank is None:
            raise NotFound("No bank has this id.")
        return Response(bank_payload(bank))


# -- contents -------------------------------------------------------------------------------


def _int_param(request, name: str, default: int | None, low: int, high: int | None = None):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        limit = f"{low}-{high}" if high is not None else f"at least {low}"
        raise services.BankError(f"{name} is a number, {limit}.", fields={name: [raw[:40]]})
    return value


class Contents(BankView):
    """A bank's contents, newest first: each reference picture or hash group with its
    entries (``?external_id=`` finds yours); POST adds one."""

    parser_classes = PARSERS

    @extend_schema(
        parameters=[
            OpenApiParameter("external_id", str, description="Only contents with this id."),
            OpenApiParameter("before", int, description="Contents older than this id (paging)."),
            OpenApiParameter("limit", int, description=f"1-{MAX_PAGE}, default {PAGE}."),
        ],
        responses=ContentPage,
        tags=["banks"],
        summary="List a bank's contents",
        operation_id="bank_contents_list",
    )
    def get(self, request, bank_id: int):
        bank = self.bank(bank_id)
        limit = _int_param(request, "limit", PAGE, 1, MAX_PAGE)
        before = _int_param(request, "before", None, 1)
        rows = _contents().filter(bank=bank).order_by("-pk")
        external_id = request.query_params.get("external_id")
        if external_id:
            rows = rows.filter(external_id=external_id[:255])
        if before:
            rows = rows.filter(pk__lt=before)
        page = list(rows[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        nxt = None
        if more:
            query = request.query_params.copy()
            query["before"] = str(page[-1].pk)
            nxt = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"results": [content_payload(c) for c in page], "next": nxt})

    @extend_schema(
        request={
            "application/json": AddContentRequest,
            "multipart/form-data": AddContentFileRequest,
        },
        responses=created_or_there(AddContentResponse, "Already in the bank."),
        tags=["banks"],
        summary="Add content to a bank",
    )
    def post(self, request, bank_id: int):
        bank = self.bank(bank_id)
        fields = fields_of(request)
        checked = AddContentRequest(data={k: v for k, v in fields.items() if k != "file"})
        checked.is_valid(raise_exception=True)
        note = checked.validated_data.get("note", "")
        external_id = checked.validated_data.get("external_id", "")
        if "hashes" in fields:
            content, created = services.add_hashes(
                bank,
                checked.validated_data["hashes"],
                actor=self.actor,
                note=note,
                external_id=external_id,
                name=f"API: {self.client.name}",
            )
        elif "text" in fields:
            if not normalise(checked.validated_data["text"]):
                raise services.BankError(
                    "The text has no letters or digits to match.",
                    fields={"text": ["Give the message's words."]},
                )
            ((content, created),) = add_texts(
                bank,
                [checked.validated_data["text"]],
                actor=self.actor,
                note=note,
                external_id=external_id,
                name=f"API: {self.client.name}",
            )
        else:
            item = sent(request)
            if not item.source:
                raise services.BankError(
                    "Send hashes, a text, a reference picture (multipart “file”) or its url.",
                    fields={"hashes": ["Required (or text, file, url)."]},
                )
            item = fetched(item)
            name = item.name or "reference"
            result = services.add_images(
                bank, [(name, item.data)], actor=self.actor, note=note, external_id=external_id
            )
            created = bool(result["added"])
            if created:
                content = result["added"][0]
            else:
                sha256 = services.hash_reference(item.data, name, with_versions=False).sha256
                content = BankContent.objects.get(bank=bank, sha256=sha256, variant_of=None)
        if not created:  # removed before: adding it again makes it live again
            services.set_contents_enabled([content], True, actor=self.actor, reason=ADDED_AGAIN)
        content = _content(bank, content.pk)
        algorithms = [e.algorithm for e in content.entries.all()]
        votes_as = services.VoteGroup(1, content_rule(algorithms, rules_for(self.client)))
        body = {
            "created": created,
            "content": content_payload(content),
            "votes_as": votes_as.sentence(),
        }
        return Response(body, status=201 if created else 200)


MAX_BATCH = 1000


class ContentsBatch(BankView):
    """Up to 1,000 contents from hashes in one request and one transaction (all or none):
    the JSON way to fill a bank, as fast as a CSV import."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=AddContentsRequest,
        responses=created_or_there(AddContentsResponse, "All were there already."),
        tags=["banks"],
        summary="Add many contents to a bank",
    )
    def post(self, request, bank_id: int):
        bank = self.bank(bank_id)
        checked = AddContentsRequest(data=fields_of(request))
        checked.is_valid(raise_exception=True)
        items = checked.validated_data["contents"]
        try:
            added = services.add_hash_contents(
                bank, items, actor=self.actor, name=f"API: {self.client.name}"
            )
        except services.BankError as exc:
            fields = {f"contents.{k}": v for k, v in (exc.fields or {}).items()}
            raise services.BankError(exc.detail, fields=fields or None) from None
        again = [content for content, created in added if not created]
        if again:  # removed before: adding them again makes them live again
            services.set_contents_enabled(again, True, actor=self.actor, reason=ADDED_AGAIN)
        entries: dict[int, dict[str, int]] = {}
        rows = BankEntry.objects.filter(content_id__in={c.pk for c, _ in added})
        for content_id, algorithm, pk in rows.values_list("content_id", "algorithm", "pk"):
            entries.setdefault(content_id, {})[algorithm] = pk
        rules = rules_for(self.client)
        groups: dict[tuple, int] = {}
        results = []
        for content, created in added:
            held = entries.get(content.pk, {})
            key = tuple(sorted(held))
            groups[key] = groups.get(key, 0) + created
            results.append(
                {
                    "created": created,
                    "content_id": content.pk,
                    "external_id": content.external_id,
                    "entries": held,
                }
            )
        votes = [
            {
                "algorithms": list(key),
                "contents": count,
                "sentence": services.VoteGroup(count, content_rule(key, rules)).sentence(),
            }
            for key, count in groups.items()
            if count
        ]
        made = sum(created for _, created in added)
        body = {"results": results, "created": made, "votes": votes}
        return Response(body, status=201 if made else 200)


class ContentDetail(BankView):
    """One content and its entries; PATCH ``{"enabled"}`` switches all its hashes (with
    its rotated versions), DELETE removes it from matching (disabled, kept on record)."""

    parser_classes = [JSONParser]

    @extend_schema(responses=ContentSerializer, tags=["banks"], summary="A content")
    def get(self, request, bank_id: int, content_id: int):
        return Response(content_payload(_content(self.bank(bank_id), content_id)))

    @extend_schema(
        request=EnabledRequest, responses=ContentChanged, tags=["banks"], summary="Switch a content"
    )
    def patch(self, request, bank_id: int, content_id: int):
        checked = EnabledRequest(data=fields_of(request))
        checked.is_valid(raise_exception=True)
        data = checked.validated_data
        return self._switch(bank_id, content_id, data["enabled"], data.get("reason", ""))

    @extend_schema(
        request=None, responses=ContentChanged, tags=["banks"], summary="Remove a content"
    )
    def delete(self, request, bank_id: int, content_id: int):
        return self._switch(bank_id, content_id, False, REMOVED)

    def _switch(self, bank_id, content_id, enabled: bool, reason: str):
        bank = self.bank(bank_id)
        content = _content(bank, content_id)
        changed = services.set_contents_enabled([content], enabled, actor=self.actor, reason=reason)
        return Response(
            {"changed": changed, "content": content_payload(_content(bank, content.pk))}
        )


class EntryDetail(BankView):
    """One entry (one hash); PATCH ``{"enabled"}`` switches it, DELETE removes it from
    matching (disabled, kept on record)."""

    parser_classes = [JSONParser]

    def entry(self, bank_id: int, entry_id: int) -> BankEntry:
        entry = BankEntry.objects.filter(bank=self.bank(bank_id), pk=entry_id).first()
        if entry is None:
            raise NotFound("No entry of this bank has this id.")
        return entry

    @extend_schema(responses=EntrySerializer, tags=["banks"], summary="An entry")
    def get(self, request, bank_id: int, entry_id: int):
        return Response(entry_payload(self.entry(bank_id, entry_id)))

    @extend_schema(
        request=EnabledRequest, responses=EntryChanged, tags=["banks"], summary="Switch an entry"
    )
    def patch(self, request, bank_id: int, entry_id: int):
        checked = EnabledRequest(data=fields_of(request))
        checked.is_valid(raise_exception=True)
        data = checked.validated_data
        return self._switch(bank_id, entry_id, data["enabled"], data.get("reason", ""))

    @extend_schema(request=None, responses=EntryChanged, tags=["banks"], summary="Remove an entry")
    def delete(self, request, bank_id: int, entry_id: int):
        return self._switch(bank_id, entry_id, False, REMOVED)

    def _switch(self, bank_id, entry_id, enabled: bool, reason: str):
        entry = self.entry(bank_id, entry_id)
        changed = services.set_entries_enabled([entry], enabled, actor=self.actor, reason=reason)
        entry.refresh_from_db()
        return Response({"changed": changed, "entry": entry_payload(entry)})


# -- CSV import and export ----------------------------------------------------------------


class CsvBody:
    """A CSV posted as the body, spooled (in memory up to 8 MB, then on disk)."""

    def __init__(self, spool):
        self.spool = spool

    def chunks(self, size: int = 64 * 1024):
        self.spool.seek(0)
        while chunk := self.spool.read(size):
            yield chunk


class CsvBodyParser(BaseParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.REQUEST_MAX_BYTES
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and str(length).isdigit() and int(length) > limit:
            raise TooLarge(f"A hash list is at most {limit:,} bytes.")
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        total = 0
        while stream is not None and (chunk := stream.read(64 * 1024)):
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"A hash list is at most {limit:,} bytes.")
            spool.write(chunk)
        return CsvBody(spool)


class TextPlainParser(CsvBodyParser):
    media_type = "text/plain"


class PlainRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` (or NDJSON) through content negotiation; the views
    answer those with streams of their own."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


class NdjsonRenderer(PlainRenderer):
    media_type = NDJSON
    format = "ndjson"


def csv_lines(chunks):
    """Text lines of UTF-8 (a BOM is dropped) bytes chunks, for csv.reader."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    tail = ""
    try:
        for chunk in chunks:
            parts = (tail + decoder.decode(chunk)).split("\n")
            tail = parts.pop()
            for part in parts:
                yield part + "\n"
        tail += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise services.BankError("Nothing was imported: the file is not UTF-8 text.") from None
    if tail:
        yield tail


def report_payload(report, seconds: float) -> dict:
    return {"summary": report.summary(), **report.detail(), "seconds": round(seconds, 3)}


def _as_domain_error(exc: BaseException) -> BaseException:
    if isinstance(exc, csv.Error):
        return services.BankError(f"Nothing was imported: the file is not CSV ({exc}).")
    return exc


def streamed(request, iterator, *, thread_sensitive: bool):
    """`iterator` as the body of a StreamingHttpResponse that streams under both servers:
    under ASGI as an async iterator (Django would read a sync one to its end first), each
    step in a thread (``thread_sensitive``: the request's own, for its DB connection)."""
    django_request = getattr(request, "_request", request)
    if not isinstance(django_request, ASGIRequest):
        return iterator
    return _async_steps(iterator, thread_sensitive)


_END = object()


async def _async_steps(iterator, thread_sensitive: bool):
    step = sync_to_async(next, thread_sensitive=thread_sensitive)
    try:
        while (chunk := await step(iterator, _END)) is not _END:
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=thread_sensitive)()


class _ImportRun:
    """An import in a thread of its own, telling its progress through a queue."""

    def __init__(self, run):
        self.events: queue.Queue = queue.Queue()
        self.started = time.perf_counter()
        threading.Thread(target=self._work, args=(run,), daemon=True).start()

    def _work(self, run):
        try:
            report = run(progress=lambda done, total: self.events.put(("progress", done, total)))
            self.events.put(("done", report))
        except BaseException as exc:  # noqa: BLE001 - told to the client as an event
            self.events.put(("error", _as_domain_error(exc)))
        finally:
            connections.close_all()  # this thread's connections only

    def lines(self, first):
        event = first
        while True:
            kind = event[0]
            if kind == "progress":
                yield _json_line({"event": "progress", "done": event[1], "total": event[2]})
            elif kind == "done":
                seconds = time.perf_counter() - self.started
                yield _json_line({"event": "done", "report": report_payload(event[1], seconds)})
                return
            else:
                described = describe(event[1])
                _, body = described or (500, error_body("server_error", "The import failed."))
                yield _json_line({"event": "error", **body})
                return
            event = self.events.get()


def _json_line(payload: dict) -> bytes:
    return JSONRenderer().render(payload) + b"\n"


class Import(BankView):
    """Import a CSV hash list (``hash_type,hash_value[,note[,content[,external_id]]]``, as
    admin and the export write it): every row or none; rows already in the bank are skipped.

    Multipart ``file`` (and up to 20 ``samples``: pictures known to be in the list, to
    check its labels) or the CSV as the body (``text/csv``). The answer is the import
    report. With ``?progress=true`` (or ``Accept: application/x-ndjson``) it is a stream
    of JSON lines instead: ``{"event": "progress", "done", "total"}`` per batch of 2,000
    entries, then ``{"event": "done", "report"}`` or ``{"event": "error", "code",
    "detail"}``; a list refused before any entry is written is a plain 400.
    """

    parser_classes = [MultiPartParser, CsvBodyParser, TextPlainParser]
    renderer_classes = [JSONRenderer, NdjsonRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("progress", bool, description="Stream progress as JSON lines."),
            OpenApiParameter("name", str, description="The list's name, for the audit."),
        ],
        request={
            "multipart/form-data": ImportRequest,
            "text/csv": {"type": "string"},
        },
        responses={
            201: ImportReportSerializer,
            (200, NDJSON): OpenApiResponse(
                {"type": "string"}, description="With progress: one JSON object per line."
            ),
        },
        tags=["banks"],
        summary="Import a CSV hash list",
    )
    def post(self, request, bank_id: int):
        bank = self.bank(bank_id)
        data = request.data
        upload = request.FILES.get("file")
        if isinstance(data, CsvBody):
            chunks, name = data.chunks(), request.query_params.get("name", "") or "API upload"
        elif upload is not None:
            chunks, name = upload.chunks(), request.query_params.get("name", "") or upload.name
        else:
            raise services.BankError(
                "Send the CSV as multipart “file” or as the body (text/csv).",
                fields={"file": ["Required."]},
            )
        samples = []
        for picture in request.FILES.getlist("samples"):
            check_size(picture.size, settings.UPLOAD_MAX_BYTES)
            samples.append((picture.name, picture.read()))
        rules = rules_for(self.client)
        source_name = f"{name} (API: {self.client.name})"[:255]

        def run(progress=None):
            return services.import_hash_list(
                bank,
                csv_lines(chunks),
                actor=self.actor,
                source_name=source_name,
                samples=samples,
                rules=rules,
                progress=progress,
            )

        if not self._wants_progress(request):
            started = time.perf_counter()
            try:
                report = run()
            except csv.Error as exc:
                raise _as_domain_error(exc) from None
            return Response(report_payload(report, time.perf_counter() - started), status=201)
        job = _ImportRun(run)
        first = job.events.get()
        if first[0] == "error":
            raise first[1]  # refused before anything was written: a plain error answer
        body = streamed(request, job.lines(first), thread_sensitive=False)
        return StreamingHttpResponse(body, content_type=NDJSON)

    @staticmethod
    def _wants_progress(request) -> bool:
        flag = request.query_params.get("progress", "").lower() in ("1", "true", "yes")
        return flag or NDJSON in request.META.get("HTTP_ACCEPT", "")


def _encoded(rows):
    try:
        for chunk in rows:
            yield chunk.encode()
    finally:
        rows.close()  # writes the audit row now, also when the client left early


class Export(BankView):
    """The bank as a CSV hash list (the import format, with the content column that
    keeps each picture's hashes together), streamed; audited under the client's name."""

    renderer_classes = [JSONRenderer, PlainRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("include_disabled", bool, description="Disabled entries too."),
        ],
        responses={(200, "text/csv"): OpenApiResponse({"type": "string"}, description="CSV.")},
        tags=["banks"],
        summary="Export a bank as CSV",
    )
    def get(self, request, bank_id: int):
        bank = self.bank(bank_id)
        include = request.query_params.get("include_disabled", "").lower() in ("1", "true", "yes")
        rows = services.iter_hash_list(bank, actor=self.actor, include_disabled=include)
        body = streamed(request, _encoded(rows), thread_sensitive=True)
        response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in bank.name)[:80]
        response["Content-Disposition"] = f'attachment; filename="bank-{safe or bank.pk}.csv"'
        return response
