"""Hashes and lookups: ``POST hashes`` (bytes or a URL → every hash, as HMA's /h/hash) and
``GET|POST lookup`` (a hash, several, bytes or a URL → the matches in every bank with their
distances, and the quorum verdict the upload path would reach on them).

Pictures are read exactly as uploads are: recognised from the bytes, validated within the
upload limits, decoded, and hashed by the same functions (uploads.kinds, hashing.algorithms);
a URL is fetched through the SSRF guard. Nothing is kept. The lookup votes with the
client's policy (the site's when it has none), against the per-process matcher, which
sees a bank change at its next vote (hashing.matcher).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from hashing import matcher
from hashing.algorithms import (
    ALGORITHMS,
    Signal,
    UnknownAlgorithm,
    algorithm_named,
    fingerprint,
    fingerprint_hex,
    informative,
)
from hashing.models import BankContent
from hashing.services import normalise_hash
from moderation_site.errors import Invalid
from review.outcomes import decide
from uploads.kinds import kind_for
from uploads.urlfetch import fetch_url
from uploads.validation import RefusedUpload, check_size

from .bank_serializers import (
    FileRequest,
    HashesResponse,
    LookupRequest,
    LookupResponse,
    UrlRequest,
)
from .models import LOOKUP
from .views import ClientView

# -- reading what was sent -----------------------------------------------------------


class RawBody(bytes):
    """The request body as sent (an image posted as it is)."""


class ImageBodyParser(BaseParser):
    """An image as the body (``Content-Type: image/...``), bounded by the upload limit."""

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and str(length).isdigit():
            check_size(int(length), settings.UPLOAD_MAX_BYTES)  # before reading it
        data = stream.read(settings.UPLOAD_MAX_BYTES + 1) if stream is not None else b""
        check_size(len(data), settings.UPLOAD_MAX_BYTES)
        return RawBody(data)


class OctetStreamParser(ImageBodyParser):
    media_type = "application/octet-stream"


PARSERS = [JSONParser, MultiPartParser, ImageBodyParser, OctetStreamParser]
BINARY = {"type": "string", "format": "binary"}
# The ways PARSERS take a picture, for the schema; JSON is each endpoint's own.
PICTURE_BODIES = {
    "multipart/form-data": FileRequest,
    "application/octet-stream": BINARY,
    "image/*": BINARY,
}


@dataclass(frozen=True)
class Sent:
    """What a request carries: bytes (a file or the body) or a URL, or neither."""

    data: bytes | None = None
    name: str = ""
    url: str = ""
    source: str = ""  # "file", "url", or "" for neither


def fields_of(request) -> dict:
    """The request's fields (JSON object or form), {} for a raw body or anything else."""
    data = request.data
    if isinstance(data, RawBody):
        return {}
    if hasattr(data, "dict"):  # a QueryDict (multipart): the last value of each field
        return data.dict()
    return data if isinstance(data, dict) else {}


def sent(request, *, url_field: str = "url") -> Sent:
    """The bytes or URL of a request: multipart ``file``, an image body, or ``url``."""
    data = request.data
    if isinstance(data, RawBody):
        if not data:
            raise RefusedUpload("empty", "The body is empty: send the image, a file or a url.")
        return Sent(bytes(data), source="file")
    upload = request.FILES.get("file") if hasattr(request, "FILES") else None
    if upload is not None:
        check_size(upload.size, settings.UPLOAD_MAX_BYTES)  # before reading it
        return Sent(upload.read(), name=upload.name or "", source="file")
    url = fields_of(request).get(url_field)
    if url is not None:
        if not isinstance(url, str) or not url.strip():
            raise Invalid("Give the image's address.", fields={url_field: ["Not a URL."]})
        return Sent(url=url.strip()[:2000], source="url")
    return Sent()


def fetched(item: Sent) -> Sent:
    """A URL's bytes, through the SSRF guard and within the upload limit."""
    if not item.url:
        return item
    answer = fetch_url(
        item.url, max_bytes=settings.UPLOAD_MAX_BYTES, timeout=settings.URL_FETCH_TIMEOUT
    )
    name = answer.final_url.split("?", 1)[0].rsplit("/", 1)[-1]
    return Sent(answer.data, name=name, url=item.url, source="url")


