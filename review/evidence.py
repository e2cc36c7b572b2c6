"""The match evidence behind an item's outcome, as the moderator's item page shows it.

Read from what the analysis recorded (``MediaItem.matches``: the bank vote and the past
items found, and the ``Analysis`` record's hashes, with their quality), and from the rows
they name: the bank content and its entries, the past items and their stored hashes.

Per voter it says what happened: agreed (distance within its threshold), did not agree
(the distance to this reference or past item, beyond its threshold), abstained (a hash too
featureless to vote, on either side), no hash to compare (the reference has no entry of
that algorithm), or not a voter (switched off in the policy when the item was analysed).
Distances of the voters that agreed are the vote's own; the others are computed here from
the same hashes, plain or mirrored as the vote compared them.

Pictures: the matched past item's original, or for a bank reference the reviewed item it
was added from (``BankContent.source_item``); a reference image or an imported hash keeps
no picture (hashing.models.BankContent), and the page says so. The page links pictures
through the permission-checked original view (``uploads:original``) only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hashing.algorithms import ALGORITHMS, Signal
from hashing.models import BankContent, BankEntry, Fingerprint
from uploads.models import MediaItem

AGREED = "agreed"
DISAGREED = "disagreed"
ABSTAINED = "abstained"
NO_HASH = "no_hash"
OFF = "off"

# Near copies shown on the page at most (the analysis keeps up to 10).
MAX_COPIES = 5
NOT_KEPT = "Reference picture not kept"


@dataclass(frozen=True)
class VoterLine:
    """One hash voter's part in a match."""

    name: str
    state: str
    distance: int | None = None
    threshold: int | None = None
    mirrored: bool = False
    note: str = ""

    @property
    def label(self) -> str:
        algorithm = ALGORITHMS.get(self.name)
        return algorithm.label if algorithm is not None and algorithm.label else self.name

    @property
    def agreed(self) -> bool:
        return self.state == AGREED

    @property
    def against_threshold(self) -> str:
        """The threshold, with how the distance stands to it: "≤ 8", "> 8" or "8"."""
        if self.threshold is None:
            return ""
        if self.distance is None or self.state not in (AGREED, DISAGREED):
            return str(self.threshold)
        return f"{'≤' if self.distance <= self.threshold else '>'} {self.threshold}"


@dataclass(frozen=True)
class Picture:
    """The matched picture when it is stored (an item whose original may be shown), else
    the sentence that says why not."""

    item: MediaItem | None = None
    missing: str = ""


@dataclass(frozen=True)
class BankEvidence:
    """The bank content the vote settled on (the one that reached its quorum, else the
    closest to it)."""

    bank: str
    blocked: bool
    votes: int
    eligible: int
    quorum: int
    content_id: int | None
    content: BankContent | None
    voters: list[VoterLine]
    picture: Picture
    allowed: bool = False
    allow_bank: str = ""
    frame: int | None = None  # the animation frame the vote was on

    @property
    def agreeing(self) -> int:
        """How many voters agreed (``votes`` is their weight: four of five weigh 2)."""
        return sum(line.agreed for line in self.voters)

    @property
    def reference(self) -> str:
        """The reference as people read it: its name, else what it came from."""
        if self.content is None:
            return f"content #{self.content_id} (no longer in the bank)"
        return self.content.name or self.content.get_source_display()


@dataclass(frozen=True)
class CopyEvidence:
    """A past item this one copies (exactly, or by a quorum of voters)."""

    id: str
    item: MediaItem | None
    exact: bool
    status: str  # when the analysis ran
    votes: int | None
    eligible: int | None
    quorum: int | None
    voters: list[VoterLine]
    picture: Picture
    decisive: bool = False  # the copy the outcome rests on (item.duplicate_of)
    frame: int | None = None  # the animation frame that copies it

    @property
    def agreeing(self) -> int:
        return sum(line.agreed for line in self.voters)

    @property
    def status_now(self) -> str:
        return self.item.status if self.item is not None else ""


