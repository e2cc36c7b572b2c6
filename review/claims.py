"""The review queue and its claims: enqueue, claim with leases, heartbeat, release.

Claims lock rows with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL): concurrent moderators
never receive the same item and never wait for each other's claims. SQLite has no row locks
but serialises writers (settings open transactions IMMEDIATE), which gives the same answer;
every claim update is also conditional on the row still being unclaimed.

Pages, the API, consumers, tasks and admin actions all call these functions.

Each claim records the credential that made it (`claim_source`: a browser session or an API
token, accounts.sessions.credential_of), so that a log-out releases that session's claims
only. Every release records whose claim ended, when and why (`released_by`, `released_at`,
`release_cause`) in the same UPDATE that ends it, so that a late decision is told the real
cause (review.decisions).
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from moderation_site.errors import Conflict
from uploads.models import MediaItem

from .access import require_moderator
from .counts import counts_changed
from .models import Policy, QueueEntry

log = logging.getLogger(__name__)

# Without scores (the classifier failed) nobody knows how bad it is: mid-queue.
UNKNOWN_SEVERITY = 0.5
# Working order: review items before confirmations, the most severe, then the oldest.
ORDER = ("-priority", "-severity", "item_created_at", "pk")


def _working_order(entry: QueueEntry) -> tuple:
    return (-entry.priority, -entry.severity, entry.item_created_at, entry.pk)


class ClaimConflict(Conflict):
    """The item is not (or no longer) held by this moderator; pages and API answer 409."""

    code = "claim_conflict"


@dataclass(frozen=True)
class ClaimSettings:
    """The policy's numbers a claim needs."""

    claim_batch_default: int
    claim_batch_max: int
    lease_minutes: int


# Each claim read the policy row: one round trip of the six a claim made. An edit made in
# this process is seen at once (forget_claim_settings, on Policy save: review.apps);
# other processes see it within this many seconds.
CLAIM_SETTINGS_TTL_S = 5.0
_claim_settings: tuple[float, ClaimSettings] | None = None


def claim_settings() -> ClaimSettings:
    global _claim_settings
    cached = _claim_settings
    if cached is not None and time.monotonic() - cached[0] < CLAIM_SETTINGS_TTL_S:
        return cached[1]
    policy = Policy.current()
    fresh = ClaimSettings(policy.claim_batch_default, policy.claim_batch_max, policy.lease_minutes)
    _claim_settings = (time.monotonic(), fresh)
    return fresh


def forget_claim_settings(*args, **kwargs) -> None:
    global _claim_settings
    _claim_settings = None


def clean_count(value, policy: Policy | ClaimSettings | None = None) -> int:
    """How many items to claim: the policy's default when absent, 1..claim_batch_max."""
    policy = policy or claim_settings()
    if value is None or value == "":
        return policy.claim_batch_default
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValidationError("The count must be a whole number.")
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValidationError("The count must be a whole number.") from None
    if not 1 <= count <= policy.claim_batch_max:
        raise ValidationError(f"Fetch between 1 and {policy.claim_batch_max} items at a time.")
    return count


def severity_of(item: MediaItem) -> float:
    """The highest category score: the most likely violation is worked first."""
    values = [float(v) for v in (item.scores or {}).values() if isinstance(v, int | float)]
    return max(values) if values else UNKNOWN_SEVERITY


def enqueue_for_review(item: MediaItem, purpose=QueueEntry.Purpose.REVIEW) -> QueueEntry:
    """Put an item whose status became review in the queue (idempotent), grouped with its
    pending near duplicates so that one decision settles them all. `purpose` confirm: a
    classifier's score alone hid the item; it waits after the review items."""
    entry, created = QueueEntry.objects.get_or_create(
        item=item,
        defaults={
            "purpose": purpose,
            "priority": QueueEntry.PRIORITY[purpose],
            "severity": severity_of(item),
            "item_created_at": item.created_at or timezone.now(),
            "group_key": _group_key_for(item),
        },
    )
    if created:
        counts_changed()
    return entry


