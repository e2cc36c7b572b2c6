"""A video's frames through the classifiers: batches in time order, an early stop, and the
timeline the result carries (frames analysed, the first flagged moment, the top frames).

The sampled frames (uploads.video, one a second by default) are classified BATCH at a time
with the image classifiers, earliest first. After each batch the frames' category scores
are checked: once a frame reaches its category's flag-at score, the rest is not classified
(the item is blocked either way, and a 10-minute clip costs 600 NudeNet runs, about 12 s);
the fingerprint is always finished, since it was computed in the decode pass before. Each
batch reports progress (frames done of the sampled total) to the item's page and the API
status through ``report_progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from uploads.events import push_to_uploader
from uploads.kinds import Frames, sample_positions
from uploads.models import MediaItem

from .categories import category_scores
from .classifiers import classify_frames
from .frames import Worst, frame_of
from .outcomes import Outcome

# 16 frames per NudeNet session.run: the batch cost per frame flattens out from about 8.
BATCH = 16
TOP_FRAMES = 5
STRIP_FRAMES = 12  # the review strip: what a moderator scans before playing the clip


def flags(scores: dict, rules) -> bool:
    """Whether any category reaches its flag-at score (a confident flag)."""
    return any(scores.get(rule.name, 0.0) >= rule.flag_at for rule in rules)


def classify_in_batches(
    providers: list[str],
    frames: Frames,
    labels,
    rules,
    *,
    timeout_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[list], dict, int]:
    """(results per frame, errors, frames classified). Frames after the batch holding the
    first confident flag get no results; so do all after a provider failed (a person looks
    at it anyway: classifier errors send the item to review)."""
    subjects = frames.subjects
    per_frame: list[list] = [[] for _ in subjects]
    errors: dict = {}
    done = 0
    deadline = time.monotonic() + timeout_s * max(1, len(subjects) // BATCH)
    for start in range(0, len(subjects), BATCH):
        chunk = subjects[start : start + BATCH]
        left = max(1.0, deadline - time.monotonic())
        results, failed = classify_frames(providers, chunk, timeout_s=min(timeout_s, left))
        per_frame[start : start + len(chunk)] = results
        done += len(chunk)
        if progress is not None:
            progress(done, len(subjects))
        if failed:
            errors.update(failed)
            break
        if any(flags(category_scores(r, labels, rules), rules) for r in results):
            break
    return per_frame, errors, done


def timeline(frames: Frames, found: list, rules, analysed: int) -> dict:
    """What the result says of a video: frames analysed, the first flagged moment, the top
    frames (highest category score first) and each classified frame's scores."""
    stamps = {f.number: f.timestamp for f in frames.frames}
    classified = [f for f in found if f.scores][:analysed] if analysed else []
    flagged = next((f for f in classified if flags(f.scores, rules)), None)

    def top(f):
        name, score = max(f.scores.items(), key=lambda kv: kv[1])
        return {"frame": f.number, "timestamp": stamps[f.number], "category": name, "score": score}

    ranked = sorted((top(f) for f in classified), key=lambda t: (-t["score"], t["timestamp"]))
    signature = frames.signature
    return {
        "strip": strip_of(frames, classified, rules),
        "duration": round(getattr(signature, "duration", 0.0), 3),
        "frames_sampled": len(frames.frames),
        "frames_analyzed": analysed,
        "frames_hashed": len(getattr(signature, "hashes", ())),
        "flagged_at_timestamp": stamps[flagged.number] if flagged else None,
        "top_frames": ranked[:TOP_FRAMES],
        "frames": [
            {"frame": f.number, "timestamp": stamps[f.number], "scores": f.scores}
            for f in classified
        ],
    }


def strip_of(frames: Frames, classified: list, rules, count: int = STRIP_FRAMES) -> list[dict]:
    """The frames of the review strip: those at a flag-at score first (in time order), then
    those at a review-at score, then frames spread over the clip, ``count`` at most."""
    stamps = {f.number: f.timestamp for f in frames.frames}
    scores = {f.number: f.scores for f in classified}

    def level(number):
        found = scores.get(number) or {}
        if flags(found, rules):
            return 0
        if any(found.get(r.name, 0.0) >= r.review_at for r in rules):
            return 1
        return 2

    numbers = [f.number for f in frames.frames]
    spread = [numbers[i] for i in sample_positions(len(numbers), count)]
    chosen = sorted({*[n for n in numbers if level(n) < 2], *spread}, key=lambda n: (level(n), n))
    out = []
    for number in chosen[:count]:
        found = scores.get(number) or {}
        name, score = max(found.items(), key=lambda kv: kv[1]) if found else ("", None)
        out.append(
            {
                "frame": number,
                "timestamp": stamps[number],
                "flagged": level(number) == 0,
                "category": name,
                "score": score,
            }
        )
    return out


def strip_pictures(frames: Frames, moments: dict) -> list[tuple[int, object]]:
    """(frame number, picture) of the strip's frames, for uploads.video.save_strip."""
    wanted = {entry["frame"] for entry in moments.get("strip", ())}
    return [(f.number, f.subject) for f in frames.frames if f.number in wanted]


def format_timestamp(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def name_moment(outcome: Outcome, worst: Worst, frames: Frames) -> Outcome:
    """The outcome with the moment it rests on: "… at 0:07." and its timestamp in the
    details (a category's highest-scoring frame; a bank match or copy rests on the whole)."""
    number = frame_of(outcome, worst) if outcome.details.get("category") else None
    stamp = next((f.timestamp for f in frames.frames if f.number == number), None)
    if stamp is None:
        return outcome
    text = outcome.text.removesuffix(".")
    return replace(
        outcome,
        text=f"{text} at {format_timestamp(stamp)}.",
        details={**outcome.details, "frame": number, "timestamp": stamp},
    )


def report_progress(item, done: int, total: int) -> None:
    """Frames classified of the sampled total, on the item (its payload's details, read by
    the item page and the API status) and pushed to the uploader's open pages. Not an
    "item changed" event: nothing about the item's state has changed yet."""
    progress = {"done": done, "total": total}
    item.details = {**item.details, "progress": progress}
    MediaItem.objects.filter(pk=item.pk, status=MediaItem.Status.PROCESSING).update(
        details=item.details
    )
    push_to_uploader(MediaItem, item)
