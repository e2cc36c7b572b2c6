"""The one place that applies a verdict to an item: the machine's outcome or a person's
decision. Status, the sentence its author reads, a strike (and so perhaps a ban), and the
"item changed" event that tells every listener (the uploader's page today; client
webhooks and Slack replies next). The analysis, decisions and reversals all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import Strike
from accounts.services import add_strike, strike_notice
from uploads.events import announce
from uploads.models import MediaItem

MAX_TEXT = 500


@dataclass(frozen=True)
class Verdict:
    """What happens to an item. `text` is what its author reads (the machine's details stay
    in the analysis record); `strike_source` counts a violation against the author."""

    status: str
    text: str
    reason: str | None = None  # the machine reason; a person's decision keeps the machine's
    strike_source: str | None = None
    strike_reason: str = ""
    decided_at: datetime | None = None


def apply_verdict(
    item: MediaItem,
    verdict: Verdict,
    *,
    policy,
    actor=None,
    strikes: dict | None = None,
    also_save: tuple[str, ...] = (),
) -> Strike | None:
    """Apply `verdict` to a locked `item`, inside the caller's transaction.

    `strikes` (author id -> strike) is shared across the items of one action, so that one
    decision over several near copies strikes each author once; their sentences all carry
    the notice. `also_save` names further fields the caller set on the item.
    """
    strike = None
    if verdict.strike_source and item.author_id:
        strike = (strikes or {}).get(item.author_id)
        if strike is None:
            strike = add_strike(
                item.author,
                source=verdict.strike_source,
                reason=verdict.strike_reason or verdict.text,
                strikes_to_ban=policy.strikes_to_ban,
                item=item,
                actor=actor,
            )
            if strikes is not None:
                strikes[item.author_id] = strike
    text = verdict.text
    if strike is not None:
        text = f"{text} {strike_notice(strike, policy.strikes_to_ban)}"
    item.status = verdict.status
    item.reason_text = text[:MAX_TEXT]
    fields = ["status", "reason_text", *also_save]
    if verdict.reason is not None:
        item.reason = verdict.reason
        fields.append("reason")
    if verdict.decided_at is not None:
        item.decided_at = verdict.decided_at
        fields.append("decided_at")
    item.save(update_fields=fields)
    announce(item)
    return strike