def _group_key_for(item: MediaItem):
    """The group of the earliest queued near duplicate recorded at analysis, or None.

    Most items have no duplicate waiting; their key stays empty, which spares the claim a
    query. The first duplicate to arrive gives the earlier item its key (its own id).
    """
    found = (item.matches or {}).get("duplicates") or []
    pks = [d["pk"] for d in found if isinstance(d, dict) and d.get("pk")]
    if not pks:
        return None
    earliest = (
        QueueEntry.objects.filter(item_id__in=pks)
        .select_related("item")
        .order_by("item_created_at", "pk")
        .first()
    )
    if earliest is None:
        return None
    if earliest.group_key is None:
        QueueEntry.objects.filter(pk=earliest.pk, group_key__isnull=True).update(
            group_key=earliest.item.uuid
        )
        earliest.refresh_from_db(fields=["group_key"])
    return earliest.group_key


def claimed_entries(moderator):
    """What a moderator holds now, in working order, ready for the page and the API."""
    return (
        QueueEntry.objects.filter(claimed_by=moderator)
        .select_related("item", "item__author", "item__duplicate_of")
        .order_by(*ORDER)
    )


def claim_items(moderator, count=None, source: str = "") -> list[QueueEntry]:
    """Claim up to `count` pending groups (review before confirmations, the most severe,
    then the oldest) for a lease, in one SQL statement.

    Near duplicates grouped with a claimed item come along, so the result can be longer
    than `count`. An item whose lease ran out is claimable as if pending (its release is
    recorded in the same UPDATE), so a crashed tab's items return at the next claim; the
    beat task (`release_expired`) hands back the rest. Returns the entries without their
    items; `claimed_entries` reads those for display. `source` names the credential that
    claims (a session or a token): a log-out releases what its session claimed.

    One round trip instead of six (policy, release of expired leases, select, group
    members, update, commit): ~4 ms of CPU per claim before, see bench/claims.py.
    """
    require_moderator(moderator)
    settings = claim_settings()
    count = clean_count(count, settings)
    now = timezone.now()
    lease = now + timedelta(minutes=settings.lease_minutes)
    source = source[:64]
    picked, chosen = _run_claim(*_claim_statement(moderator.pk, count, now, lease, source))
    if picked:
        # Every row the statement locked was still claimable, so all of them are ours; if
        # that ever differs the RETURNING rows (the ones updated) are the truth.
        if chosen != len(picked):
            log.warning("claim locked %s rows but updated %s", chosen, len(picked))
        counts_changed()
    for entry in picked:  # what the statement set, not read back
        entry.claimed_by = moderator
        entry.claimed_at, entry.lease_expires_at, entry.claim_source = now, lease, source
    return sorted(picked, key=_working_order)


# What a claim returns of each row: what callers read of the order, in the model's column
# order (Model.from_db's rule); the claim's own columns are the values it set, filled in by
# claim_items, and the other columns stay deferred. RETURNING * cost as much client CPU
# (converting every column of every row) as the rest of the claim.
RETURNED = tuple(
    f.attname
    for f in QueueEntry._meta.concrete_fields
    if f.attname
    in {"id", "item_id", "purpose", "priority", "severity", "item_created_at", "group_key"}
)


