"""Request and answer shapes of the analysis endpoints (api.analyses, api.compat).

As in uploads.serializers, the answers are built by plain functions (``analysis_payload``,
``summary_payload``, ``compat_payload``) and the serializers declare the same fields for
the OpenAPI schema. An analysis is the item a client sent: its id is the item's id, its
body the item in the one vocabulary (``item_payload``) plus what a client acts on (the
decision, a moderator's review, the author's standing) and the evidence (scores, labels
with boxes, bank matches and the computed hashes, near copies among the client's own items,
model versions, timings). Nothing in it names another client's items, a moderator, or a
raw exception.
"""

from __future__ import annotations

import importlib.metadata
import json

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from accounts.models import Author
from hashing.algorithms import ALGORITHMS
from hashing.models import BankEntry
from review.models import Analysis, Decision
from uploads.models import MediaItem
from uploads.serializers import ItemSerializer, item_payload

from .models import Submission

# The item's status as the one decision word of the API (the callbacks send the same).
DECISION = {
    MediaItem.Status.PASSED: "pass",
    MediaItem.Status.REVIEW: "review",
    MediaItem.Status.FLAGGED: "flagged",
    MediaItem.Status.APPROVED: "approved",
    MediaItem.Status.REJECTED: "rejected",
}
DECISIONS = (*DECISION.values(), "processing")
# Named for the schema (settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
DECISION_CHOICES = list(DECISION.values())
COMPAT_DECISIONS = ["pass", "review", "flagged"]
USER_UUID_HELP = "Your own id of the user who posted it: strikes and bans apply to that user."
METADATA_HELP = "Anything of yours (a JSON object, at most 8 KB), echoed back in every answer."
METADATA_MAX_BYTES = 8192


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


# What each provider's answer was made with (the package's version for a local model; a
# hosted service reports its model version in its answer).
LOCAL_MODELS = {"nudenet": f"nudenet {_version('nudenet')} 320n.onnx".replace("  ", " ")}


# -- requests ---------------------------------------------------------------------------------


class MetadataField(serializers.JSONField):
    """A JSON object of the client's; multipart sends it as a JSON string."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError('A JSON object, e.g. {"post_id": "123"}.')
        if len(json.dumps(value)) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(f"At most {METADATA_MAX_BYTES} bytes as JSON.")
        return value


class UrlAnalysisRequest(serializers.Serializer):
    url = serializers.URLField(
        max_length=2000, help_text="Fetched through the SSRF guard (public addresses only)."
    )
    user_uuid = serializers.CharField(max_length=255, help_text=USER_UUID_HELP)
    metadata = MetadataField(required=False, default=dict, help_text=METADATA_HELP)


class FileAnalysisRequest(serializers.Serializer):
    file = serializers.FileField(help_text="A JPEG, PNG, GIF or WebP image.")
    user_uuid = serializers.CharField(max_length=255, help_text=USER_UUID_HELP)
    metadata = MetadataField(
        required=False, default=dict, help_text=METADATA_HELP + " Multipart: as a JSON string."
    )


class TextAnalysisRequest(serializers.Serializer):
    """A text item (uploads.text validates it: UTF-8, no control characters, not empty, at
    most TEXT_MAX_CHARS characters and TEXT_MAX_CONTEXT earlier messages)."""

    text = serializers.CharField(
        trim_whitespace=False,
        allow_blank=True,
        help_text="The post or comment, as written (at most 10,000 characters by default).",
    )
    thread_context = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        default=list,
        help_text="The messages before it, oldest first: strings or {text, author}. A short "
        'reply ("you too") is judged with the message it answers.',
    )
    user_uuid = serializers.CharField(max_length=255, help_text=USER_UUID_HELP)
    metadata = MetadataField(required=False, default=dict, help_text=METADATA_HELP)


class BatchRequest(serializers.Serializer):
    """The schema of a batch; each item is checked on its own (a bad one fails alone)."""

    items = PolymorphicProxySerializer(
        component_name="BatchItem",
        serializers=[UrlAnalysisRequest, TextAnalysisRequest],
        resource_type_field_name=None,
        many=True,
        help_text="URL or text items, at most 50 by default (the policy's cap); answered in order.",
    )
    max_concurrent = serializers.IntegerField(
        min_value=1,
        max_value=10,
        required=False,
        default=5,
        help_text="How many of the batch's URLs are fetched at once (the analyses run on "
        "the workers, as many at once as there are worker processes).",
    )


class BatchOptions(serializers.Serializer):
    """The batch's own fields, validated before any item."""

    items = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    max_concurrent = serializers.IntegerField(min_value=1, max_value=10, required=False, default=5)

    def __init__(self, *args, max_items: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_items = max_items

    def validate_items(self, value):
        if len(value) > self.max_items:
            raise serializers.ValidationError(
                f"At most {self.max_items} items per batch (this one has {len(value)})."
            )
        return value


class LogFilters(serializers.Serializer):
    """The query of GET analyses."""

    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    decision = serializers.ChoiceField(choices=list(DECISIONS), required=False)
    reason = serializers.CharField(required=False, max_length=64)
    user_uuid = serializers.CharField(required=False, max_length=255)
    batch = serializers.UUIDField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


# -- answers ----------------------------------------------------------------------------------


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.Verdict.choices)
    reason = serializers.CharField(allow_blank=True, help_text="The moderator's reason.")
    decided_at = serializers.DateTimeField()
    previous_status = serializers.CharField(allow_blank=True)
    reversal = serializers.BooleanField(help_text="It overrode an earlier decision.")


