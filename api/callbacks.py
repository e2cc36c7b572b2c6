"""Client callbacks: when a client's item is decided, POST the answer to its callback URL.

An event (``analysis.decided`` by the machine, ``analysis.reviewed`` by a moderator,
``analysis.reversed`` by an override) becomes a Delivery whose body is fixed at once, so
that every attempt sends the same bytes and the same ``event_id`` (a client drops the
repeats it already saw). Each attempt is signed afresh with the client's secret::

    X-Moderation-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

and goes out through the SSRF guard (uploads.urlfetch.post_url). A 2xx answer delivers it;
anything else is recorded and tried again on settings.CALLBACK_RETRY_SCHEDULE (a day) by the
Celery task in api.tasks; a refused address or URL is not tried again (an admin fixes the
URL and resends). The secret never appears in a body, a record, a log line or a page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.utils import timezone

from review.models import Analysis, Decision
from uploads.models import MediaItem
from uploads.urlfetch import FetchRefused, post_url

from .models import Delivery, DeliveryAttempt, Submission
from .serializers import DECISION, review_of, summary_payload

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Moderation-Signature"
EVENT_HEADER = "X-Moderation-Event"
EVENT_ID_HEADER = "X-Moderation-Event-Id"
ATTEMPT_HEADER = "X-Moderation-Attempt"
DECIDED, REVIEWED, REVERSED = "analysis.decided", "analysis.reviewed", "analysis.reversed"
# Not worth trying again until someone changes the URL or the allowance.
PERMANENT = {"refused_address", "bad_url", "scheme"}
MAX_EXCERPT = 500


# -- signing ----------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of b"<timestamp>." + body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300, now=None) -> bool:
    """What a client does (README, "Callbacks"): recompute, compare in constant time, and
    refuse a timestamp further than ``tolerance`` seconds from now (a replayed request)."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# -- the event --------------------------------------------------------------------------------


def event_of(item: MediaItem) -> tuple[str, Decision | None] | None:
    """Which event the item's current state is, with the decision behind it (None while
    processing). A person's verdict is the latest Decision; an override is a reversal."""
    if item.status not in DECISION:
        return None
    if item.status not in (MediaItem.Status.APPROVED, MediaItem.Status.REJECTED):
        return DECIDED, None
    decision = Decision.objects.filter(item_id=item.pk).first()
    if decision is None:
        return DECIDED, None
    return (REVERSED if decision.is_override else REVIEWED), decision


def payload(item: MediaItem, submission: Submission, event: str, event_id, decision=None) -> dict:
    """The body: the analysis as ``GET analyses/{id}`` summarises it (the one vocabulary,
    another client's items never named), with the run's request id and the person's
    verdict; never a secret."""
    submission.item = item
    analysis = Analysis.objects.filter(item_id=item.pk).values("request_id").first()
    return {
        "event_id": str(event_id),
        "type": event,
        "created_at": timezone.now(),
        "analysis": {
            **summary_payload(submission),
            "request_id": str(analysis["request_id"]) if analysis else None,
            "review": review_of(decision),
        },
    }


def encode(data: dict) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def record_event(item: MediaItem) -> Delivery | None:
    """The Delivery of this item's new state, if its client wants callbacks (an API item,
    an active client with a callback URL, and a decision rather than "processing")."""
    submission = (
        Submission.objects.select_related("client")
        .filter(item_id=item.pk, client__active=True)
        .exclude(client__callback_url="")
        .first()
    )
    if submission is None:
        return None
    found = event_of(item)
    if found is None:
        return None
    event, decision = found
    event_id = uuid.uuid4()
    body = encode(payload(item, submission, event, event_id, decision))
    return Delivery.objects.create(
        event_id=event_id,
        event=event,
        client=submission.client,
        item_id=item.pk,
        body=body,
        next_attempt_at=timezone.now(),
    )


# -- attempts ---------------------------------------------------------------------------------


def retry_schedule() -> tuple[int, ...]:
    """Seconds before each retry after a failed attempt (settings: a day by default)."""
    return tuple(settings.CALLBACK_RETRY_SCHEDULE)


