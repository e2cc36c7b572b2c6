"""The analysis pipeline: decode → fingerprints → duplicates and bank vote → classifiers →
the outcome rules → the verdict applied, with an audit record of every stage.

The item's media kind says how it is decoded and which stages apply; the hash algorithms
and classifiers of that kind (their registries) do the work; the policy's rows (voters,
categories, labels) say how much each finding counts.
"""

import logging
import time
import uuid
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Strike
from hashing.algorithms import ALGORITHMS, fingerprint, fingerprint_hex
from hashing.duplicates import find_duplicates
from hashing.matcher import vote
from hashing.models import Fingerprint
from hashing.video import (
    animation_fingerprint,
    find_video_duplicates,
    store_video_frames,
    vote_video,
)
from moderation_site.logs import log_context
from moderation_site.metrics import observe_analysis
from uploads.kinds import get_kind
from uploads.models import MediaItem
from uploads.services import make_public_copy
from uploads.video import save_strip

from .categories import category_scores, overall_class
from .claims import enqueue_for_review
from .classifiers import classify_frames, providers_for
from .consequences import Verdict, apply_verdict
from .frames import FrameFindings, name_frame, worst_of
from .models import Analysis, QueueEntry
from .outcomes import FLAGGED, PASS, REVIEW, Outcome, decide, rests_on_a_model
from .policy import policy_for
from .video import (
    classify_in_batches,
    name_moment,
    report_progress,
    strip_pictures,
    timeline,
)

log = logging.getLogger(__name__)

STATUS_FOR_OUTCOME = {
    PASS: MediaItem.Status.PASSED,
    REVIEW: MediaItem.Status.REVIEW,
    FLAGGED: MediaItem.Status.FLAGGED,
}
# Known-bad content counts against the author; a model's guess alone does not.
STRIKE_SOURCES = {"bank_match": Strike.Source.BANK, "duplicate_of_rejected": Strike.Source.POLICY}
# What an animation's item keeps of its frames' timeline (review.video.timeline), in
# details["animation"]: the review strip and the moments, beside the picture.
ANIMATION_SUMMARY = ("strip", "frames_sampled", "flagged_at_timestamp", "top_frames")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def analyse_item(item_id: int, request_id: str | None = None) -> Analysis | None:
    """Run the automated analysis once; later calls for a decided item do nothing.

    Any failure sends the item to review (never a silent pass, never stuck processing).
    An animation is judged on its worst sampled frame (review.frames). The item's public
    copy is made here too (uploads.services.make_public_copy), off the request path.
    Every log line of the analysis carries the item and request ids (moderation_site.logs).
    """
    request_id = request_id or str(uuid.uuid4())
    with log_context(item_id=item_id, request_id=request_id):
        return _analyse(item_id, request_id)