@dataclass(frozen=True)
class Evidence:
    bank: BankEvidence | None = None
    copies: list[CopyEvidence] = field(default_factory=list)
    more_copies: int = 0
    analysed: bool = False

    @property
    def any(self) -> bool:
        return self.bank is not None or bool(self.copies)


def evidence_for(item: MediaItem, analysis=None) -> Evidence:
    """What matched `item`, from its latest analysis (`analysis`, else looked up)."""
    if analysis is None:
        analysis = item.analyses.order_by("-created_at", "-pk").first()
    matches = item.matches or (analysis.matches if analysis is not None else {}) or {}
    record = (analysis.hashes if analysis is not None else None) or _stored(item)
    matches, record = _current_names(matches, record)
    hashes = _Hashes(record)
    bank = matches.get("bank") or {}
    thresholds = dict(bank.get("thresholds") or {})
    duplicates = [d for d in (matches.get("duplicates") or []) if d.get("id")]
    return Evidence(
        bank=_bank(bank, hashes, thresholds) if bank.get("content") is not None else None,
        copies=_copies(item, duplicates[:MAX_COPIES], hashes, thresholds),
        more_copies=max(0, len(duplicates) - MAX_COPIES),
        analysed=analysis is not None or item.analysed_at is not None,
    )


# Records made before the algorithms took imagehash's names (hashing migration 0004, which
# renames rows but not the JSON of analyses): "phash" was the row DCT, "mhash" the median
# DCT. A record with an "mhash" key is in the former names.
FORMER_NAMES = {"phash": "phash_simple", "mhash": "phash"}


def _renamed(mapping: dict | None) -> dict:
    return {FORMER_NAMES.get(k, k): v for k, v in (mapping or {}).items()}


def _current_names(matches: dict, record: dict) -> tuple[dict, dict]:
    """The analysis's matches and hashes in today's algorithm names."""
    bank = matches.get("bank") or {}
    duplicates = matches.get("duplicates") or []
    former = "mhash" not in ALGORITHMS and (
        "mhash" in record
        or "mhash" in (bank.get("thresholds") or {})
        or any("mhash" in (d.get("voters") or {}) for d in duplicates)
    )
    if not former:
        return matches, record

    def hashes(one: dict) -> dict:
        out = _renamed({k: v for k, v in one.items() if isinstance(v, str)})
        out.update(quality=_renamed(one.get("quality")), mirror=_renamed(one.get("mirror")))
        if one.get("frames"):
            out["frames"] = {n: hashes(f) for n, f in one["frames"].items()}
        return out

    if bank:
        bank = {
            **bank,
            "thresholds": _renamed(bank.get("thresholds")),
            "per_voter": _renamed(bank.get("per_voter")),
        }
    duplicates = [{**d, "voters": _renamed(d.get("voters"))} for d in duplicates]
    return {**matches, "bank": bank or None, "duplicates": duplicates}, hashes(record)


class _Hashes:
    """An analysed item's hashes (hex, as the audit records them) and their quality."""

    def __init__(self, record: dict):
        self.record = record
        self.quality = dict(record.get("quality") or {})
        self.mirror = dict(record.get("mirror") or {})
        self.plain = {k: v for k, v in record.items() if isinstance(v, str)}

    def of_frame(self, number) -> _Hashes:
        """The hashes of one sampled frame of an animation (its record's "frames"), which
        its matches were voted on; the item's (first frame's) otherwise."""
        frames = self.record.get("frames") or {}
        if number is None or str(number) not in frames:
            return self
        return _Hashes(frames[str(number)])

    def frame_shown(self, number) -> int | None:
        """The frame number worth naming: only for an animation (a still is one frame)."""
        return number if self.record.get("frames") else None

    def names(self) -> list[str]:
        return list(self.plain)

    def informative(self, name: str) -> bool | None:
        """None when it cannot be told (no hash, or an algorithm no longer registered)."""
        return _informative(name, self.plain.get(name), self.quality.get(name))

    def distance(self, name: str, other_hex: str | None) -> tuple[int | None, bool]:
        """(distance to `other_hex`, whether the mirrored hash was the nearer), as the vote
        compares them: the plain hash, and the mirrored one when the analysis made it."""
        algorithm = ALGORITHMS.get(name)
        mine = _int(self.plain.get(name))
        other = _int(other_hex)
        if algorithm is None or mine is None or other is None:
            return None, False
        distance = algorithm.distance(mine, other)
        mirror = _int(self.mirror.get(name))
        if mirror is not None and algorithm.distance(mirror, other) < distance:
            return algorithm.distance(mirror, other), True
        return distance, False