class BoxSerializer(serializers.Serializer):
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class LabelSerializer(serializers.Serializer):
    provider = serializers.CharField()
    label = serializers.CharField()
    score = serializers.FloatField(help_text="0 to 1.")
    box = BoxSerializer(allow_null=True, help_text="In the original's pixels, when known.")
    frame = serializers.IntegerField(allow_null=True, help_text="Animations: the frame.")


class BankMatchSerializer(serializers.Serializer):
    bank = serializers.CharField()
    content_id = serializers.IntegerField(allow_null=True)
    external_id = serializers.CharField(allow_blank=True)
    entry_id = serializers.IntegerField()
    algorithm = serializers.CharField()
    distance = serializers.IntegerField(allow_null=True)
    mirrored = serializers.BooleanField()
    counted = serializers.BooleanField(help_text="Its vote counted for the deciding content.")


class BankVerdictSerializer(serializers.Serializer):
    blocked = serializers.BooleanField()
    allowed = serializers.BooleanField()
    bank = serializers.CharField(allow_blank=True)
    content_id = serializers.IntegerField(allow_null=True)
    allow_bank = serializers.CharField(allow_blank=True)
    votes = serializers.IntegerField()
    quorum = serializers.IntegerField()


class NearDuplicateSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The other analysis (one of yours).")
    exact = serializers.BooleanField(help_text="The same bytes.")
    distance = serializers.IntegerField(allow_null=True, help_text="Nearest voter's distance.")
    decision = serializers.CharField(allow_null=True)
    user_uuid = serializers.CharField()


class SummarySerializer(ItemSerializer):
    """One analysis in a list: the item and the client's own fields."""

    analysis_id = serializers.UUIDField(help_text="The same as id.")
    decision = serializers.ChoiceField(
        choices=DECISION_CHOICES, allow_null=True, help_text="null while processing."
    )
    user_uuid = serializers.CharField()
    author_status = serializers.ChoiceField(choices=Author.Status.choices)
    metadata = serializers.JSONField()
    batch = serializers.UUIDField(allow_null=True)
    position = serializers.IntegerField(allow_null=True)
    status_url = serializers.CharField()
    analysed_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, submission):
        return summary_payload(submission)


class AnalysisSerializer(SummarySerializer):
    """An analysis in full."""

    request_id = serializers.UUIDField(allow_null=True, help_text="The analysis run's id.")
    review = ReviewSerializer(allow_null=True, help_text="A moderator's latest decision.")
    labels = LabelSerializer(many=True)
    bank_matches = BankMatchSerializer(many=True)
    bank_verdict = BankVerdictSerializer(allow_null=True)
    hashes = serializers.DictField(
        child=serializers.CharField(), help_text="{algorithm: lowercase hex}, as POST hashes."
    )
    hash_quality = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    mirror_hashes = serializers.DictField(child=serializers.CharField())
    near_duplicates = NearDuplicateSerializer(many=True)
    model_versions = serializers.DictField(child=serializers.CharField())
    classifier_errors = serializers.ListField(
        child=serializers.CharField(), help_text="Providers that failed (it went to review)."
    )
    timings = serializers.DictField(
        child=serializers.FloatField(), help_text="Milliseconds per stage."
    )

    def to_representation(self, submission):
        return analysis_payload(submission)


