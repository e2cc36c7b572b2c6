"""The replaced moderation API's endpoints, for its clients to switch by changing the base
URL and adding a key header: ``POST analyse/image`` ``{url, user_uuid}``,
``POST analyse/images/batch`` ``{images: [...], max_concurrent}`` and ``POST analyse/text``
``{text, user_uuid, thread_context?}`` (judged locally: the old API pasted the text into a
cloud LLM's prompt), answered in the old shapes (``request_id``, ``is_duplicate``,
``decision`` pass|review|flagged, ``reason``, ``review_details``, ``similar_items``).
Deprecated: new clients use ``analyses``.

What differs from the old API, on purpose: a key is required; the 50-image batch limit is
enforced (400 above it); errors are the one JSON shape (never a raw exception); URLs go
through the SSRF guard; ``request_id`` is the analysis id (GET /api/v1/analyses/{id} shows
it in full); an answer not reached within the wait says decision "review" with reason
"processing" (hold the image) and ``analysis_url`` to poll; ``similar_items`` are the
client's own items only.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from .analyses import (
    WAIT_PARAMETER,
    AuthorRefused,
    banned_answer,
    batch_limit,
    batch_wait_cap,
    run_batch,
    take_one,
    wait_cap,
    wait_seconds,
)
from .models import ANALYSE
from .serializers import (
    BANNED,
    COMPAT_FIELDS,
    CompatBatchRequest,
    CompatBatchResponse,
    CompatRequest,
    CompatResponse,
    CompatTextRequest,
    compat_payload,
)
from .views import ClientView

SUCCESSOR = '</api/v1/analyses>; rel="successor-version"'


def _deprecated(response: Response) -> Response:
    response["Deprecation"] = "true"
    response["Link"] = SUCCESSOR
    return response


def _answer_one(view, request, payload, required: str | None = None) -> Response:
    """One old-shape analysis: the item taken (and waited for) as by POST analyses, a
    banned author's 403, answered in ``payload``'s shape with the deprecation headers."""
    if required and (not isinstance(request.data, dict) or required not in request.data):
        raise ValidationError({required: ["This field is required."]})
    try:
        submission, _ = take_one(view.client, request, wait_cap(), default_wait=wait_cap())
    except AuthorRefused as exc:
        return _deprecated(banned_answer(exc))
    return _deprecated(Response(payload(submission)))


class AnalyseImage(ClientView):
    """The old single-image endpoint: waits for the verdict (up to API_WAIT_MAX_S)."""

    required_scope = ANALYSE
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="compat_analyse_image",
        summary="Analyse one image (the replaced API's shape)",
        description="Deprecated: use POST /api/v1/analyses. Waits up to API_WAIT_MAX_S "
        "(5 s) by default; a verdict not reached by then answers decision review, reason "
        "processing, and analysis_url to poll.",
        request={"application/json": CompatRequest},
        parameters=[WAIT_PARAMETER],
        responses={
            200: CompatResponse,
            403: BANNED,
        },
        deprecated=True,
        tags=["compatibility"],
    )
    def post(self, request):
        return _answer_one(self, request, compat_payload)


def _items(images: list, default_user: str | None) -> list:
    """The old batch's images as items: {url, user_uuid} objects, or bare URLs that take
    the top-level user_uuid."""
    items = []
    for image in images:
        if isinstance(image, str):
            image = {"url": image}
            if default_user is not None:
                image["user_uuid"] = default_user
        items.append(image)
    return items


class AnalyseImagesBatch(ClientView):
    """The old batch endpoint: results in input order, each in the single image's shape
    or with its error."""

    required_scope = ANALYSE
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="compat_analyse_images_batch",
        summary="Analyse a batch of images (the replaced API's shape)",
        description="Deprecated: use POST /api/v1/analyses/batch. At most 50 images "
        "(the policy's batch cap), enforced; waits up to API_BATCH_WAIT_MAX_S (30 s).",
        request=CompatBatchRequest,
        parameters=[WAIT_PARAMETER],
        responses={200: CompatBatchResponse},
        deprecated=True,
        tags=["compatibility"],
    )
    def post(self, request):
        wait = wait_seconds(request, batch_wait_cap(), default=batch_wait_cap())
        data = request.data if isinstance(request.data, dict) else {}
        checked = CompatBatchRequest(data=request.data)
        if not checked.is_valid():
            raise ValidationError(checked.errors)
        body = checked.validated_data
        limit = batch_limit(self.client)
        if len(body["images"]) > limit:
            raise ValidationError(
                {
                    "images": [
                        f"At most {limit} images per batch (this one has {len(body['images'])})."
                    ]
                }
            )
        batch = uuid.uuid4()
        slots = run_batch(
            self.client,
            _items(body["images"], body.get("user_uuid")),
            max_concurrent=body["max_concurrent"],
            wait=wait,
            batch=batch,
        )
        results = []
        for slot, image in zip(slots, data["images"], strict=True):
            url = image.get("url") if isinstance(image, dict) else image
            row = {"index": slot.index, "url": url if isinstance(url, str) else None}
            if slot.submission is not None:
                row.update(compat_payload(slot.submission), error=None)
            else:
                row.update(dict.fromkeys(COMPAT_FIELDS), error=slot.error)
            results.append(row)
        return _deprecated(
            Response(
                {
                    "batch_id": str(batch),
                    "total_images": len(slots),
                    "processed": sum(1 for s in slots if s.submission is not None),
                    "max_concurrent": body["max_concurrent"],
                    "results": results,
                }
            )
        )


class AnalyseText(ClientView):
    """The old text endpoint ``{text, user_uuid, thread_context?}``, judged here by the
    local text model and term banks (the replaced API pasted the text into a cloud LLM's
    prompt): waits for the verdict like analyse/image."""

    required_scope = ANALYSE
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="compat_analyse_text",
        summary="Analyse one text (the replaced API's shape)",
        description="Deprecated: use POST /api/v1/analyses with `text`. Waits up to "
        "API_WAIT_MAX_S (5 s) by default. `review_details.scores` has a score per text "
        "category (hate, harassment, violence, self_harm, sexual, spam).",
        request=CompatTextRequest,
        parameters=[WAIT_PARAMETER],
        responses={
            200: CompatResponse,
            403: BANNED,
        },
        deprecated=True,
        tags=["compatibility"],
    )
    def post(self, request):
        return _answer_one(self, request, compat_payload, required="text")


class CompatVideoResponse(CompatResponse):
    frames_analyzed = serializers.IntegerField(
        allow_null=True, help_text="Sampled frames the classifier looked at (null while running)."
    )
    flagged_at_timestamp = serializers.FloatField(
        allow_null=True,
        help_text="Seconds into the video of the first frame at a flag-at score, or null.",
    )


def compat_video_payload(submission) -> dict:
    """The old image answer plus the replaced API's video fields, from the item's
    ``details["video"]`` (review.video.timeline); null while the analysis runs."""
    found = (submission.item.details or {}).get("video") or {}
    return {
        **compat_payload(submission),
        "frames_analyzed": found.get("frames_analyzed"),
        "flagged_at_timestamp": found.get("flagged_at_timestamp"),
    }


class AnalyseVideo(ClientView):
    """The old video endpoint ``{url, user_uuid}``: the URL fetched through the SSRF guard,
    the video analysed like an upload (uploads.video), answered in the old shape."""

    required_scope = ANALYSE
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="compat_analyse_video",
        summary="Analyse one video (the replaced API's shape)",
        description="Deprecated: use POST /api/v1/analyses with the video's `url`. MP4, WebM "
        "or MOV within the policy's caps (200 MB, 10 minutes by default). Waits up to "
        "API_WAIT_MAX_S (5 s) by default; a longer analysis answers decision review, reason "
        "processing, and analysis_url to poll (frames_analyzed null until then).",
        request=CompatRequest,
        parameters=[WAIT_PARAMETER],
        responses={
            200: CompatVideoResponse,
            403: BANNED,
        },
        deprecated=True,
        tags=["compatibility"],
    )
    def post(self, request):
        return _answer_one(self, request, compat_video_payload, required="url")