@dataclass(frozen=True)
class Hashed:
    kind: str
    sha256: str
    fps: list  # one fingerprint per sampled frame
    numbers: list
    total: int


def hash_bytes(data: bytes, *, mirrored: bool) -> Hashed:
    """Every hash of every sampled frame, exactly as an upload of these bytes is hashed
    (validated within the upload limits first: RefusedUpload says what is wrong)."""
    kind = kind_for(data)
    accepted = kind.validate(
        data, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS
    )
    if "fingerprint" not in kind.stages:
        raise Invalid(f"{kind.label} items have no hashes.", code="unsupported_format")
    try:
        frames = kind.sample(data)
        fps = [fingerprint(f.subject, kind.name, mirrored) for f in frames.frames]
    except Exception:  # validated already; a decoder failing now is still the file's fault
        raise RefusedUpload("damaged", "The file could not be decoded for hashing.") from None
    return Hashed(kind.name, accepted.sha256, fps, [f.number for f in frames.frames], frames.total)


# Voting rules read at most once a second per policy and process: a lookup is a few
# milliseconds, of which the policy's two queries were a third; an edit in admin reaches
# lookups within a second (analyses read the policy afresh, review.pipeline).
RULES_TTL_S = 1.0
_rules: dict[int | None, tuple[float, object]] = {}


def forget_rules() -> None:
    """Read every policy afresh at the next lookup (tests; a policy edit waits ≤ 1 s)."""
    _rules.clear()


def rules_for(client):
    """The voting rules of the client's policy, the site's when it has none."""
    now = time.monotonic()
    cached = _rules.get(client.policy_id)
    if cached is not None and now - cached[0] < RULES_TTL_S:
        return cached[1]
    rules = client.judging_policy().voting_rules()
    _rules[client.policy_id] = (now, rules)
    return rules


def hex_payload(fp: dict) -> dict:
    out = fingerprint_hex(fp)
    hashes = {name: out[name] for name in ALGORITHMS if name in out}
    body = {
        "hashes": hashes,
        "quality": dict(out.get("quality") or {}),
        "informative": {name: informative(fp, name) for name in hashes},
    }
    if out.get("mirror"):
        body["mirror"] = out["mirror"]
    return body


# -- POST hashes ----------------------------------------------------------------------


class Hashes(ClientView):
    """Every hash of a picture (as HMA's /h/hash): multipart ``file``, the image as the
    body, or JSON ``{"url"}``. Hashed as an upload is, then dropped."""

    required_scope = LOOKUP
    parser_classes = PARSERS

    @extend_schema(
        request={"application/json": UrlRequest, **PICTURE_BODIES},
        responses={200: HashesResponse},
        tags=["hashes"],
        summary="Hash a picture",
    )
    def post(self, request):
        item = sent(request)
        if not item.source:
            raise Invalid(
                "Send a picture: multipart “file”, the image as the body, or JSON “url”.",
                fields={"file": ["Required (or url)."]},
            )
        item = fetched(item)
        rules = rules_for(self.client)
        hashed = hash_bytes(item.data, mirrored=rules.mirror_aware)
        body = {"kind": hashed.kind, "sha256": hashed.sha256, **hex_payload(hashed.fps[0])}
        body["total_frames"] = hashed.total
        if hashed.total > 1:
            body["frames"] = [
                {"number": number, **_frame(fp)} for number, fp in zip(hashed.numbers, hashed.fps)
            ]
        return Response(body)


def _frame(fp: dict) -> dict:
    payload = hex_payload(fp)
    payload.pop("informative")
    return payload


# -- lookup ---------------------------------------------------------------------------