class BatchError(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Its position in the request, from 0.")
    status = serializers.IntegerField(
        help_text="200 decided, 202 still processing, else the error's HTTP status."
    )
    same_as = serializers.IntegerField(
        allow_null=True,
        help_text="The same bytes for the same user as this earlier item: "
        "analysed once, both answer with that analysis.",
    )
    analysis = SummarySerializer(allow_null=True)
    error = BatchError(allow_null=True)


class BatchResponse(serializers.Serializer):
    batch_id = serializers.UUIDField(help_text="GET analyses?batch=<id> lists it again.")
    total = serializers.IntegerField()
    accepted = serializers.IntegerField()
    refused = serializers.IntegerField()
    decided = serializers.IntegerField()
    max_concurrent = serializers.IntegerField()
    results = BatchResultSerializer(many=True)


class BannedError(serializers.Serializer):
    code = serializers.CharField(help_text="author_banned")
    detail = serializers.CharField()
    author_status = serializers.CharField()


# The 403 of every endpoint that takes a client's user's content.
BANNED = OpenApiResponse(BannedError, description="A banned user, or a missing scope.")


class PageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = SummarySerializer(many=True)


# -- the answers' builders --------------------------------------------------------------------


def status_url(item: MediaItem) -> str:
    return reverse("api:analysis", args=[item.uuid])


def _own(client_id: int, items: list[int]) -> dict[int, str]:
    """{item pk: user_uuid} of those items that are this client's."""
    if not items:
        return {}
    return dict(
        Submission.objects.filter(client_id=client_id, item_id__in=items).values_list(
            "item_id", "user_uuid"
        )
    )


def summary_payload(submission: Submission, *, own_duplicate: bool | None = None) -> dict:
    item = submission.item
    body = item_payload(item)
    if item.duplicate_of_id:
        # Only a copy of the client's own item is named: another's must not be revealed.
        if own_duplicate is None:
            own_duplicate = bool(_own(submission.client_id, [item.duplicate_of_id]))
        if not own_duplicate:
            body["duplicate_of"] = body["duplicate_distance"] = None
    author = item.author
    body.update(
        {
            "analysis_id": str(item.uuid),
            "decision": DECISION.get(item.status),
            "user_uuid": submission.user_uuid,
            "author_status": author.status if author is not None else Author.Status.OK,
            "metadata": submission.metadata,
            "batch": str(submission.batch) if submission.batch else None,
            "position": submission.position,
            "status_url": status_url(item),
            "analysed_at": _when(item.analysed_at),
            "decided_at": _when(item.decided_at),
        }
    )
    return body


def _when(value):
    return serializers.DateTimeField().to_representation(value) if value else None


def analysis_payload(submission: Submission) -> dict:
    item = submission.item
    analysis = Analysis.objects.filter(item_id=item.pk).first()  # the latest run
    matches = (analysis.matches if analysis else None) or item.matches or {}
    duplicates = [d for d in matches.get("duplicates") or [] if isinstance(d, dict)]
    own = _own(submission.client_id, [d["pk"] for d in duplicates if "pk" in d])
    body = summary_payload(
        submission, own_duplicate=item.duplicate_of_id in own if item.duplicate_of_id else None
    )
    hashes = (analysis.hashes if analysis else {}) or {}
    raw = (analysis.raw if analysis else {}) or {}
    body.update(
        {
            "request_id": str(analysis.request_id) if analysis else None,
            "review": _review(item),
            "labels": labels_of(raw),
            "bank_matches": bank_matches(matches.get("bank")),
            "bank_verdict": _bank_verdict(matches.get("bank")),
            "hashes": {n: v for n, v in hashes.items() if n in ALGORITHMS},
            "hash_quality": dict(hashes.get("quality") or {}),
            "mirror_hashes": dict(hashes.get("mirror") or {}),
            "near_duplicates": [
                {
                    "id": d["id"],
                    "exact": bool(d.get("exact")),
                    "distance": d.get("distance"),
                    "decision": DECISION.get(d.get("status")),
                    "user_uuid": own[d["pk"]],
                }
                for d in duplicates
                if d.get("pk") in own
            ],
            "model_versions": model_versions(raw),
            "classifier_errors": sorted((analysis.errors if analysis else {}) or {}),
            "timings": {
                k: float(v)
                for k, v in ((analysis.timings if analysis else {}) or {}).items()
                if isinstance(v, (int, float))
            },
        }
    )
    return body


def _review(item: MediaItem) -> dict | None:
    if item.status not in (MediaItem.Status.APPROVED, MediaItem.Status.REJECTED):
        return None
    return review_of(Decision.objects.filter(item_id=item.pk).first())


def review_of(decision: Decision | None) -> dict | None:
    """A person's latest verdict as clients see it (never who made it)."""
    if decision is None:
        return None
    return {
        "decision": decision.decision,
        "reason": decision.reason,
        "decided_at": _when(decision.decided_at),
        "previous_status": decision.previous_status,
        "reversal": decision.is_override,
    }


def labels_of(raw: dict) -> list[dict]:
    """Each provider's labels (with boxes when the provider gives them), from the analysis
    record's raw output; an animation's carry their frame."""
    out: list[dict] = []
    for provider, found in raw.items():
        per_frame = isinstance(found, list) and all(
            isinstance(f, dict) and "raw" in f and "frame" in f for f in found
        )
        frames = [(f["frame"], f["raw"]) for f in found] if per_frame and found else [(None, found)]
        for frame, output in frames:
            out.extend(_labels(provider, output, frame))
    return out


def _labels(provider: str, output, frame) -> list[dict]:
    labels = []
    if isinstance(output, dict):  # e.g. Rekognition: {"labels": [{"Name", "Confidence"}]}
        for label in output.get("labels") or []:
            if isinstance(label, dict) and label.get("Name"):
                labels.append(
                    {
                        "provider": provider,
                        "label": str(label["Name"]),
                        "score": round(float(label.get("Confidence") or 0) / 100, 4),
                        "box": None,
                        "frame": frame,
                    }
                )
    elif isinstance(output, list):  # e.g. NudeNet: [{"class", "score", "box": [x, y, w, h]}]
        for det in output:
            if not isinstance(det, dict) or "class" not in det:
                continue
            box = det.get("box")
            labels.append(
                {
                    "provider": provider,
                    "label": str(det["class"]),
                    "score": round(float(det.get("score") or 0), 4),
                    "box": dict(zip(("x", "y", "width", "height"), (int(v) for v in box)))
                    if isinstance(box, list) and len(box) == 4
                    else None,
                    "frame": frame,
                }
            )
    return labels


def model_versions(raw: dict) -> dict[str, str]:
    versions = {}
    for provider, output in raw.items():
        if isinstance(output, dict) and output.get("model_version"):
            versions[provider] = str(output["model_version"])
        elif provider in LOCAL_MODELS:
            versions[provider] = LOCAL_MODELS[provider]
    return versions


def bank_matches(vote: dict | None) -> list[dict]:
    """Every bank entry a voter found within its threshold (block side), with the content
    it belongs to; ``counted`` when its vote went to the deciding content."""
    per_voter = (vote or {}).get("per_voter") or {}
    found = {name: v for name, v in per_voter.items() if isinstance(v, dict) and v.get("entry")}
    if not found:
        return []
    rows = {
        pk: (content, bank, external)
        for pk, content, bank, external in BankEntry.objects.filter(
            pk__in=[v["entry"] for v in found.values()]
        ).values_list("pk", "content_id", "bank__name", "content__external_id")
    }
    out = []
    for name, v in found.items():
        content, bank, external = rows.get(v["entry"], (None, vote.get("bank") or "", ""))
        out.append(
            {
                "bank": bank,
                "content_id": content,
                "external_id": external or "",
                "entry_id": int(v["entry"]),
                "algorithm": name,
                "distance": v.get("distance"),
                "mirrored": bool(v.get("mirrored")),
                "counted": bool(v.get("vote")),
            }
        )
    return sorted(out, key=lambda m: (m["distance"] is None, m["distance"] or 0, m["algorithm"]))


def _bank_verdict(vote: dict | None) -> dict | None:
    if not vote:
        return None
    return {
        "blocked": bool(vote.get("blocked")),
        "allowed": bool(vote.get("allowed")),
        "bank": vote.get("bank") or "",
        "content_id": vote.get("content"),
        "allow_bank": vote.get("allow_bank") or "",
        "votes": int(vote.get("votes") or 0),
        "quorum": int(vote.get("quorum") or 0),
    }


# -- the replaced API's shapes (api.compat) ---------------------------------------------------


class CompatRequest(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    user_uuid = serializers.CharField(max_length=255, help_text=USER_UUID_HELP)
    metadata = MetadataField(required=False, default=dict, help_text=METADATA_HELP)


class CompatTextRequest(TextAnalysisRequest):
    """The replaced API's text request: the same fields as a text analysis."""


class CompatBatchRequest(serializers.Serializer):
    images = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text="Each {url, user_uuid} (or a URL, with a top-level user_uuid). At most 50.",
    )
    user_uuid = serializers.CharField(
        max_length=255, required=False, help_text="For images given as bare URLs."
    )
    max_concurrent = serializers.IntegerField(min_value=1, max_value=10, required=False, default=5)


class ReviewDetails(serializers.Serializer):
    status = serializers.CharField(help_text="The item's status, e.g. passed or processing.")
    message = serializers.CharField(allow_blank=True, help_text="The reason's sentence.")
    category = serializers.CharField(allow_blank=True)
    confidence = serializers.FloatField(allow_null=True)
    scores = serializers.DictField(child=serializers.FloatField())
    labels = serializers.ListField(child=serializers.CharField())
    review = ReviewSerializer(allow_null=True)


class SimilarItem(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField(allow_null=True, help_text="Its URL (null for a file).")
    similarity = serializers.FloatField(help_text="1 for the same bytes.")
    labels = serializers.ListField(child=serializers.CharField())


class CompatResponse(serializers.Serializer):
    request_id = serializers.UUIDField(help_text="The analysis id (GET /api/v1/analyses/{id}).")
    is_duplicate = serializers.BooleanField(help_text="A copy of one of your earlier items.")
    decision = serializers.ChoiceField(choices=COMPAT_DECISIONS)
    reason = serializers.CharField(allow_blank=True)
    review_details = ReviewDetails()
    similar_items = SimilarItem(many=True)
    author_status = serializers.CharField()
    analysis_url = serializers.CharField()


COMPAT_FIELDS = (
    "request_id",
    "is_duplicate",
    "decision",
    "reason",
    "review_details",
    "similar_items",
    "author_status",
    "analysis_url",
)


class CompatBatchResult(serializers.Serializer):
    index = serializers.IntegerField()
    url = serializers.CharField(allow_null=True)
    request_id = serializers.UUIDField(allow_null=True)
    is_duplicate = serializers.BooleanField(allow_null=True)
    decision = serializers.ChoiceField(choices=COMPAT_DECISIONS, allow_null=True)
    reason = serializers.CharField(allow_null=True, allow_blank=True)
    review_details = ReviewDetails(allow_null=True)
    similar_items = SimilarItem(many=True, allow_null=True)
    author_status = serializers.CharField(allow_null=True)
    analysis_url = serializers.CharField(allow_null=True)
    error = BatchError(allow_null=True)


class CompatBatchResponse(serializers.Serializer):
    batch_id = serializers.UUIDField()
    total_images = serializers.IntegerField()
    processed = serializers.IntegerField(help_text="Images analysed (not refused).")
    max_concurrent = serializers.IntegerField()
    results = CompatBatchResult(many=True)


def compat_payload(submission: Submission) -> dict:
    """The replaced API's answer for one image. While the analysis is still running it
    says "review" with reason "processing" (hold it), and ``analysis_url`` to poll."""
    item = submission.item
    analysis = Analysis.objects.filter(item_id=item.pk).first()
    matches = (analysis.matches if analysis else None) or {}
    duplicates = [d for d in matches.get("duplicates") or [] if isinstance(d, dict)]
    own = _own(submission.client_id, [d["pk"] for d in duplicates if "pk" in d])
    similar = [d for d in duplicates if d.get("pk") in own]
    urls = dict(MediaItem.objects.filter(pk__in=own).values_list("pk", "source_url"))
    label_rows = {}
    for pk, raw in Analysis.objects.filter(item_id__in=own).values_list("item_id", "raw"):
        label_rows.setdefault(pk, raw)  # the latest run of each (newest first)
    processing = item.status == MediaItem.Status.PROCESSING
    author = item.author
    return {
        "request_id": str(item.uuid),
        "is_duplicate": bool(similar),
        "decision": item.outcome or "review",
        "reason": "processing" if processing else item.reason,
        "review_details": {
            "status": item.status,
            "message": item.reason_text
            or ("The analysis is still running; hold the image." if processing else ""),
            "category": item.category,
            "confidence": item.confidence,
            "scores": item.scores or {},
            "labels": _names(labels_of((analysis.raw if analysis else {}) or {})),
            "review": _review(item),
        },
        "similar_items": [
            {
                "id": d["id"],
                "url": urls.get(d["pk"]) or None,
                "similarity": similarity(d),
                "labels": _names(labels_of(label_rows.get(d["pk"]) or {})),
            }
            for d in similar
        ],
        "author_status": author.status if author is not None else Author.Status.OK,
        "analysis_url": status_url(item),
    }


def _names(labels: list[dict]) -> list[str]:
    return sorted({label["label"] for label in labels})


def similarity(duplicate: dict) -> float:
    """1 for the same bytes; else 1 - distance/bits, averaged over the voters that agreed."""
    if duplicate.get("exact"):
        return 1.0
    voters = duplicate.get("voters") or {}
    parts = [
        1 - distance / ALGORITHMS[name].bits
        for name, distance in voters.items()
        if name in ALGORITHMS and distance is not None
    ]
    return round(sum(parts) / len(parts), 4) if parts else 0.0
