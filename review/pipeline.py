"""The analysis pipeline: decode → fingerprints → duplicates and bank vote → classifiers →
the outcome rules → the verdict applied, with an audit record of every stage.

The item's media kind says how it is decoded and which stages apply; the hash algorithms
and classifiers of that kind (their registries) do the work; the policy's rows (voters,
categories, labels) say how much each finding counts.
"""

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Strike
from hashing.algorithms import fingerprint, fingerprint_hex
from hashing.duplicates import find_duplicates
from hashing.matcher import vote
from hashing.models import Fingerprint
from uploads.kinds import get_kind
from uploads.models import MediaItem

from .categories import category_scores, overall_class
from .claims import enqueue_for_review
from .classifiers import providers_for, run_classifiers
from .consequences import Verdict, apply_verdict
from .models import Analysis, Policy
from .outcomes import FLAGGED, PASS, REVIEW, Outcome, decide

log = logging.getLogger(__name__)

STATUS_FOR_OUTCOME = {
    PASS: MediaItem.Status.PASSED,
    REVIEW: MediaItem.Status.REVIEW,
    FLAGGED: MediaItem.Status.FLAGGED,
}
# Known-bad content counts against the author; a model's guess alone does not.
STRIKE_SOURCES = {"bank_match": Strike.Source.BANK, "duplicate_of_rejected": Strike.Source.POLICY}


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def analyse_item(item_id: int, request_id: str | None = None) -> Analysis | None:
    """Run the automated analysis once; later calls for a decided item do nothing.

    Any failure sends the item to review (never a silent pass, never stuck processing).
    """
    item = MediaItem.objects.select_related("author").filter(pk=item_id).first()
    if item is None or item.status != MediaItem.Status.PROCESSING:
        return None
    request_id = request_id or str(uuid.uuid4())
    timings: dict[str, float] = {}
    started = time.perf_counter()
    policy = Policy.current()
    rules = policy.category_rules(item.kind)
    fp, duplicates, bank, results, errors = None, [], None, [], {}
    try:
        kind = get_kind(item.kind)
        t = time.perf_counter()
        with item.file.open("rb") as fh:
            data = fh.read()
        timings["read"] = _ms(t)
        t = time.perf_counter()
        subject = kind.decode(data)
        if "fingerprint" in kind.stages:
            fp = fingerprint(subject, item.kind, mirrored=policy.mirror_aware)
        timings["decode_hash"] = _ms(t)
        if fp is not None and "match" in kind.stages:
            t = time.perf_counter()
            voting = policy.voting_rules()  # one read of the voter rows for both votes
            duplicates = find_duplicates(item, fp, voting)
            bank = vote(fp, voting)
            timings["match"] = _ms(t)
        if "classify" in kind.stages:
            t = time.perf_counter()
            providers = providers_for(item.kind, policy.provider_names)
            results, errors = run_classifiers(
                providers, subject, timeout_s=settings.CLASSIFIER_TIMEOUT_S
            )
            timings["classify"] = _ms(t)
        scores = category_scores(results, policy.label_map(), rules)
        outcome = decide(
            scores=scores,
            rules=rules,
            classifier_errors=errors,
            duplicates=duplicates,
            bank=bank,
        )
    except Exception as exc:  # corrupt storage, decoder bug...: a person must look
        log.exception("analysis of item %s failed", item_id)
        scores = {}
        errors = {**errors, "pipeline": f"{type(exc).__name__}: {exc}"}
        outcome = Outcome(
            REVIEW, "analysis_error", "The automatic analysis failed, so a person will look at it."
        )
    category, confidence = shown_class(outcome, scores, rules)
    timings["total"] = _ms(started)
    found = Findings(fp, duplicates, bank, results, errors, scores, category, confidence)
    return _record(item, request_id, policy, found, outcome, timings)


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
    """What the stages found, carried to the one transaction that records it."""

    fp: dict | None
    duplicates: list
    bank: dict | None
    results: list
    errors: dict
    scores: dict
    category: str
    confidence: float | None


def _record(item, request_id, policy, found: Findings, outcome, timings) -> Analysis | None:
    matches = {"duplicates": found.duplicates, "bank": found.bank}
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().filter(pk=item.pk).first()
        if locked is None or locked.status != MediaItem.Status.PROCESSING:
            return None  # deleted meanwhile, or analysed by a concurrent run
        hashes = fingerprint_hex(found.fp)  # once: the rows and the audit record share it
        if found.fp is not None:
            store_fingerprint(locked, hashes)
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
            raw={r.provider: r.raw for r in found.results},
            errors=found.errors,
            outcome=outcome.outcome,
            reason=outcome.reason,
            reason_text=outcome.text[:500],
            timings={**timings, **{f"provider_{r.provider}": r.elapsed_ms for r in found.results}},
        )
        if locked.status == MediaItem.Status.REVIEW:
            enqueue_for_review(locked)
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
        if name not in ("quality", "mirror")
    ]
    Fingerprint.objects.filter(item=item).delete()
    Fingerprint.objects.bulk_create(rows)
