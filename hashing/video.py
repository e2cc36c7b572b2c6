"""Video hashes and their vote: vPDQ (PDQ of frames, HMA's video signal) and a 64-bit pHash
of five frames, registered as the video kind's voters.

vPDQ, as ThreatExchange's vpdq defines it: a video is the PDQ hashes of its frames (with
quality and timestamp); two videos match when enough of the query's distinct, informative
frames (quality >= 50) each have a frame of the other within 31 bits, and (optionally) the
other way round. HMA uses 80 % of the query's frames and no condition on the reference's,
which is what lets a trimmed or clipped copy match: measured on ThreatExchange's clips for
the issue, this caught 9 of 9 trimmed and clipped copies where the five-frame fingerprint of
the API this platform replaces caught 0 and also made a false match. Bank references are
hashed at every frame (hashing.services, a reference video) and uploads at the policy's rate
(one frame a second), so each sampled upload frame lies within one frame of a reference
frame, whatever the frame rates. Frame PDQ is computed during the decode pass
(uploads.video), at most 512 px a side, the same way on both sides.

The pHash voter hashes the frames at 10/30/50/70/90 % of the clip with imagehash's phash
(the image voter's function) and votes when at least 3 of the 5 are within its threshold of
some frame hash of the reference: a cheap second signal for whole re-encoded copies. Each
reference frame hash is one bank entry (algorithm "vpdq" or "vphash"), so the bank
matcher's index, journal and enable/disable work for video as for pictures.

Both sides cut a frame's black bars off before hashing it (uploads.video ``content_box``),
and a frame that had bars is hashed whole as well; an upload is also hashed mirrored. The
vote reads the upload three ways (cut, whole, mirrored when the policy's ``mirror_aware``
says so) and the reading that votes most decides. Measured on the fixture clips
(bench/video_copies.py, 27 copies): letterboxed copies went from 0 of 6 caught to 6 of 6,
mirrored from 0 of 3 to 3 of 3, with trimmed (2 of 3, pHash none) and re-encoded (3 of 3)
as before and no false match; copies with a logo badge, a caption bar or a 10 % crop are
still missed by both voters (PDQ moves too far), which is what a moderator's review and the
classifier are there for.

The quorum is the images' rule (hashing.matcher): the policy's quorum (4) capped at the
weight of the voters able to vote. vPDQ weighs 4, so it blocks alone, as HMA uses it; the
pHash voter weighs 2 and never blocks alone (five 64-bit hashes carry too little to stand
on their own), but counts towards the quorum when an admin weighs vPDQ less.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import imagehash
import numpy as np
from django.db.models import Count

from .algorithms import HashAlgorithm, Signal, _bits_to_int, grey_source, register
from .duplicates import decided_others, exact_copies, strength
from .matcher import BLOCK, VotingRules, matcher, quorum_for
from .models import BankEntry, VideoFrames

KIND = "video"
MIN_QUALITY = 50  # PDQ's own guidance, as for pictures
QUERY_MATCH = 0.8  # HMA's vPDQ: share of the query's frames that must match
COMPARED_MATCH = 0.0  # ... and of the reference's (none: trimmed copies match)
PHASH_POSITIONS_NEEDED = 3  # of the 5 frames


class VPDQ(HashAlgorithm):
    """PDQ of frames; ``value`` is a tuple of (hash, quality, timestamp), one per hashed
    frame; a bank entry holds one frame's hash (64 hex characters)."""

    name = "vpdq"
    label = "vPDQ (video)"
    media_kind = KIND
    bits = 256
    default_threshold = 31
    max_threshold = 31
    default_weight = 4
    aliases = ("video_vpdq", "vpdq_hash")
    mirrorable = True  # an upload's frames are hashed mirrored too (uploads.video)
    balanced = True

    def signal(self, source) -> Signal:
        frames = tuple((h.pdq, h.quality, h.timestamp) for h in source.hashes)
        qualities = sorted(q for _, q, _ in frames)
        median = qualities[len(qualities) // 2] if qualities else 0
        return Signal(frames, median)

    def informative(self, signal: Signal) -> bool:
        value = signal.value
        if isinstance(value, int):  # one frame's hash (a bank entry)
            return signal.quality is None or signal.quality >= MIN_QUALITY
        return any(quality >= MIN_QUALITY for _, quality, _ in value)

    def to_hex(self, value) -> str | list:
        if isinstance(value, int):
            return super().to_hex(value)
        return [[super(VPDQ, self).to_hex(h), q, t] for h, q, t in value]


class VideoPHash(HashAlgorithm):
    """imagehash's phash of the frames at 10/30/50/70/90 %; ``value`` is their 5 hashes."""

    name = "vphash"
    label = "pHash of 5 frames (video)"
    media_kind = KIND
    bits = 64
    default_threshold = 10
    max_threshold = 12
    default_weight = 2
    mirrorable = True
    balanced = True

    def signal(self, source) -> Signal:
        values = tuple(_bits_to_int(imagehash.phash(grey_source(p)).hash) for p in source.positions)
        return Signal(values, None)

    def to_hex(self, value) -> str | list:
        if isinstance(value, int):
            return super().to_hex(value)
        return [super(VideoPHash, self).to_hex(v) for v in value]


register(VPDQ())
register(VideoPHash())


def is_video(fp: dict | None) -> bool:
    return bool(fp) and isinstance(fp.get("vpdq"), tuple)


def animation_fingerprint(fps: list[dict], timestamps: list[float]) -> dict:
    """An animation's sampled frames as a video fingerprint (their PDQ, already computed
    per frame as pictures are), so that a GIF cut from a banned clip meets the video banks."""
    frames = tuple(
        (fp["pdq"], (fp.get("quality") or {}).get("pdq", 0), t)
        for fp, t in zip(fps, timestamps, strict=True)
        if fp and fp.get("pdq") is not None
    )
    return {"vpdq": frames, "vphash": (), "quality": {}}


def query_frames(fp: dict) -> list[int]:
    """The query's distinct informative frame hashes (vpdq dedupes and filters the same)."""
    return list(dict.fromkeys(h for h, q, _ in fp.get("vpdq", ()) if q >= MIN_QUALITY))


def _as_hashed(fp: dict) -> list[dict]:
    """A fingerprint's unmirrored readings: frames cut to their content, and whole when
    some had black bars (uploads.video)."""
    return [fp, fp["uncut"]] if fp.get("uncut") else [fp]


def reference_entries(fp: dict) -> dict[str, list[str]]:
    """A bank reference's entries: {algorithm: [hex, ...]}, informative frames only."""
    entries = {}
    readings = _as_hashed(fp)  # cut and whole frames
    frames = list(dict.fromkeys(h for reading in readings for h in query_frames(reading)))
    if frames:
        entries["vpdq"] = [VPDQ().to_hex(h) for h in frames]
    positions = [v for reading in readings for v in reading.get("vphash") or ()]
    if positions:
        entries["vphash"] = list(dict.fromkeys(VideoPHash().to_hex(v) for v in positions))
    return entries


# -- the vote against the banks ----------------------------------------------------------------


def _search(state, name: str, queries: list[int], radius: int) -> list[list[tuple[int, int]]]:
    """Per query, the live entries of `name` within `radius`: [(entry id, distance)]."""
    found: list[list[tuple[int, int]]] = [[] for _ in queries]
    if not queries:
        return found
    for index in (state.index, state.extra_index):
        part = index.indexes.get(name) if index is not None else None
        if part is None or not len(part):
            continue
        for i, hits in enumerate(part.search_many(queries, radius)):
            found[i].extend((int(e), int(d)) for e, d in hits if int(e) not in state.dead)
    return found


@dataclass
class VideoTally:
    content: int
    bank: int
    votes: dict  # voter -> (entry, distance, mirrored)
    weight: int
    eligible: int
    quorum: int
    query_match: float = 0.0
    compared_match: float = 0.0
    positions: int = 0

    @property
    def reached(self) -> bool:
        return self.weight >= self.quorum

    def rank(self):
        return (not self.reached, -self.weight, -self.query_match, self.content)


def _tallies(
    fp: dict, rules: VotingRules, state, kind: str, mirrored: bool = False
) -> list[VideoTally]:
    """Per content of `kind` that any query frame meets, its votes; `fp` is the upload's
    fingerprint or its "mirror" (then every vote says ``mirrored``)."""
    voters = {n: s for n, s in rules.voter_settings().items() if n in ("vpdq", "vphash")}
    frames = query_frames(fp) if "vpdq" in voters else []
    positions = list(fp.get("vphash") or ()) if "vphash" in voters else []
    per_content: dict[int, dict] = {}

    def slot(entry_id):
        content, bank, entry_kind = state.lookup(entry_id)
        if entry_kind != kind:
            return None
        return per_content.setdefault(
            content, {"bank": bank, "frames": {}, "entries": set(), "positions": {}}
        )

    if frames:
        for i, hits in enumerate(_search(state, "vpdq", frames, voters["vpdq"].threshold)):
            for entry, distance in hits:
                held = slot(entry)
                if held is None:
                    continue
                held["entries"].add(entry)
                best = held["frames"].get(i)
                if best is None or distance < best[1]:
                    held["frames"][i] = (entry, distance)
    if positions:
        for i, hits in enumerate(_search(state, "vphash", positions, voters["vphash"].threshold)):
            for entry, distance in hits:
                held = slot(entry)
                if held is None:
                    continue
                best = held["positions"].get(i)
                if best is None or distance < best[1]:
                    held["positions"][i] = (entry, distance)
    if not per_content:
        return []
    sizes = dict(
        BankEntry.objects.filter(content_id__in=list(per_content), algorithm="vpdq", enabled=True)
        .values_list("content_id")
        .annotate(n=Count("pk"))
    )
    out = []
    for content, held in per_content.items():
        able = [n for n in state.voters_of(content) if n in voters]
        able = [n for n in able if (n == "vpdq" and frames) or (n == "vphash" and positions)]
        votes = {}
        query_match = len(held["frames"]) / len(frames) if frames else 0.0
        compared = len(held["entries"]) / sizes[content] if sizes.get(content) else 0.0
        if "vpdq" in able and query_match >= QUERY_MATCH and compared >= COMPARED_MATCH:
            entry, distance = min(held["frames"].values(), key=lambda v: v[1])
            votes["vpdq"] = (entry, distance, mirrored)
        if "vphash" in able and len(held["positions"]) >= PHASH_POSITIONS_NEEDED:
            entry, distance = min(held["positions"].values(), key=lambda v: v[1])
            votes["vphash"] = (entry, distance, mirrored)
        eligible = sum(voters[n].weight for n in able)
        weight = sum(voters[n].weight for n in votes)
        out.append(
            VideoTally(
                content,
                held["bank"],
                votes,
                weight,
                eligible,
                quorum_for(rules, eligible) if eligible else 1,
                round(query_match, 3),
                round(compared, 3),
                len(held["positions"]),
            )
        )
    return out


def _mirror(fp: dict, rules: VotingRules) -> dict | None:
    """The fingerprint's mirrored hashes when the policy looks for mirrored copies."""
    mirror = fp.get("mirror") if rules.mirror_aware else None
    return mirror if mirror and (mirror.get("vpdq") or mirror.get("vphash")) else None


def _readings(fp: dict, rules: VotingRules) -> list[tuple[dict, bool]]:
    """The ways an upload is read against the banks, (hashes, mirrored): its frames cut to
    their content, whole when they had black bars (uploads.video), and cut and mirrored
    when the policy looks for mirrored copies (the image voters' rule)."""
    readings = [(hashes, False) for hashes in _as_hashed(fp)]
    mirror = _mirror(fp, rules)
    if mirror is not None:
        readings.append((mirror, True))
    return readings


def _best(fp: dict, rules: VotingRules, state, kind: str) -> VideoTally | None:
    """The deciding content, whichever reading of the upload votes most for it."""
    tallies = [
        tally
        for hashes, mirrored in _readings(fp, rules)
        for tally in _tallies(hashes, rules, state, kind, mirrored)
    ]
    return min(tallies, key=VideoTally.rank, default=None)


def vote_video(fp: dict, rules: VotingRules) -> dict:
    """The voters' verdict on a video fingerprint, in ``hashing.matcher.vote``'s shape,
    plus "query_match" and "compared_match" (vPDQ's shares) of the deciding content."""
    voters = {n: s for n, s in rules.voter_settings().items() if n in ("vpdq", "vphash")}
    total = sum(s.weight for s in voters.values())
    state = matcher.state()
    block = _best(fp, rules, state, BLOCK)
    allow = _best(fp, rules, state, "allow")
    per_voter = {}
    for name in voters:
        held = block.votes.get(name) if block else None
        per_voter[name] = {
            "vote": held is not None,
            "entry": held[0] if held else None,
            "distance": held[1] if held else None,
            "mirrored": bool(held and held[2]),
        }
    return {
        "blocked": bool(block and block.reached),
        "allowed": bool(allow and allow.reached),
        "votes": block.weight if block else 0,
        "voters": total,
        "eligible": block.eligible if block else total,
        "quorum": block.quorum if block else quorum_for(rules, total),
        "bank": state.banks.get(block.bank, "") if block else "",
        "allow_bank": state.banks.get(allow.bank, "") if allow else "",
        "content": block.content if block else None,
        "allow_votes": allow.weight if allow else 0,
        "allow_content": allow.content if allow else None,
        "per_voter": per_voter,
        "thresholds": {n: s.threshold for n, s in voters.items()},
        "strict": False,
        "full_quorum": quorum_for(rules, total) if total else 1,
        "strict_thresholds": {},
        "query_match": block.query_match if block else 0.0,
        "compared_match": block.compared_match if block else 0.0,
        "version": str(state.version) if state.version else None,
    }


# -- past videos ---------------------------------------------------------------------------------


class PastVideos:
    """The sampled frame hashes of every past video (``VideoFrames`` rows), one array per
    process, appended to as videos are analysed (rows are never changed, only added).

    Searched by brute force: 600 frames of a new upload against 1,000 past videos of 600
    frames each is 360 million 256-bit comparisons (seconds); an index (hashing.index's
    multi-index hashing) is the next step when that many videos are kept.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.items = np.zeros(0, np.int64)
            self.hashes = np.zeros((0, 4), np.uint64)
            self._last = 0

    def refresh(self):
        with self._lock:
            rows = list(
                VideoFrames.objects.filter(pk__gt=self._last)
                .order_by("pk")
                .values_list("pk", "item_id", "hashes")
            )
            if not rows:
                return
            self._last = rows[-1][0]
            items = [np.full(len(h) // 32, item_id, np.int64) for _, item_id, h in rows]
            raw = b"".join(bytes(h) for _, _, h in rows)
            arr = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)
            self.items = np.concatenate([self.items, *items])
            self.hashes = np.concatenate([self.hashes, arr])

    def search(self, queries: list[int], radius: int) -> dict[int, dict[int, int]]:
        """{past item: {query index: nearest distance}} within `radius`."""
        found: dict[int, dict[int, int]] = {}
        if not len(self.items):
            return found
        items, hashes = self.items, self.hashes
        for i, query in enumerate(queries):
            words = np.array([(query >> (64 * (3 - w))) & (2**64 - 1) for w in range(4)], np.uint64)
            distances = np.bitwise_count(hashes ^ words).sum(axis=1)
            for at in np.nonzero(distances <= radius)[0]:
                held = found.setdefault(int(items[at]), {})
                d = int(distances[at])
                if d < held.get(i, 257):
                    held[i] = d
        return found


past_videos = PastVideos()


def pack_frames(fp: dict) -> bytes:
    """The informative sampled frames' PDQ, 32 bytes each (what ``VideoFrames`` keeps)."""
    return b"".join(h.to_bytes(32, "big") for h in query_frames(fp))


def store_video_frames(item, fp: dict) -> None:
    """Keep a video's sampled frame hashes, for later uploads' duplicate check."""
    VideoFrames.objects.update_or_create(item=item, defaults={"hashes": pack_frames(fp)})


def find_video_duplicates(item, fp: dict, rules: VotingRules, limit: int = 10) -> list[dict]:
    """Earlier videos that are exact (sha256) or near copies of `item`, in
    ``hashing.duplicates.find_duplicates``'s shape. Near: vPDQ's rule, QUERY_MATCH of the
    upload's frames within vPDQ's threshold of the past video's, weighed as for banks."""
    decided = decided_others(item)
    found = exact_copies(item, limit)
    setting = rules.voter_settings().get("vpdq")
    frames = query_frames(fp)
    if setting is not None and frames:
        past_videos.refresh()
        quorum = quorum_for(rules, setting.weight)
        near = {}
        ways = [query_frames(hashes) for hashes, _ in _readings(fp, rules)]
        for queries in filter(None, ways):
            for pk, matched in past_videos.search(queries, setting.threshold).items():
                share = len(matched) / len(queries)
                if pk != item.pk and pk not in found and share >= QUERY_MATCH:
                    if share > near.get(pk, (0.0,))[0]:
                        near[pk] = (share, min(matched.values()))
        known = decided.filter(pk__in=list(near)).values_list("pk", "uuid", "status")
        for pk, uuid, status in known:
            share, distance = near[pk]
            found[pk] = {
                "id": str(uuid),
                "pk": pk,
                "exact": False,
                "status": status,
                "votes": setting.weight if setting.weight >= quorum else 0,
                "quorum": quorum,
                "eligible": setting.weight,
                "distance": distance,
                "voters": {"vpdq": distance},
                "query_match": round(share, 3),
            }
        found = {pk: d for pk, d in found.items() if d["exact"] or d["votes"]}
    return sorted(found.values(), key=strength)[:limit]
