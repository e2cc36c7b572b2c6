"""Human decisions: approve or reject what a moderator holds, and reversals.

A decision is an immutable record; a reversal is a new one that supersedes it. What a
verdict does to the item and its author is review.consequences' (one place for the
machine's outcomes and people's decisions).
"""

import uuid
from dataclasses import dataclass, replace

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Strike
from uploads.models import MediaItem

from .access import require_moderator
from .claims import ClaimConflict
from .consequences import Verdict, apply_verdict
from .counts import counts_changed
from .models import Decision, QueueEntry
from .policy import policy_for

MAX_REASON = 500
STATUS_FOR_DECISION = {
    Decision.Verdict.APPROVE: MediaItem.Status.APPROVED,
    Decision.Verdict.REJECT: MediaItem.Status.REJECTED,
}


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
            raise ClaimConflict(_conflict_message(moderator, item, entry))
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
    strikes: dict = {}  # one violation per author per decision, however many copies it settles
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
        verdict = verdict_for(decision, reason, now)
        if item.status == MediaItem.Status.REJECTED:
            # Rejected already (an appeal upheld): the strike was counted the first time.
            verdict = replace(verdict, strike_source=None)
        apply_verdict(
            item,
            verdict,
            policy=policy_for(item),  # an intake's own (a Slack workspace's strikes to ban)
            actor=moderator,
            strikes=strikes,
        )
    QueueEntry.objects.filter(pk__in=[e.pk for e in entries]).delete()
    counts_changed()
    return decisions


def verdict_for(decision: str, reason: str, now) -> Verdict:
    """A person's decision as a verdict; the sentence is the uploader's (the machine's stays
    in the analysis record). A rejection is a strike."""
    if decision == Decision.Verdict.APPROVE:
        return Verdict(MediaItem.Status.APPROVED, "A moderator approved this item.", decided_at=now)
    return Verdict(
        MediaItem.Status.REJECTED,
        f"A moderator rejected this item: {reason.rstrip('.')}.",
        strike_source=Strike.Source.MODERATOR,
        strike_reason=reason,
        decided_at=now,
    )


def _conflict_message(moderator, item: MediaItem, entry: QueueEntry | None) -> str:
    """Why this moderator may not decide the item, from the locked row: who holds it now,
    and how their own claim ended (recorded by review.claims at each release)."""
    if entry is None:
        last = Decision.objects.filter(item_id=item.pk).select_related("moderator").first()
        if last is not None:
            return f"This item was already decided: {last.decision} by {last.moderator}."
        return "This item is not waiting for review."
    mine = entry.released_by_id == moderator.pk
    if entry.claimed_by_id is not None:
        if mine:
            return f"Another moderator holds this item now: {_how_it_ended(entry)}."
        return "Another moderator holds this item now."
    if mine:
        return f"{_how_it_ended(entry, capital=True)}; it is back in the queue: fetch it again."
    return "You do not hold this item: it is waiting in the queue; fetch it first."


def _how_it_ended(entry: QueueEntry, capital: bool = False) -> str:
    Cause = QueueEntry.ReleaseCause
    at = f" at {entry.released_at:%H:%M} UTC" if entry.released_at else ""
    sentence = {
        Cause.RELEASED: f"you released it{at}",
        Cause.LOGOUT: f"you released it when you logged out{at}",
        Cause.EXPIRED: f"your claim expired (its lease ran out{at}; no open page renewed it)",
        Cause.ADMIN: f"an admin released your claim{at}",
        Cause.ACCOUNT: f"your claims were released{at} when your account was suspended",
    }.get(entry.release_cause, f"your claim ended{at}")
    return sentence[0].upper() + sentence[1:] if capital else sentence


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
        apply_verdict(
            locked, verdict_for(decision, reason, now), policy=policy_for(locked), actor=user
        )
    item.status, item.decided_at = locked.status, locked.decided_at
    return record


@dataclass(frozen=True)
class ConfirmationRate:
    """Of the model-only blocks of a category that a person looked at, how many they
    confirmed (rejected) rather than restored (approved)."""

    confirmed: int
    decided: int

    @property
    def rate(self) -> float | None:
        return self.confirmed / self.decided if self.decided else None

    def __str__(self) -> str:
        if not self.decided:
            return "none decided yet"
        return f"{self.confirmed} of {self.decided} confirmed ({round(self.rate * 100)} %)"


def confirmation_rate(category: str, media_kind: str = "image") -> ConfirmationRate:
    """The first figure for tuning a category's flag-at score: a low rate means the model
    blocks what people restore. Confirmations are the first, not reversed, decisions on
    items the machine had flagged on that category's score (the queue's confirm entries)."""
    counts = Decision.objects.filter(
        is_override=False,
        previous_status=MediaItem.Status.FLAGGED,
        item__category=category,
        item__kind=media_kind,
    ).aggregate(decided=Count("pk"), confirmed=Count("pk", filter=Q(decision="reject")))
    return ConfirmationRate(counts["confirmed"], counts["decided"])