def _analyse(item_id: int, request_id: str) -> Analysis | None:
    item = MediaItem.objects.select_related("author").filter(pk=item_id).first()
    if item is None or item.status != MediaItem.Status.PROCESSING:
        return None
    timings: dict[str, float] = {}
    started = time.perf_counter()
    policy = policy_for(item)
    rules = policy.category_rules(item.kind)
    frames, found, results, errors, data, moments = None, [], [], {}, None, None
    animation = None
    worst = worst_of([])
    try:
        kind = get_kind(item.kind)
        if kind.frame_kind:  # a video's frames are judged as pictures
            rules = policy.category_rules(kind.frame_kind)
        t = time.perf_counter()
        with item.file.open("rb") as fh:
            data = fh.read()
        timings["read"] = _ms(t)
        t = time.perf_counter()
        frames = kind.sample(data)
        fps = [None] * len(frames.frames)
        whole = frames.signature is not None  # a video: one fingerprint of the whole pass
        if "fingerprint" in kind.stages and whole:
            fps[0] = fingerprint(frames.signature, item.kind, policy.mirror_aware)
        elif "fingerprint" in kind.stages:
            fps = [fingerprint(f.subject, item.kind, policy.mirror_aware) for f in frames.frames]
        timings["decode_hash"] = _ms(t)
        matched = [([], None)] * len(fps)
        if fps[0] is not None and "match" in kind.stages:
            t = time.perf_counter()
            voting = policy.voting_rules()  # one read of the voter rows for every vote
            if whole:
                copies = find_video_duplicates(item, fps[0], voting)
                matched[0] = (copies, vote_video(fps[0], voting))
            else:
                matched = [(find_duplicates(item, fp, voting), vote(fp, voting)) for fp in fps]
            if frames.animated and not whole:  # also against the video banks
                stamps = [f.timestamp or 0.0 for f in frames.frames]
                as_video = vote_video(animation_fingerprint(fps, stamps), voting)
                if as_video["blocked"] and not any((b or {}).get("blocked") for _, b in matched):
                    matched[0] = (matched[0][0], as_video)
            timings["match"] = _ms(t)
        per_frame = [[] for _ in fps]
        labels = policy.label_map()
        analysed = len(fps)
        if "classify" in kind.stages:
            t = time.perf_counter()
            providers = providers_for(kind.frame_kind or item.kind, policy.provider_names)
            if whole:
                per_frame, errors, analysed = classify_in_batches(
                    providers,
                    frames,
                    labels,
                    rules,
                    timeout_s=settings.CLASSIFIER_TIMEOUT_S,
                    progress=lambda done, total: report_progress(item, done, total),
                )
            else:
                per_frame, errors = classify_frames(
                    providers,
                    frames.subjects,
                    timeout_s=settings.CLASSIFIER_TIMEOUT_S,
                    policy=policy,  # a provider's prepare() may read its rows (terms)
                )
            timings["classify"] = _ms(t)
        found = [
            FrameFindings(
                frame.number, fp, dups, bank, category_scores(frame_results, labels, rules)
            )
            for frame, fp, (dups, bank), frame_results in zip(
                frames.frames, fps, matched, per_frame, strict=True
            )
        ]
        results = per_frame
        worst = worst_of(found)
        outcome = decide(
            scores=worst.scores,
            rules=rules,
            classifier_errors=errors,
            duplicates=worst.duplicates,
            bank=worst.bank,
        )
        if whole:
            moments = timeline(frames, found, rules, analysed)
            outcome = name_moment(outcome, worst, frames)
        else:
            stamps = {f.number: f.timestamp for f in frames.frames}
            outcome = name_frame(outcome, worst, frames.total, stamps)
            if frames.animated:  # the review strip and its moments, as for a video
                animation = {
                    k: v
                    for k, v in timeline(frames, found, rules, len(found)).items()
                    if k in ANIMATION_SUMMARY
                }
        if policy.confirm_model_flags and rests_on_a_model(outcome):
            outcome = replace(outcome, text=f"{outcome.text} A moderator will check it.")
    except Exception as exc:  # corrupt storage, decoder bug...: a person must look
        log.exception("analysis of item %s failed", item_id)
        worst = worst_of([])
        errors = {**errors, "pipeline": f"{type(exc).__name__}: {exc}"}
        outcome = Outcome(
            REVIEW, "analysis_error", "The automatic analysis failed, so a person will look at it."
        )
    if data is not None:
        # The public copy, once, here in the worker and before the verdict can make the
        # item visible: the web request only streams it. Never raises (a still at worst).
        t = time.perf_counter()
        make_public_copy(item, data)
        timings["public_copy"] = _ms(t)
    strip = moments if moments is not None else animation
    if strip is not None:  # a video's or an animation's strip of frames for the review page
        save_strip(item, strip_pictures(frames, strip))
    category, confidence = shown_class(outcome, worst.scores, rules)
    timings["total"] = _ms(started)
    findings = Findings(
        frames=found,
        total=frames.total if frames else 1,
        duplicates=worst.duplicates,
        bank=worst.bank,
        results=results,
        errors=errors,
        scores=worst.scores,
        category=category,
        confidence=confidence,
        timeline=moments,
        animation=animation,
    )
    observe_analysis({**timings, **findings.provider_ms()}, errors)  # /metrics
    return _record(item, request_id, policy, findings, outcome, timings)


# Outcomes decided by a match, not by a model's score: the badge would only mislead.
MATCH_REASONS = {
    "bank_match",
    "duplicate_of_rejected",
    "near_copy_of_rejected",
    "allow_listed",
    "duplicate_of_approved",
}


def shown_class(outcome: Outcome, scores: dict, rules) -> tuple[str, float | None]:
    """The class badge, truthful about what drove the outcome.

    A category's rule: that category and its score (never "neutral 65 %" on an item held
    as possibly explicit). A match (bank, copy of a decided item): no class at all, the
    reason says it. Otherwise the overall class.
    """
    if outcome.details.get("category") in scores:
        name = outcome.details["category"]
        return name, scores[name]
    if outcome.reason in MATCH_REASONS or not scores:
        return "", None
    return overall_class(scores, rules)


