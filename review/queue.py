"""The review queue: enqueue, claim with leases, release, decide, override, live counts.

Claims lock rows with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL): concurrent moderators
never receive the same item and never wait for each other's claims. SQLite has no row locks
but serialises writers (settings open transactions IMMEDIATE), which gives the same answer;
every claim update is also conditional on the row still being unclaimed.

Pages, the API, consumers, tasks and admin actions all call these functions.
"""

import uuid
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Strike
from accounts.services import add_strike, strike_notice
from uploads.events import item_changed
from uploads.models import MediaItem
from uploads.services import item_for_user

from .classifiers import CATEGORIES
from .models import Decision, Policy, QueueEntry

COUNTS_GROUP = "review.counts"
MAX_REASON = 500
# Without scores (the classifier failed) nobody knows how bad it is: mid-queue.
UNKNOWN_SEVERITY = 0.5
STATUS_FOR_DECISION = {
    Decision.Verdict.APPROVE: MediaItem.Status.APPROVED,
    Decision.Verdict.REJECT: MediaItem.Status.REJECTED,
}


class ClaimConflict(Exception):
    """The item is not (or no longer) held by this moderator; pages and API answer 409."""


# --- who may review ------------------------------------------------------------------------


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


# --- input --------------------------------------------------------------------------------


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


def clean_decision(decision, reason) -> tuple[str, str]:
    """Validate a verdict and its reason; a rejection needs a reason, no reason is too long."""
    if decision not in Decision.Verdict.values:
        raise ValidationError("The decision must be “approve” or “reject”.")
    if reason is not None and not isinstance(reason, str):
        raise ValidationError("The reason must be text.")
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ValidationError(f"The reason is {len(reason)} characters; at most {MAX_REASON}.")
    if decision == Decision.Verdict.REJECT and not reason:
        raise ValidationError("A rejection needs a reason: pick one or write one.")
    return decision, reason


def compose_reason(choice: str | None, text: str | None) -> str:
    """The page offers a pick-list and free text; together they make one reason."""
    parts = [p.strip() for p in (choice, text) if p and p.strip()]
    return " — ".join(parts)


# --- queue --------------------------------------------------------------------------------


def severity_of(item: MediaItem) -> float:
    scores = item.scores or {}
    values = [float(scores[c]) for c in CATEGORIES if c in scores]
    return max(values) if values else UNKNOWN_SEVERITY


def enqueue_for_review(item: MediaItem) -> QueueEntry:
    """Put an item whose status became review in the queue (idempotent), grouped with its
    pending near duplicates so that one decision settles them all."""
    entry, created = QueueEntry.objects.get_or_create(
        item=item,
        defaults={
            "severity": severity_of(item),
            "item_created_at": item.created_at or timezone.now(),
            "group_key": _group_key_for(item),
        },
    )
    if created:
        _counts_changed()
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
        .order_by("-severity", "item_created_at", "pk")
    )


