"""The worst frame: what each sampled frame of an animation found, merged for one decision.

An animation is as bad as its worst frame. Every sampled frame is hashed, voted on against
the banks and past items, and classified (one batch); the outcome rules then see, per
category, the highest score of any frame, the strongest bank vote and the strongest copy
of each past item, and the reason names the frame the outcome rests on and when it shows
("in frame 4 of 8, at 1.2 s").
A still image is one frame, and this changes nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hashing.duplicates import strength

from .outcomes import Outcome


@dataclass(frozen=True)
class FrameFindings:
    """What the stages found in one frame."""

    number: int
    fp: dict | None = None
    duplicates: list = field(default_factory=list)
    bank: dict | None = None
    scores: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Worst:
    """The merged evidence, and the frame each piece of it came from."""

    scores: dict
    duplicates: list
    bank: dict | None
    score_frames: dict[str, int]  # category -> frame with its highest score
    bank_frame: int | None


def worst_of(frames: list[FrameFindings]) -> Worst:
    """Highest score per category (earliest frame on a tie); the bank vote of the first
    frame that is blocked (not allowed), else blocked, else with the most votes; each past
    item's strongest copy, tagged with its frame."""
    scores: dict[str, float] = {}
    score_frames: dict[str, int] = {}
    for found in frames:
        for name, score in found.scores.items():
            if score > scores.get(name, -1.0):
                scores[name], score_frames[name] = score, found.number

    def bank_rank(found: FrameFindings) -> tuple:
        bank = found.bank or {}
        blocked = bool(bank.get("blocked"))
        return (blocked and not bank.get("allowed"), blocked, bank.get("votes", 0))

    voted = [f for f in frames if f.bank is not None]
    best = max(voted, key=bank_rank) if voted else None  # max keeps the first of equals

    copies: dict[int, dict] = {}
    for found in frames:
        for duplicate in found.duplicates:
            held = copies.get(duplicate["pk"])
            if held is None or strength(duplicate) < strength(held):
                copies[duplicate["pk"]] = {**duplicate, "frame": found.number}
    duplicates = sorted(copies.values(), key=strength)
    return Worst(
        scores=scores,
        duplicates=duplicates,
        bank={**best.bank, "frame": best.number} if best else None,
        score_frames=score_frames,
        bank_frame=best.number if best else None,
    )


BANK_REASONS = {"bank_match", "allow_listed"}


def frame_of(outcome: Outcome, worst: Worst) -> int | None:
    """The frame the outcome rests on, or None when it rests on the whole file (an exact
    copy) or on no frame in particular (a clean pass, a classifier failure)."""
    if outcome.reason in BANK_REASONS:
        return worst.bank_frame
    category = outcome.details.get("category")
    if category is not None:
        return worst.score_frames.get(category)
    copy_of = outcome.details.get("duplicate_of")
    copy = next((d for d in worst.duplicates if d["id"] == copy_of), None)
    if copy is not None and not copy["exact"]:
        return copy["frame"]
    return None


def name_frame(
    outcome: Outcome, worst: Worst, total: int, stamps: dict[int, float | None] | None = None
) -> Outcome:
    """The outcome with its frame named in the reason and details, for an animation: "in
    frame 4 of 8, at 1.2 s." when the frame's start time is known (`stamps`: frame number
    -> seconds), so a reviewer finds the moment in a player as well as in the strip."""
    number = frame_of(outcome, worst) if total > 1 else None
    if number is None:
        return outcome
    text = outcome.text.removesuffix(".")
    stamp = (stamps or {}).get(number)
    at = f", at {stamp:.1f} s" if stamp is not None else ""
    details = {**outcome.details, "frame": number, "frames": total}
    if stamp is not None:
        details["timestamp"] = stamp
    return replace(outcome, text=f"{text} in frame {number} of {total}{at}.", details=details)