def _run_claim(sql: str, params: list) -> tuple[list[QueueEntry], int]:
    """Run the claim statement; the claimed entries and how many rows it locked."""
    connection = connections[QueueEntry.objects.db]
    if connection.vendor == "postgresql":
        rows = _run_prepared(connection, sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    convert = _converters(connection)
    entries = [QueueEntry.from_db(connection.alias, RETURNED, convert(row[:-1])) for row in rows]
    return entries, (rows[0][-1] if rows else 0)


# psycopg prepares a statement on its own after this many runs; only ours asks (Django's
# cursors bind on the client and never prepare), and it asks at once.
PREPARE_WHEN_ASKED = 2**31 - 1


def _run_prepared(connection, sql: str, params: list) -> list[tuple]:
    """The claim as a prepared statement on this connection (server-side binding), which
    PostgreSQL plans once and then runs on its generic plan: planning was 0.24 ms of the
    server's ~1.2 ms per claim. 8 moderators made 1,486-1,620 claims/s with it against
    997-1,008 unprepared earlier the same hour, and 1,739-1,851 once the results came in
    binary and the claim's own columns were no longer read back (bench/claims.py).

    The statement is written for that: its limits are literals (a generic plan with an
    unknown limit plans for a tenth of the table) and its expired branch reads the partial
    index review_queue_leases in its own order (see QueueEntry.Meta). Behind PgBouncer in
    transaction mode this needs its ``max_prepared_statements`` (1.21 and later).
    """
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:  # Django's default: psycopg prepares nothing
        raw.prepare_threshold = PREPARE_WHEN_ASKED
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True, binary=True)  # binary: no text to parse
        return cursor.fetchall()


_converter_cache: dict[str, list] = {}


def _converters(connection):
    """The backend's conversions of the returned columns, as the ORM's compiler applies
    them (SQLite returns text for datetimes and UUIDs; psycopg returns Python values)."""
    per_column = _converter_cache.get(connection.vendor)
    if per_column is None:
        per_column = []
        for name in RETURNED:
            field = QueueEntry._meta.get_field(name)
            col = field.get_col(QueueEntry._meta.db_table)
            funcs = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            per_column.append(funcs)
        _converter_cache[connection.vendor] = per_column

    def convert(row):
        values = list(row)
        for i, funcs in enumerate(per_column):
            for func in funcs:
                values[i] = func(values[i], None, connection)
        return values

    return convert


def _claim_statement(moderator_id, count, now, lease, source) -> tuple[str, list]:
    """UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING.

    PostgreSQL: the pending rows come in working order from the partial index
    review_queue_pending_order and locked rows (another moderator's claim in flight) are
    skipped, never waited for; beside them, the n leases that ran out first, from the
    partial index review_queue_leases in its own order, and of both the n first in working
    order are claimed (more than n leases out at once: the sweeper, every 30 s, hands back
    the rest as pending). SQLite has no row locks but runs one writer at a time, so the
    same statement without them gives the same answer. The UPDATE re-checks "still
    claimable" on each row.
    """
    connection = connections[QueueEntry.objects.db]
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    table = connection.ops.quote_name(QueueEntry._meta.db_table)
    order = "priority DESC, severity DESC, item_created_at, id"
    columns = "id, group_key, priority, severity, item_created_at"
    claimable = "(claimed_by_id IS NULL OR lease_expires_at < %s)"
    limit = int(count)  # a literal, checked by clean_count: see _run_prepared
    sql = f"""
        WITH pending AS (
            SELECT {columns} FROM {table} WHERE claimed_by_id IS NULL
            ORDER BY {order} LIMIT {limit}{lock}
        ), expired AS (
            SELECT {columns} FROM {table}
            WHERE claimed_by_id IS NOT NULL AND lease_expires_at < %s
            ORDER BY lease_expires_at LIMIT {limit}{lock}
        ), picked AS (
            SELECT id, group_key FROM (
                SELECT * FROM pending UNION ALL SELECT * FROM expired
            ) AS candidates ORDER BY {order} LIMIT {limit}
        ), members AS (
            SELECT id FROM {table}
            WHERE group_key IN (SELECT group_key FROM picked WHERE group_key IS NOT NULL)
              AND {claimable} AND id NOT IN (SELECT id FROM picked){lock}
        ), chosen AS (
            SELECT id FROM picked UNION ALL SELECT id FROM members
        )
        UPDATE {table} SET
            released_by_id = CASE WHEN claimed_by_id IS NULL
                THEN released_by_id ELSE claimed_by_id END,
            released_at = CASE WHEN claimed_by_id IS NULL
                THEN released_at ELSE lease_expires_at END,
            release_cause = CASE WHEN claimed_by_id IS NULL
                THEN release_cause ELSE %s END,
            claimed_by_id = %s, claimed_at = %s, lease_expires_at = %s, claim_source = %s
        WHERE id IN (SELECT id FROM chosen) AND {claimable}
        RETURNING {", ".join(RETURNED)}, (SELECT count(*) FROM chosen) AS chosen
    """
    at = connection.ops.adapt_datetimefield_value
    params = [
        at(now),
        at(now),
        QueueEntry.ReleaseCause.EXPIRED.value,
        moderator_id,
        at(now),
        at(lease),
        source,
        at(now),
    ]
    return sql, params