@dataclass(frozen=True)
class Findings:
    """What the stages found, carried to the one transaction that records it: per frame
    (one for a still), and merged (the worst frame's evidence)."""

    frames: list[FrameFindings]
    total: int
    duplicates: list
    bank: dict | None
    results: list[list]  # per frame, a ClassifierResult per provider that answered
    errors: dict
    scores: dict
    category: str
    confidence: float | None
    timeline: dict | None = None  # a video's (review.video.timeline)
    animation: dict | None = None  # an animation's strip and moments (ANIMATION_SUMMARY)

    def hashes(self) -> dict:
        """The first frame's hashes (the item's stored fingerprint) as hex, plus, for an
        animation, every sampled frame's under "frames"."""
        if not self.frames or self.frames[0].fp is None:
            return {}
        hashes = fingerprint_hex(self.frames[0].fp)
        if self.total > 1 and self.timeline is None:
            hashes["frames"] = {str(f.number): fingerprint_hex(f.fp) for f in self.frames}
        return hashes

    def raw(self) -> dict:
        """Each provider's raw output; for an animation, a list of {"frame", "raw"}."""
        raw: dict = {}
        for frame, results in zip(self.frames, self.results, strict=False):
            for result in results:
                if self.total > 1:
                    raw.setdefault(result.provider, []).append(
                        {"frame": frame.number, "raw": result.raw}
                    )
                else:
                    raw[result.provider] = result.raw
        return raw

    def provider_ms(self) -> dict:
        spent: dict[str, float] = {}
        for results in self.results:
            for result in results:
                key = f"provider_{result.provider}"
                spent[key] = round(spent.get(key, 0.0) + result.elapsed_ms, 2)
        return spent


def _record(item, request_id, policy, found: Findings, outcome, timings) -> Analysis | None:
    matches = {"duplicates": found.duplicates, "bank": found.bank}
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().filter(pk=item.pk).first()
        if locked is None or locked.status != MediaItem.Status.PROCESSING:
            return None  # deleted meanwhile, or analysed by a concurrent run
        hashes = found.hashes()  # once: the rows and the audit record share it
        if hashes:
            store_fingerprint(locked, hashes)
        if found.timeline is not None:
            store_video_frames(locked, found.frames[0].fp or {})
            details = {k: v for k, v in locked.details.items() if k != "progress"}
            summary = {k: v for k, v in found.timeline.items() if k != "frames"}
            locked.details = {**details, "video": summary}
        if found.animation is not None:
            locked.details = {**locked.details, "animation": found.animation}
        dup = next(
            (d for d in found.duplicates if d["id"] == outcome.details.get("duplicate_of")), None
        )
        locked.category, locked.confidence = found.category, found.confidence
        locked.scores = found.scores
        locked.matches = matches
        locked.duplicate_of_id = dup["pk"] if dup else None
        locked.duplicate_distance = dup["distance"] if dup else None
        locked.analysed_at = timezone.now()
        verdict = Verdict(
            STATUS_FOR_OUTCOME[outcome.outcome],
            outcome.text,
            reason=outcome.reason,
            strike_source=STRIKE_SOURCES.get(outcome.reason),
        )
        apply_verdict(
            locked,
            verdict,
            policy=policy,
            also_save=(
                "category",
                "confidence",
                "scores",
                "matches",
                "duplicate_of",
                "duplicate_distance",
                "analysed_at",
                "details",
            ),
        )
        analysis = Analysis.objects.create(
            request_id=request_id,
            item=locked,
            source=locked.source,
            author_id=locked.author_id,
            hashes=hashes,
            matches=matches,
            scores=found.scores,
            raw={**found.raw(), **({"timeline": found.timeline} if found.timeline else {})},
            errors=found.errors,
            outcome=outcome.outcome,
            reason=outcome.reason,
            reason_text=outcome.text[:500],
            timings={**timings, **found.provider_ms()},
        )
        if locked.status == MediaItem.Status.REVIEW:
            enqueue_for_review(locked)
        elif policy.confirm_model_flags and rests_on_a_model(outcome):
            enqueue_for_review(locked, QueueEntry.Purpose.CONFIRM)
    return analysis


def store_fingerprint(item: MediaItem, hexes: dict) -> None:
    """One row per algorithm (replacing any earlier rows).

    Mirrored variants are not stored: every lookup searches the query's mirror against
    plain hashes, which finds the same pairs (Hamming distance is symmetric under the
    flip), and writing them cost 8 % of 2-process throughput on SQLite (docs/benchmarks.md).
    They stay in the analysis record.
    """
    quality = hexes.get("quality", {})
    rows = [
        Fingerprint(item=item, algorithm=name, value=value, quality=quality.get(name))
        for name, value in hexes.items()
        if name in ALGORITHMS and isinstance(value, str)  # a video's frame lists: VideoFrames
    ]
    Fingerprint.objects.filter(item=item).delete()
    Fingerprint.objects.bulk_create(rows)