def _int(text) -> int | None:
    try:
        return int(str(text), 16) if text is not None else None
    except ValueError:
        return None


def _informative(name: str, value_hex, quality) -> bool | None:
    algorithm = ALGORITHMS.get(name)
    value = _int(value_hex)
    if algorithm is None or value is None:
        return None
    return algorithm.informative(Signal(value, quality))


def _stored(item: MediaItem) -> dict:
    """The item's stored hash rows, for an item without an analysis record."""
    out: dict = {"quality": {}}
    for name, value, quality in Fingerprint.objects.filter(item=item, mirrored=False).values_list(
        "algorithm", "value", "quality"
    ):
        out[name] = value
        if quality is not None:
            out["quality"][name] = quality
    return out


def _ordered(names) -> list[str]:
    """Registry order first (the policy's order), then names no longer registered."""
    wanted = set(names)
    return [n for n in ALGORITHMS if n in wanted] + sorted(wanted - set(ALGORITHMS))


def _quality_note(quality) -> str:
    return f" (quality {quality})" if quality is not None else ""


def _bank(bank: dict, item_hashes: _Hashes, thresholds: dict) -> BankEvidence:
    hashes = item_hashes.of_frame(bank.get("frame"))
    content = (
        BankContent.objects.select_related("bank", "source_item", "created_by")
        .filter(pk=bank["content"])
        .first()
    )
    entries = (
        dict(BankEntry.objects.filter(content=content).values_list("algorithm", "value"))
        if content is not None
        else {}
    )
    per_voter = bank.get("per_voter") or {}
    lines = []
    for name in _ordered([*hashes.names(), *per_voter, *thresholds]):
        vote = per_voter.get(name)
        threshold = thresholds.get(name)
        if vote is not None and vote.get("vote"):
            lines.append(
                VoterLine(name, AGREED, vote.get("distance"), threshold, bool(vote.get("mirrored")))
            )
            continue
        informative = hashes.informative(name)
        if informative is False:
            note = "low-information hash" + _quality_note(hashes.quality.get(name))
            lines.append(VoterLine(name, ABSTAINED, threshold=threshold, note=note))
        elif vote is None and thresholds and name not in thresholds:
            lines.append(VoterLine(name, OFF, note="not a voter when analysed"))
        elif content is not None and name not in entries:
            lines.append(
                VoterLine(name, NO_HASH, threshold=threshold, note="no hash of the reference")
            )
        else:
            distance, mirrored = hashes.distance(name, entries.get(name))
            lines.append(VoterLine(name, DISAGREED, distance, threshold, mirrored))
    return BankEvidence(
        bank=bank.get("bank") or (content.bank.name if content is not None else ""),
        blocked=bool(bank.get("blocked")),
        votes=bank.get("votes") or 0,
        eligible=bank.get("eligible", bank.get("voters")) or 0,
        quorum=bank.get("quorum") or 0,
        content_id=bank.get("content"),
        content=content,
        voters=lines,
        picture=_reference_picture(content),
        allowed=bool(bank.get("allowed")),
        allow_bank=bank.get("allow_bank") or "",
        frame=item_hashes.frame_shown(bank.get("frame")),
    )