def masked(url: str) -> str:
    """The URL as records show it: a query string may hold a client's token."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "(not a valid URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


@dataclass(frozen=True)
class Tried:
    attempt: DeliveryAttempt
    retry_in: int | None  # seconds until the next try, None when there is none


def attempt(delivery_id: int, expected: int, *, retries: int = 0, manual=False) -> Tried | None:
    """One POST of a delivery, recorded. ``expected`` is the number of attempts made before
    this one: a task message that arrives twice (a broker redelivery) or that a resend has
    overtaken finds another count and does nothing. ``retries`` is how many retries came
    before in this run (the index into the schedule)."""
    claim = Delivery.objects.filter(pk=delivery_id, attempts=expected)
    if not manual:
        claim = claim.exclude(status=Delivery.Status.DELIVERED)
    if not claim.update(attempts=F("attempts") + 1):  # one winner, on every database
        return None
    number = expected + 1
    delivery = Delivery.objects.select_related("client").get(pk=delivery_id)
    client = delivery.client
    started = timezone.now()
    t0 = time.perf_counter()
    status_code, error, excerpt, code = None, "", "", ""
    url = client.callback_url
    if not url:
        error, code = "The client has no callback URL any more.", "bad_url"
    else:
        body = delivery.body.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(client.signing_secret, timestamp, body),
            EVENT_HEADER: delivery.event,
            EVENT_ID_HEADER: str(delivery.event_id),
            ATTEMPT_HEADER: str(number),
        }
        try:
            answer = post_url(
                url,
                body,
                headers=headers,
                timeout=settings.CALLBACK_TIMEOUT,
                max_response_bytes=4096,
            )
        except FetchRefused as exc:
            error, code = exc.message, exc.code
        except Exception as exc:  # never let a bug in one attempt lose the delivery
            log.exception("callback %s: attempt failed unexpectedly", delivery.event_id)
            error, code = f"Unexpected error: {type(exc).__name__}.", "error"
        else:
            status_code = answer.status
            if not 200 <= status_code < 300:
                error = _why(answer)
                excerpt = answer.body[:MAX_EXCERPT].decode("utf-8", "replace")
    duration = round((time.perf_counter() - t0) * 1000, 2)
    ok = status_code is not None and not error
    schedule = retry_schedule()
    retry_in = None
    if not ok and code not in PERMANENT and retries < len(schedule):
        retry_in = int(schedule[retries])
    row = DeliveryAttempt.objects.create(
        delivery=delivery,
        number=number,
        manual=manual,
        started_at=started,
        duration_ms=duration,
        url=masked(url) if url else "",
        status_code=status_code,
        error=error[:500],
        response_excerpt=excerpt[:MAX_EXCERPT],
        retry_in=retry_in,
    )
    if ok:
        state = {
            "status": Delivery.Status.DELIVERED,
            "delivered_at": timezone.now(),
            "next_attempt_at": None,
        }
    elif retry_in is not None:
        state = {
            "status": Delivery.Status.RETRYING,
            "next_attempt_at": timezone.now() + timedelta(seconds=retry_in),
        }
    else:
        state = {"status": Delivery.Status.FAILED, "next_attempt_at": None}
    # Only if no later attempt (a resend) has started meanwhile: the latest attempt speaks.
    Delivery.objects.filter(pk=delivery.pk, attempts=number).update(
        last_status_code=status_code, last_error=error[:500], **state
    )
    level = logging.INFO if ok else logging.WARNING
    log.log(
        level,
        "callback %s (%s) attempt %s to %s: %s%s",
        delivery.event_id,
        delivery.event,
        row.number,
        row.url,
        status_code or error,
        f"; next in {retry_in} s" if retry_in is not None else "",
    )
    return Tried(row, retry_in)


def _why(answer) -> str:
    if 300 <= answer.status < 400:
        where = answer.headers.get("Location", "")
        to = f" to {masked(where)}" if where else ""
        return (
            f"The callback URL redirected (HTTP {answer.status}{to}); redirects are not followed."
        )
    return f"The callback URL answered HTTP {answer.status}."


def prepare_resend(delivery: Delivery) -> int:
    """Mark a delivery for a fresh try from admin; returns the attempt count the new task
    expects (any retry still scheduled then finds another count and stands down)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
    )
    delivery.refresh_from_db()
    return delivery.attempts