def parse_hashes(given: dict, quality: dict | None = None) -> dict:
    """A fingerprint from ``{algorithm or alias: hex}``; Invalid naming each bad one."""
    if not isinstance(given, dict) or not given:
        raise Invalid("Give at least one hash.", fields={"hashes": ["Required."]})
    fp: dict = {}
    errors: dict[str, list[str]] = {}
    for key, value in given.items():
        try:
            algorithm, text = normalise_hash(str(key), str(value))
        except ValueError as exc:
            errors[str(key)] = [str(exc)]
            continue
        if algorithm in fp:
            errors[str(key)] = [f"a second {algorithm} hash"]
            continue
        fp[algorithm] = int(text, 16)
    if errors:
        raise Invalid("Some hashes are not valid.", fields={"hashes": errors})
    known = {}
    for key, value in (quality or {}).items():
        try:
            algorithm = algorithm_named(str(key)).name
        except UnknownAlgorithm:
            raise Invalid(
                "Quality names an unknown algorithm.", fields={"quality": [str(key)[:40]]}
            ) from None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise Invalid("Quality is 0-100.", fields={"quality": [f"{key}: {value!r}"]})
        known[algorithm] = value
    fp["quality"] = {name: q for name, q in known.items() if name in fp}
    return as_upload(fp)


def as_upload(fp: dict) -> dict:
    """A fingerprint of some hashes as an upload's whose other hashes abstained.

    An upload has a hash of every voter of its kind, so its quorum is that of all of
    them (4 by default), and a lone aHash, which never blocks alone (the strict rule),
    blocks nothing; a lookup of that aHash alone must not block either. So each missing
    voter of the kind is there with quality 0, which abstains: not searched, not counted.
    """
    kinds = {ALGORITHMS[name].media_kind for name in fp if name in ALGORITHMS}
    given = [name for name in fp if name in ALGORITHMS]
    quality = dict(fp.get("quality") or {})
    out = dict(fp)
    for name, algorithm in ALGORITHMS.items():
        if name in fp or algorithm.media_kind not in kinds:
            continue
        if not algorithm.informative(Signal(0, 0)):  # only voters that can abstain
            out[name] = 0
            quality[name] = 0
    out["quality"] = quality
    out["given"] = given
    return out


def _lookup_params(request) -> tuple[str | None, str | None]:
    """algorithm and hash from the query (HMA's signal_type and signal also work)."""
    params = request.query_params
    return (
        params.get("algorithm") or params.get("signal_type"),
        params.get("hash") or params.get("signal"),
    )


def _verdict(result: dict) -> dict:
    outcome = decide(scores={}, rules=[], bank=result)
    if outcome.reason in ("bank_match", "allow_listed"):
        reason, detail = outcome.reason, outcome.text
    else:
        reason = "no_match"
        detail = (
            "No bank content reached its quorum "
            f"(vote weight {result['votes']} of {result['quorum']} needed)."
        )
    return {
        "blocked": result["blocked"],
        "allowed": result["allowed"],
        "reason": reason,
        "detail": detail,
        "bank": result["bank"],
        "content_id": result["content"],
        "allow_bank": result["allow_bank"],
        "allow_content_id": result["allow_content"],
        "votes": result["votes"],
        "eligible": result["eligible"],
        "quorum": result["quorum"],
        "voters": result["voters"],
        "strict": result["strict"],
        "thresholds": result["thresholds"],
        "per_voter": {
            name: {
                "vote": v["vote"],
                "entry_id": v["entry"],
                "distance": v["distance"],
                "mirrored": v["mirrored"],
            }
            for name, v in result["per_voter"].items()
        },
    }


def _decisive(results: list[dict]) -> int:
    """Which frame's vote the upload path acts on: a blocked one first (unless allowed),
    then an allowed one, else the first."""
    for i, r in enumerate(results):
        if r["blocked"] and not r["allowed"]:
            return i
    for i, r in enumerate(results):
        if r["allowed"]:
            return i
    return 0