def heartbeat(moderator) -> list[QueueEntry]:
    """The open page is alive: extend the lease of everything this moderator still holds."""
    require_moderator(moderator)
    now = timezone.now()
    lease = timedelta(minutes=claim_settings().lease_minutes)
    QueueEntry.objects.filter(claimed_by=moderator).update(lease_expires_at=now + lease)
    return list(claimed_entries(moderator))


def release_claims(
    moderator, item_uuids=None, source: str | None = None, cause=QueueEntry.ReleaseCause.RELEASED
) -> int:
    """Hand back what a moderator holds (all, or the given items; with `source`, only what
    that session or token claimed). Needs no permission: anyone may let go of their own
    claims, e.g. at logout after losing the role."""
    held = QueueEntry.objects.filter(claimed_by=moderator)
    if item_uuids is not None:
        held = held.filter(item__uuid__in=list(item_uuids))
    if source is not None:
        held = held.filter(claim_source=source)
    return _release(held, cause)


def release_at_logout(moderator, source: str) -> int:
    """A log-out releases what that browser session claimed: not the claims of the same
    moderator's API token or of their other browsers."""
    if not source:
        return 0
    return release_claims(moderator, source=source, cause=QueueEntry.ReleaseCause.LOGOUT)


def release_all_of(user_id: int) -> int:
    """A ban or a deactivation: everything the user holds goes back to the queue at once."""
    held = QueueEntry.objects.filter(claimed_by_id=user_id)
    return _release(held, QueueEntry.ReleaseCause.ACCOUNT)


def release_entries(entry_ids) -> int:
    """Admin action: release claims whoever holds them."""
    held = QueueEntry.objects.filter(pk__in=list(entry_ids), claimed_by__isnull=False)
    return _release(held, QueueEntry.ReleaseCause.ADMIN)


def release_expired() -> int:
    """Periodic task: release every claim whose lease ran out."""
    with transaction.atomic():
        released = _release_expired(timezone.now())
        if released:
            counts_changed()
    return released


def _ended(cause, at) -> dict:
    """The columns of a release: the claim ends and its end is recorded, in one UPDATE (the
    right-hand sides read the row as it was, so released_by is the holder whose claim ends)."""
    return {
        "released_by": F("claimed_by"),
        "released_at": at,
        "release_cause": cause,
        "claimed_by": None,
        "claimed_at": None,
        "lease_expires_at": None,
        "claim_source": "",
    }


def _release(queryset, cause) -> int:
    with transaction.atomic():
        released = queryset.update(**_ended(cause, timezone.now()))
        if released:
            counts_changed()
    return released


def _release_expired(now) -> int:
    # skip_locked: rows another transaction is deciding or claiming are not ours to touch.
    expired = list(
        QueueEntry.objects.select_for_update(skip_locked=True)
        .filter(claimed_by__isnull=False, lease_expires_at__lt=now)  # review_queue_leases
        .values_list("pk", flat=True)[:1000]
    )
    if not expired:
        return 0
    return QueueEntry.objects.filter(pk__in=expired, lease_expires_at__lt=now).update(
        **_ended(QueueEntry.ReleaseCause.EXPIRED, F("lease_expires_at"))  # when it ran out
    )
