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

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from moderation_site.errors import Conflict
from uploads.models import MediaItem

from .access import require_moderator
from .counts import counts_changed
from .models import Policy, QueueEntry

# Without scores (the classifier failed) nobody knows how bad it is: mid-queue.
UNKNOWN_SEVERITY = 0.5
# Working order: review items before confirmations, the most severe, then the oldest.
ORDER = ("-priority", "-severity", "item_created_at", "pk")


def _working_order(entry: QueueEntry) -> tuple:
    return (-entry.priority, -entry.severity, entry.item_created_at, entry.pk)


class ClaimConflict(Conflict):
    """The item is not (or no longer) held by this moderator; pages and API answer 409."""

    code = "claim_conflict"


def clean_count(value, policy: Policy | None = None) -> int:
    """How many items to claim: the policy's default when absent, 1..claim_batch_max."""
    policy = policy or Policy.current()
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
    then the oldest) for a lease.

    Near duplicates grouped with a claimed item come along, so the result can be longer
    than `count`. Expired leases are released first, so a crashed tab's items return.
    Returns the entries without their items; `claimed_entries` reads those for display.
    `source` names the credential that claims (a session or a token): a log-out releases
    what its session claimed.
    """
    require_moderator(moderator)
    policy = Policy.current()
    count = clean_count(count, policy)
    now = timezone.now()
    lease = now + timedelta(minutes=policy.lease_minutes)
    with transaction.atomic():
        released = _release_expired(now)
        pending = QueueEntry.objects.select_for_update(skip_locked=True).filter(
            claimed_by__isnull=True
        )
        picked = list(pending.order_by(*ORDER)[:count])
        keys = {e.group_key for e in picked if e.group_key is not None}
        if keys:
            picked += pending.filter(group_key__in=keys).exclude(pk__in=[e.pk for e in picked])
        if picked:
            # Conditional on still being pending: the row count proves every row is ours.
            updated = QueueEntry.objects.filter(
                pk__in=[e.pk for e in picked], claimed_by__isnull=True
            ).update(
                claimed_by=moderator,
                claimed_at=now,
                lease_expires_at=lease,
                claim_source=source[:64],
            )
            if updated != len(picked):  # never with row locks; re-read rather than guess
                picked = list(
                    QueueEntry.objects.filter(
                        pk__in=[e.pk for e in picked], claimed_by=moderator, claimed_at=now
                    )
                )
        if picked or released:
            counts_changed()
    for entry in picked:
        entry.claimed_by, entry.claimed_at, entry.lease_expires_at = moderator, now, lease
        entry.claim_source = source[:64]
    return sorted(picked, key=_working_order)


def heartbeat(moderator) -> list[QueueEntry]:
    """The open page is alive: extend the lease of everything this moderator still holds."""
    require_moderator(moderator)
    now = timezone.now()
    lease = timedelta(minutes=Policy.current().lease_minutes)
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
        .filter(lease_expires_at__lt=now)
        .values_list("pk", flat=True)[:1000]
    )
    if not expired:
        return 0
    return QueueEntry.objects.filter(pk__in=expired, lease_expires_at__lt=now).update(
        **_ended(QueueEntry.ReleaseCause.EXPIRED, F("lease_expires_at"))  # when it ran out
    )
