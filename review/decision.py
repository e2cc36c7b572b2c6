"""The decision engine: a plain function of matches, scores and policy.

Order matters and is the product's promise: known-bad content (a bank match by quorum, a
duplicate of something a moderator rejected) is flagged before any model is consulted; a
classifier that failed never lets an item pass; a duplicate of an approved item passes only
when the classifiers agree.
"""

from dataclasses import dataclass, field

PASS, REVIEW, FLAGGED = "pass", "review", "flagged"


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str
    text: str
    details: dict = field(default_factory=dict)


def _pct(score: float) -> str:
    return f"{round(score * 100)}%"


def decide(
    *,
    scores: dict[str, float],
    policy,
    classifier_errors: dict[str, str] | None = None,
    duplicates: list[dict] | None = None,
    bank: dict | None = None,
) -> Outcome:
    """Turn what the pipeline found into pass / review / flagged with a reason.

    `duplicates`: earlier items, each {"id", "distance", "exact", "status"}; nearest first.
    `bank`: the quorum result {"blocked", "allowed", "votes", "quorum", "bank"} or None.
    """
    duplicates = duplicates or []
    if bank and bank.get("blocked") and not bank.get("allowed"):
        # The bank's name stays in the audit: uploaders read this sentence.
        return Outcome(
            FLAGGED,
            "bank_match",
            "Matches known banned content ("
            f"{bank['votes']} of {bank.get('eligible', bank['voters'])} hash voters agreed; "
            f"{bank['quorum']} needed).",
        )
    rejected = next((d for d in duplicates if d.get("status") == "rejected"), None)
    if rejected:
        how = (
            "an exact copy"
            if rejected["exact"]
            else f"a near copy (distance {rejected['distance']})"
        )
        return Outcome(
            FLAGGED,
            "duplicate_of_rejected",
            f"This is {how} of an item a moderator rejected.",
            {"duplicate_of": rejected["id"], "distance": rejected["distance"]},
        )

    explicit = scores.get("explicit", 0.0)
    suggestive = scores.get("suggestive", 0.0)
    if explicit >= policy.explicit_flag_at:
        return Outcome(
            FLAGGED,
            "explicit_flagged",
            f"Explicit content detected ({_pct(explicit)}; "
            f"flagged at {_pct(policy.explicit_flag_at)}).",
        )
    if suggestive >= policy.suggestive_flag_at:
        return Outcome(
            FLAGGED,
            "suggestive_flagged",
            f"Suggestive content detected ({_pct(suggestive)}; "
            f"flagged at {_pct(policy.suggestive_flag_at)}).",
        )
    if classifier_errors:
        names = ", ".join(sorted(classifier_errors))
        return Outcome(
            REVIEW,
            "classifier_error",
            f"The classifier ({names}) failed, so a person will look at this item.",
        )
    if explicit >= policy.explicit_review_at:
        return Outcome(
            REVIEW,
            "explicit_for_review",
            f"Possibly explicit ({_pct(explicit)}; review from {_pct(policy.explicit_review_at)}).",
        )
    if suggestive >= policy.suggestive_review_at:
        return Outcome(
            REVIEW,
            "suggestive_for_review",
            f"Possibly suggestive ({_pct(suggestive)}; "
            f"review from {_pct(policy.suggestive_review_at)}).",
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
