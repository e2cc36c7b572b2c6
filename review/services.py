"""The analysis of an item: fingerprints, matches, classifiers, policy → outcome, audited."""

import logging
import time
import uuid

from django.db import transaction
from django.utils import timezone

from accounts.models import Strike
from accounts.services import add_strike, strike_notice
from hashing.algorithms import fingerprint, open_for_hashing, pdq_to_hex, to_signed64
from hashing.duplicates import find_duplicates
from hashing.models import Fingerprint
from uploads.events import item_changed
from uploads.models import MediaItem

from .classifiers import combine, overall_class, run_classifiers
from .decision import FLAGGED, PASS, REVIEW, Outcome, decide
from .models import Analysis, Policy
from .queue import enqueue_for_review

log = logging.getLogger(__name__)

STATUS_FOR_OUTCOME = {
    PASS: MediaItem.Status.PASSED,
    REVIEW: MediaItem.Status.REVIEW,
    FLAGGED: MediaItem.Status.FLAGGED,
}
# Known-bad content counts against the author; a model's guess alone does not.
STRIKE_REASONS = {"bank_match", "duplicate_of_rejected"}


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _vote_banks(fp: dict, policy) -> dict | None:
    """Hash-bank quorum vote; None until banks exist (hashing.banks provides `vote`)."""
    try:
        from hashing.banks import vote
    except ImportError:
        return None
    return vote(fp, policy)


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
    fp, duplicates, bank, results, errors = None, [], None, [], {}
    try:
        t = time.perf_counter()
        with item.file.open("rb") as fh:
            data = fh.read()
        timings["read"] = _ms(t)
        t = time.perf_counter()
        image = open_for_hashing(data)
        fp = fingerprint(image, mirrored=policy.mirror_aware)
        timings["decode_hash"] = _ms(t)
        t = time.perf_counter()
        duplicates = find_duplicates(item, fp, policy.near_duplicate_distance)
        bank = _vote_banks(fp, policy)
        timings["match"] = _ms(t)
        t = time.perf_counter()
        results, errors = run_classifiers(policy.provider_names, image)
        timings["classify"] = _ms(t)
        scores = combine(results)
        outcome = decide(
            scores=scores,
            policy=policy,
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
    category, confidence = overall_class(scores) if scores else ("", None)
    timings["total"] = _ms(started)
    return _record(
        item,
        request_id,
        fp,
        duplicates,
        bank,
        results,
        errors,
        scores,
        category,
        confidence,
        outcome,
        timings,
    )


def _record(
    item,
    request_id,
    fp,
    duplicates,
    bank,
    results,
    errors,
    scores,
    category,
    confidence,
    outcome,
    timings,
) -> Analysis | None:
    hashes = _hashes_for_audit(fp)
    matches = {"duplicates": duplicates, "bank": bank}
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().filter(pk=item.pk).first()
        if locked is None or locked.status != MediaItem.Status.PROCESSING:
            return None  # deleted meanwhile, or analysed by a concurrent run
        if fp is not None:
            Fingerprint.objects.update_or_create(
                item=locked,
                defaults={
                    "ahash": to_signed64(fp["ahash"]),
                    "dhash": to_signed64(fp["dhash"]),
                    "phash": to_signed64(fp["phash"]),
                    "mhash": to_signed64(fp["mhash"]),
                    "pdq": pdq_to_hex(fp["pdq"]),
                    "pdq_quality": fp.get("pdq_quality", 0),
                },
            )
        dup = next((d for d in duplicates if d["id"] == outcome.details.get("duplicate_of")), None)
        locked.status = STATUS_FOR_OUTCOME[outcome.outcome]
        locked.reason, locked.reason_text = outcome.reason, outcome.text[:500]
        if outcome.reason in STRIKE_REASONS and locked.author_id:
            strike = add_strike(
                locked.author,
                source=_strike_source(outcome.reason),
                reason=outcome.text,
                item=locked,
            )
            locked.reason_text = f"{locked.reason_text} {strike_notice(strike)}"[:500]
        locked.category, locked.confidence = category, confidence
        locked.scores = scores
        locked.matches = matches
        locked.duplicate_of_id = dup["pk"] if dup else None
        locked.duplicate_distance = dup["distance"] if dup else None
        locked.analysed_at = timezone.now()
        locked.save(
            update_fields=[
                "status",
                "reason",
                "reason_text",
                "category",
                "confidence",
                "scores",
                "matches",
                "duplicate_of",
                "duplicate_distance",
                "analysed_at",
            ]
        )
        analysis = Analysis.objects.create(
            request_id=request_id,
            item=locked,
            source=locked.source,
            author=locked.author,
            hashes=hashes,
            matches=matches,
            scores=scores,
            raw={r.provider: r.raw for r in results},
            errors=errors,
            outcome=outcome.outcome,
            reason=outcome.reason,
            reason_text=outcome.text[:500],
            timings={**timings, **{f"provider_{r.provider}": r.elapsed_ms for r in results}},
        )
        if locked.status == MediaItem.Status.REVIEW:
            enqueue_for_review(locked)
        item_changed(locked)
    return analysis


def _strike_source(reason: str) -> str:
    return Strike.Source.BANK if reason == "bank_match" else Strike.Source.POLICY


def _hashes_for_audit(fp: dict | None) -> dict:
    if not fp:
        return {}
    out = {k: f"{fp[k]:016x}" for k in ("ahash", "dhash", "phash", "mhash")}
    out["pdq"] = pdq_to_hex(fp["pdq"])
    out["pdq_quality"] = fp.get("pdq_quality", 0)
    if fp.get("mirror"):
        out["mirror"] = {
            k: (pdq_to_hex(v) if k == "pdq" else f"{v:016x}")
            for k, v in fp["mirror"].items()
            if k in ("ahash", "dhash", "phash", "mhash", "pdq")
        }
    return out