def claim_items(moderator, count=None) -> list[QueueEntry]:
    """Claim up to `count` pending groups (the most severe, then the oldest) for a lease.

    Near duplicates grouped with a claimed item come along, so the result can be longer
    than `count`. Expired leases are released first, so a crashed tab's items return.
    Returns the entries without their items; `claimed_entries` reads those for display.
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
        picked = list(pending.order_by("-severity", "item_created_at", "pk")[:count])
        keys = {e.group_key for e in picked if e.group_key is not None}
        if keys:
            picked += pending.filter(group_key__in=keys).exclude(pk__in=[e.pk for e in picked])
        if picked:
            # Conditional on still being pending: the row count proves every row is ours.
            updated = QueueEntry.objects.filter(
                pk__in=[e.pk for e in picked], claimed_by__isnull=True
            ).update(claimed_by=moderator, claimed_at=now, lease_expires_at=lease)
            if updated != len(picked):  # never with row locks; re-read rather than guess
                picked = list(
                    QueueEntry.objects.filter(
                        pk__in=[e.pk for e in picked], claimed_by=moderator, claimed_at=now
                    )
                )
        if picked or released:
            _counts_changed()
    for entry in picked:
        entry.claimed_by, entry.claimed_at, entry.lease_expires_at = moderator, now, lease
    return sorted(picked, key=lambda e: (-e.severity, e.item_created_at, e.pk))


def heartbeat(moderator) -> list[QueueEntry]:
    """The open page is alive: extend the lease of everything this moderator still holds."""
    require_moderator(moderator)
    now = timezone.now()
    lease = timedelta(minutes=Policy.current().lease_minutes)
    QueueEntry.objects.filter(claimed_by=moderator).update(lease_expires_at=now + lease)
    return list(claimed_entries(moderator))


def release_claims(moderator, item_uuids=None) -> int:
    """Hand back what a moderator holds (all, or the given items). Needs no permission:
    anyone may let go of their own claims, e.g. at logout after losing the role."""
    held = QueueEntry.objects.filter(claimed_by=moderator)
    if item_uuids is not None:
        held = held.filter(item__uuid__in=list(item_uuids))
    return _release(held)


def release_entries(entry_ids) -> int:
    """Admin action: release claims whoever holds them."""
    return _release(QueueEntry.objects.filter(pk__in=list(entry_ids), claimed_by__isnull=False))


def release_expired() -> int:
    """Periodic task: release every claim whose lease ran out."""
    with transaction.atomic():
        released = _release_expired(timezone.now())
        if released:
            _counts_changed()
    return released


def _release(queryset) -> int:
    with transaction.atomic():
        released = queryset.update(claimed_by=None, claimed_at=None, lease_expires_at=None)
        if released:
            _counts_changed()
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
        claimed_by=None, claimed_at=None, lease_expires_at=None
    )


# --- decisions ----------------------------------------------------------------------------


def record_decision(moderator, item: MediaItem, decision: str, reason: str = "") -> list[Decision]:
    """Approve or reject an item this moderator holds, with its group's other held items.

    One Decision per item. A rejection strikes each author once. Raises ValidationError
    (bad input) or ClaimConflict (not held by this moderator: decided, released or taken).
    """
    require_moderator(moderator)
    decision, reason = clean_decision(decision, reason)
    key = QueueEntry.objects.filter(item_id=item.pk).values_list("group_key", flat=True).first()
    with transaction.atomic():
        # Lock the item's entry and its held siblings in one statement, in pk order.
        held = Q(item_id=item.pk)
        if key is not None:
            held |= Q(group_key=key, claimed_by=moderator)
        entries = list(QueueEntry.objects.select_for_update().filter(held).order_by("pk"))
        entry = next((e for e in entries if e.item_id == item.pk), None)
        if entry is None or entry.claimed_by_id != moderator.pk:
            raise ClaimConflict(_conflict_message(item, entry))
        entries = [e for e in entries if e.claimed_by_id == moderator.pk]
        decisions = _settle(moderator, entries, decision, reason)
    return decisions


def _settle(moderator, entries, decision, reason) -> list[Decision]:
    now = timezone.now()
    batch = uuid.uuid4()
    items = {
        i.pk: i
        for i in MediaItem.objects.select_for_update(of=("self",))
        .select_related("author", "duplicate_of")
        .filter(pk__in=[e.item_id for e in entries])
        .order_by("pk")
    }
    strikes = {}
    if decision == Decision.Verdict.REJECT:
        # One violation per author per decision, however many near copies it settles.
        for entry in entries:
            item = items[entry.item_id]
            if item.author_id and item.author_id not in strikes:
                strikes[item.author_id] = add_strike(
                    item.author,
                    source=Strike.Source.MODERATOR,
                    reason=reason,
                    item=item,
                    actor=moderator,
                )
    decisions = []
    for entry in entries:
        item = items[entry.item_id]
        decisions.append(
            Decision.objects.create(
                item=item,
                moderator=moderator,
                decision=decision,
                reason=reason,
                previous_status=item.status,
                batch=batch,
                claimed_at=entry.claimed_at,
                decided_at=now,
                seconds_to_decide=(now - entry.claimed_at).total_seconds()
                if entry.claimed_at
                else None,
            )
        )
        _set_status(item, decision, reason, now, strikes.get(item.author_id))
    QueueEntry.objects.filter(pk__in=[e.pk for e in entries]).delete()
    _counts_changed()
    return decisions


def _set_status(item: MediaItem, decision: str, reason: str, now, strike=None) -> None:
    """The item's new state, and the sentence its uploader reads (the machine's stays in
    the analysis record)."""
    item.status = STATUS_FOR_DECISION[decision]
    item.decided_at = now
    if decision == Decision.Verdict.APPROVE:
        item.reason_text = "A moderator approved this item."
    else:
        notice = f" {strike_notice(strike)}" if strike is not None else ""
        item.reason_text = f"A moderator rejected this item: {reason.rstrip('.')}.{notice}"[:500]
    item.save(update_fields=["status", "decided_at", "reason_text"])
    item_changed(item)


def _conflict_message(item: MediaItem, entry: QueueEntry | None) -> str:
    if entry is not None and entry.claimed_by_id is None:
        return "Your claim on this item ran out and it went back to the queue; fetch it again."
    if entry is not None:
        return "Another moderator holds this item now (your claim ran out or was released)."
    last = Decision.objects.filter(item_id=item.pk).select_related("moderator").first()
    if last is not None:
        return f"This item was already decided: {last.decision} by {last.moderator}."
    return "This item is not waiting for review."


def override_decision(user, item: MediaItem, decision: str, reason: str) -> Decision:
    """Reverse an earlier outcome (review.override): a new record that supersedes the last.

    Reversing a rejection does not remove the strike; lifting a ban stays an admin action.
    """
    require_moderator(user)
    if not user.has_perm("review.override"):
        raise PermissionDenied("Reversing a decision needs the override permission.")
    decision, reason = clean_decision(decision, reason)
    if not reason:
        raise ValidationError("A reversal needs a reason.")
    with transaction.atomic():
        locked = (
            MediaItem.objects.select_for_update(of=("self",))
            .select_related("author", "duplicate_of")
            .get(pk=item.pk)
        )
        if QueueEntry.objects.filter(item_id=locked.pk).exists():
            raise ClaimConflict("This item is waiting for review; decide it from the queue.")
        if locked.status == MediaItem.Status.PROCESSING:
            raise ClaimConflict("This item is still being analysed.")
        if locked.status == STATUS_FOR_DECISION[decision]:
            raise ValidationError(f"This item is already {locked.get_status_display().lower()}.")
        now = timezone.now()
        record = Decision.objects.create(
            item=locked,
            moderator=user,
            decision=decision,
            reason=reason,
            previous_status=locked.status,
            decided_at=now,
            supersedes=Decision.objects.filter(item_id=locked.pk).first(),
            is_override=True,
        )
        strike = None
        if decision == Decision.Verdict.REJECT and locked.author_id:
            strike = add_strike(
                locked.author,
                source=Strike.Source.MODERATOR,
                reason=reason,
                item=locked,
                actor=user,
            )
        _set_status(locked, decision, reason, now, strike)
    item.status, item.decided_at = locked.status, locked.decided_at
    return record


# --- live counts --------------------------------------------------------------------------


def counts_snapshot() -> dict:
    """The queue's numbers for everyone; each viewer's own share is taken out later."""
    pending = QueueEntry.objects.filter(claimed_by__isnull=True).aggregate(
        n=Count("pk"), oldest=Min("item_created_at")
    )
    claimed = (
        QueueEntry.objects.filter(claimed_by__isnull=False)
        .values_list("claimed_by")
        .annotate(n=Count("pk"))
        .order_by()
    )
    oldest = pending["oldest"]
    return {
        "pending": pending["n"],
        "oldest_pending_at": oldest.isoformat() if oldest else None,
        "claimed_by": {str(user_id): n for user_id, n in claimed},
    }


def stats_for(snapshot: dict, user_id, now=None) -> dict:
    """A viewer's view of a snapshot: pending, theirs, others', the oldest pending age."""
    claimed = snapshot["claimed_by"]
    mine = claimed.get(str(user_id), 0) if user_id is not None else 0
    total = sum(claimed.values())
    oldest = snapshot["oldest_pending_at"]
    age = None
    if oldest:
        age = max(0, round(((now or timezone.now()) - parse_datetime(oldest)).total_seconds()))
    return {
        "pending": snapshot["pending"],
        "claimed": total,
        "claimed_by_me": mine,
        "claimed_by_others": total - mine,
        "oldest_pending_at": oldest,
        "oldest_pending_age_s": age,
    }


def pending_stats(viewer=None) -> dict:
    return stats_for(counts_snapshot(), viewer.pk if viewer is not None else None)


def _counts_changed() -> None:
    """After commit, tell open review pages that the numbers moved.

    Only a poke travels: the consumers re-read the numbers, coalescing bursts, so a busy
    queue costs one count per process per moment rather than one per claim.
    """
    transaction.on_commit(poke_review_pages, robust=True)


def poke_review_pages() -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(COUNTS_GROUP, {"type": "counts.changed"})