def look_up(fps: list[dict], rules) -> tuple[dict, list[dict]]:
    """(verdict, matches) for the fingerprints of one item (several frames: the union of
    their matches, nearest distance kept, and the decisive frame's verdict)."""
    results, best = [], {}
    for fp in fps:
        result, found = matcher.lookup(fp, rules)
        results.append(result)
        for match in found:
            kept = best.get(match["entry"])
            if kept is None or match["distance"] < kept["distance"]:
                best[match["entry"]] = match
    matches = sorted(best.values(), key=lambda m: (m["distance"], m["entry"]))
    rows = BankContent.labels_of(m["content"] for m in matches)
    out = []
    for m in matches:
        variant_of, external_id, note = rows.get(m["content"], (None, "", ""))
        out.append(
            {
                "bank": m["bank"],
                "bank_id": m["bank_id"],
                "bank_kind": m["kind"],
                "content_id": variant_of or m["content"],
                "variant": variant_of is not None,
                "entry_id": m["entry"],
                "algorithm": m["algorithm"],
                "distance": m["distance"],
                "mirrored": m["mirrored"],
                "external_id": external_id,
                "note": note,
            }
        )
    return _verdict(results[_decisive(results)]), out


LOOKUP_PARAMETERS = [
    OpenApiParameter(
        "algorithm", str, description="e.g. pdq, phash, average_hash (HMA's signal_type works)."
    ),
    OpenApiParameter("hash", str, description="Lowercase or uppercase hex (HMA's signal works)."),
    OpenApiParameter("signal_type", str, description="Alias of algorithm."),
    OpenApiParameter("signal", str, description="Alias of hash."),
]


class Lookup(ClientView):
    """Matches of a hash (or of a picture's hashes) in every active bank, with distances,
    and the quorum verdict the upload path would reach on them (as HMA's /m/lookup, with
    the hashes and the vote)."""

    required_scope = LOOKUP
    parser_classes = PARSERS

    @extend_schema(
        parameters=LOOKUP_PARAMETERS,
        responses={200: LookupResponse},
        tags=["hashes"],
        summary="Look up a hash",
    )
    def get(self, request):
        algorithm, value = _lookup_params(request)
        if not algorithm or not value:
            raise Invalid(
                "Give algorithm and hash, e.g. ?algorithm=pdq&hash=….",
                fields={"algorithm" if not algorithm else "hash": ["Required."]},
            )
        return self._answer(parse_hashes({algorithm: value}), "hash")

    @extend_schema(
        request={"application/json": LookupRequest, **PICTURE_BODIES},
        responses={200: LookupResponse},
        tags=["hashes"],
        summary="Look up hashes or a picture",
    )
    def post(self, request):
        fields = fields_of(request)
        algorithm, value = fields.get("algorithm"), fields.get("hash")
        if algorithm is not None or value is not None:
            if not isinstance(algorithm, str) or not isinstance(value, str):
                raise Invalid(
                    "Give algorithm and hash as strings.",
                    fields={
                        "algorithm" if not isinstance(algorithm, str) else "hash": ["Required."]
                    },
                )
            quality = fields.get("quality")
            return self._answer(parse_hashes({algorithm: value}, _quality(quality)), "hash")
        if "hashes" in fields:
            return self._answer(
                parse_hashes(fields["hashes"], _quality(fields.get("quality"))), "hash"
            )
        item = sent(request)
        if not item.source:
            raise Invalid(
                "Give algorithm and hash, hashes, url, or a picture.",
                fields={"hash": ["Required (or hashes, url, file)."]},
            )
        item = fetched(item)
        rules = rules_for(self.client)
        hashed = hash_bytes(item.data, mirrored=rules.mirror_aware)
        return self._answer(hashed.fps, item.source, rules)

    def _answer(self, fps, source: str, rules=None):
        fps = fps if isinstance(fps, list) else [fps]
        rules = rules or rules_for(self.client)
        verdict, matches = look_up(fps, rules)
        shown = hex_payload(fps[0])
        given = fps[0].get("given") or list(shown["hashes"])
        query = {
            "source": source,
            "hashes": {name: shown["hashes"][name] for name in given},
            "quality": {n: q for n, q in shown["quality"].items() if n in given},
        }
        return Response({"query": query, "matches": matches, "verdict": verdict})


def _quality(value):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("Quality is {algorithm: 0-100}.", fields={"quality": ["Not an object."]})
    return value