def _reference_picture(content: BankContent | None) -> Picture:
    if content is None:
        return Picture(missing=f"{NOT_KEPT}: the reference is no longer in the bank.")
    source = content.source_item
    if source is None:
        if content.source == BankContent.Source.REVIEW_ITEM:
            return Picture(missing=f"{NOT_KEPT}: the reviewed item it came from was deleted.")
        return Picture(missing=f"{NOT_KEPT}: banks keep only the hashes of their references.")
    if not _stored_file(source):
        return Picture(missing=f"{NOT_KEPT}: the reviewed item's file is no longer stored.")
    return Picture(item=source)


def _stored_file(item: MediaItem) -> bool:
    try:
        return bool(item.file.name) and item.file.storage.exists(item.file.name)
    except (OSError, ValueError):
        return False


def _copies(
    item: MediaItem, duplicates: list[dict], hashes: _Hashes, thresholds: dict
) -> list[CopyEvidence]:
    if not duplicates:
        return []
    ids = [d["id"] for d in duplicates]
    past = {str(i.uuid): i for i in MediaItem.objects.filter(uuid__in=ids)}
    stored: dict[int, dict] = {}
    rows = Fingerprint.objects.filter(item__in=list(past.values()), mirrored=False).values_list(
        "item_id", "algorithm", "value", "quality"
    )
    for pk, name, value, quality in rows:
        stored.setdefault(pk, {})[name] = (value, quality)
    out = []
    for d in duplicates:
        other = past.get(d["id"])
        voters = []
        if not d.get("exact"):
            theirs = stored.get(other.pk, {}) if other is not None else {}
            mine = hashes.of_frame(d.get("frame"))
            voters = _copy_voters(d.get("voters") or {}, mine, theirs, thresholds)
        if other is None:
            picture = Picture(missing="Picture not kept: the past item was deleted.")
        elif not _stored_file(other):
            picture = Picture(missing="Picture not kept: the past item's file is no longer stored.")
        else:
            picture = Picture(item=other)
        out.append(
            CopyEvidence(
                id=d["id"],
                item=other,
                exact=bool(d.get("exact")),
                status=d.get("status") or "",
                votes=d.get("votes"),
                eligible=d.get("eligible"),
                quorum=d.get("quorum"),
                voters=voters,
                picture=picture,
                decisive=other is not None and other.pk == item.duplicate_of_id,
                frame=None if d.get("exact") else hashes.frame_shown(d.get("frame")),
            )
        )
    return out


def _copy_voters(agreed: dict, hashes: _Hashes, theirs: dict, thresholds: dict) -> list[VoterLine]:
    lines = []
    for name in _ordered([*hashes.names(), *agreed]):
        threshold = thresholds.get(name)
        if name in agreed:
            distance, mirrored = hashes.distance(name, (theirs.get(name) or (None,))[0])
            mirrored = mirrored and distance == agreed[name]
            lines.append(VoterLine(name, AGREED, agreed[name], threshold, mirrored))
            continue
        value, quality = theirs.get(name, (None, None))
        mine = hashes.informative(name)
        if mine is False:
            note = "low-information hash of this item" + _quality_note(hashes.quality.get(name))
            lines.append(VoterLine(name, ABSTAINED, threshold=threshold, note=note))
        elif thresholds and name not in thresholds:
            lines.append(VoterLine(name, OFF, note="not a voter when analysed"))
        elif value is None:
            lines.append(
                VoterLine(name, NO_HASH, threshold=threshold, note="no hash of the past item")
            )
        elif _informative(name, value, quality) is False:
            note = "low-information hash of the past item" + _quality_note(quality)
            lines.append(VoterLine(name, ABSTAINED, threshold=threshold, note=note))
        else:
            distance, mirrored = hashes.distance(name, value)
            lines.append(VoterLine(name, DISAGREED, distance, threshold, mirrored))
    return lines
