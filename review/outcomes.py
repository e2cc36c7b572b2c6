"""The automated outcome rules: a plain function of matches, scores and category rules.

Order matters and is the product's promise: known-bad content (a bank match by quorum, a
byte-identical copy of something a moderator rejected) is flagged before any model is
consulted; then categories flag, most severe first; a classifier that failed never lets an
item pass; a near copy of a rejected item goes to a person (weaker evidence never strikes
on its own); then categories send to review, most severe first; a duplicate of an approved
item passes only when the classifiers agree. (A person's verdict is a decision: review.decisions.)
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from .categories import CategoryRule, sort_rules

PASS, REVIEW, FLAGGED = "pass", "review", "flagged"


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str
    text: str
    details: dict = field(default_factory=dict)


def rests_on_a_model(outcome: Outcome) -> bool:
    """A block on a classifier's score alone (no bank match, no copy of a rejected item):
    models flag colour wheels and other graphics at 64-84 % "explicit", so a person should
    see every such block (Policy.confirm_model_flags)."""
    return outcome.outcome == FLAGGED and "category" in outcome.details


def _bank_text(bank: dict) -> str:
    if bank.get("strict"):  # a reference with too few hashes to vote: each was close alone
        close = ", ".join(
            f"{name} at distance {found['distance']}"
            for name, found in sorted((bank.get("per_voter") or {}).items())
            if found.get("vote")
        )
        return (
            "Matches known banned content: a reference with too few hashes for a vote, "
            f"each close on its own ({close})."
        )
    agreeing = sum(bool(v.get("vote")) for v in (bank.get("per_voter") or {}).values())
    return (
        f"Matches known banned content ({_voters(agreeing or bank['votes'])} agreed, vote weight "
        f"{bank['votes']} of {bank.get('eligible', bank['voters'])}; {bank['quorum']} needed)."
    )


def _voters(count: int) -> str:
    return f"{count} hash voter{'s' if count != 1 else ''}"


def _pct(score: float) -> str:
    return f"{round(score * 100)}%"


def decide(
    *,
    scores: dict[str, float],
    rules: Sequence[CategoryRule],
    classifier_errors: dict[str, str] | None = None,
    duplicates: list[dict] | None = None,
    bank: dict | None = None,
) -> Outcome:
    """Turn what the pipeline found into pass / review / flagged with a reason.

    `rules`: the policy's categories for the item's kind (any order; checked most severe
    first). Reasons are `<category>_flagged` and `<category>_for_review`.
    `duplicates`: earlier items, each {"id", "exact", "status", "distance", and for near
    copies "votes" and "eligible"}; strongest first (hashing.duplicates). Only an exact
    copy of a rejected item is flagged (with a strike); a near copy goes to review.
    `bank`: the quorum result {"blocked", "allowed", "votes", "quorum", "bank"} or None.
    """
    duplicates = duplicates or []
    rules = sort_rules(rules)
    if bank and bank.get("blocked") and not bank.get("allowed"):
        # The bank's name stays in the audit: uploaders read this sentence.
        return Outcome(FLAGGED, "bank_match", _bank_text(bank))
    rejected = [d for d in duplicates if d.get("status") == "rejected"]
    exact = next((d for d in rejected if d.get("exact")), None)
    if exact:  # byte-identical: the one copy evidence strong enough to act on alone
        return Outcome(
            FLAGGED,
            "duplicate_of_rejected",
            "This is an exact copy of an item a moderator rejected.",
            {"duplicate_of": exact["id"], "distance": 0},
        )

    for rule in rules:
        score = scores.get(rule.name, 0.0)
        if score >= rule.flag_at:
            return Outcome(
                FLAGGED,
                f"{rule.name}_flagged",
                f"{rule.label} content detected ({_pct(score)}; flagged at {_pct(rule.flag_at)}).",
                {"category": rule.name},
            )
    if classifier_errors:
        names = ", ".join(sorted(classifier_errors))
        return Outcome(
            REVIEW,
            "classifier_error",
            f"The classifier ({names}) failed, so a person will look at this item.",
        )
    if rejected:  # a near copy: weaker evidence, so a person decides (and no strike)
        near = rejected[0]
        return Outcome(
            REVIEW,
            "near_copy_of_rejected",
            "This looks like a near copy of an item a moderator rejected "
            f"({_voters(len(near.get('voters') or {}) or near['votes'])} agreed, vote weight "
            f"{near['votes']} of {near['eligible']}), so a person will check it.",
            {"duplicate_of": near["id"], "distance": near["distance"]},
        )
    for rule in rules:
        score = scores.get(rule.name, 0.0)
        if score >= rule.review_at:
            return Outcome(
                REVIEW,
                f"{rule.name}_for_review",
                f"Possibly {rule.label.lower()} ({_pct(score)}; "
                f"review from {_pct(rule.review_at)}).",
                {"category": rule.name},
            )
    if bank and bank.get("allowed") and bank.get("blocked"):
        return Outcome(
            PASS,
            "allow_listed",
            "Matched known content, but an allow-list entry overrides it.",
        )
    approved = next((d for d in duplicates if d.get("status") == "approved"), None)
    if approved:
        return Outcome(
            PASS,
            "duplicate_of_approved",
            f"A copy (distance {approved['distance']}) of an item a moderator approved.",
            {"duplicate_of": approved["id"], "distance": approved["distance"]},
        )
    return Outcome(PASS, "clean", "Nothing objectionable found.")
