"""Bank management: banks, reference images, hash lists, reviewed items, enabling entries.

Every function here writes its BankChange audit rows and bumps BankVersion in the same
transaction as the change, so the change, its record and the signal that makes every
process rebuild its matcher commit together or not at all. Admin, the management
commands and the review queue all go through these functions.

Reference images are hashed with the very functions that hash uploads
(``open_for_hashing`` then ``fingerprint``), and are not kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from PIL import Image

from moderation_site.bulk import insert_rows
from moderation_site.errors import Invalid
from uploads.kinds import open_for_hashing
from uploads.validation import RefusedUpload, check_shape
from uploads.video import VideoDecodeError, container_of, get_video_kind

from . import labels, references
from .algorithms import ALGORITHMS, UnknownAlgorithm, algorithm_named, fingerprint, informative
from .matcher import ContentRule, content_rule, default_rules
from .models import Bank, BankChange, BankContent, BankEntry, BankVersion
from .video import is_video, reference_entries

CSV_HEADER = ["hash_type", "hash_value", "note", "content", "external_id"]
_HEADER_NAMES = {"hash_type", "type", "signal_type", "algorithm"}
_HEX = re.compile(r"[0-9a-f]+")
MAX_REPORTED_ERRORS = 10
MAX_SAMPLES = 20  # sample pictures checked against a list's labels at most
# Hash functions other lists name that this product does not compute: refused as what
# they are, so nobody reads "unknown" as a typo.
NOT_COMPUTED = {
    "whash": "imagehash.whash, the wavelet hash",
    "colorhash": "imagehash.colorhash",
    "dhash_vertical": "imagehash.dhash_vertical (dhash compares across rows, this down columns)",
    "crop_resistant_hash": "imagehash.crop_resistant_hash",
}
# This product's names before they became imagehash's (hashing migration 0004): a list
# naming one of these and "phash" is an old export, in which "phash" meant phash_simple.
FORMER_NAMES = {"mhash", "median_hash"}

Progress = Callable[[int, int], None]


class BankError(Invalid, ValueError):
    """A refused bank change; the message is meant for the admin who asked for it."""

    code = "bank_refused"


@dataclass(frozen=True, slots=True)
class HashRow:
    line: int
    algorithm: str
    value: str
    note: str = ""
    content_key: str = ""
    external_id: str = ""  # the content's id elsewhere (an API client's, a shared list's)


def normalise_hash(hash_type: str, value: str) -> tuple[str, str]:
    """(algorithm, lowercase hex) or ValueError saying what is wrong.

    Names are imagehash's (``phash`` is imagehash.phash, ``phash_simple``
    imagehash.phash_simple); names other lists use are accepted (``algorithm.aliases``).
    """
    try:
        algorithm = algorithm_named(hash_type)
    except UnknownAlgorithm:
        known = ", ".join(ALGORITHMS)
        what = NOT_COMPUTED.get(hash_type.strip().lower())
        if what:
            raise ValueError(
                f"“{hash_type.strip()}” is {what}, which this product does not compute, so "
                f"its hashes could never match (use {known})"
            ) from None
        raise ValueError(f"unknown hash type “{hash_type.strip()[:40]}” (use {known})") from None
    text = value.strip().lower().removeprefix("0x")
    chars = algorithm.bits // 4
    if len(text) != chars or not _HEX.fullmatch(text):
        raise ValueError(
            f"a {algorithm.name} hash is {chars} hex characters, not “{value.strip()[:80]}”"
        )
    return algorithm.name, text


def parse_hash_list(lines: Iterable[str]) -> list[HashRow]:
    """Rows of a CSV hash list: ``hash_type,hash_value[,note[,content[,external_id]]]``.

    The header and blank or ``#`` lines are skipped. Rows sharing a ``content`` key are
    the hashes of one picture (what export writes for reference images); rows without
    one are each their own content. ``external_id`` is the content's id elsewhere (its
    rows give the same one, or leave it empty). Raises BankError naming every bad line
    (up to 10).
    """
    reader = csv.reader(lines)
    rows: list[HashRow] = []
    errors: list[str] = []
    seen_in_content: dict[tuple[str, str], int] = {}
    external_ids: dict[str, tuple[str, int]] = {}  # content key -> (its external id, line)
    names_used: set[str] = set()
    first = True
    for cells in reader:
        line = reader.line_num
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first and cells[0].lower() in _HEADER_NAMES:
            first = False
            continue
        first = False
        if len(cells) < 2 or len(cells) > 5:
            errors.append(
                f"line {line}: expected hash_type,hash_value[,note[,content[,external_id]]]"
            )
            continue
        try:
            algorithm, value = normalise_hash(cells[0], cells[1])
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        names_used.add(cells[0].lower())
        note = cells[2] if len(cells) > 2 else ""
        key = cells[3] if len(cells) > 3 else ""
        external_id = cells[4][:255] if len(cells) > 4 else ""
        if key:
            earlier = seen_in_content.setdefault((key, algorithm), line)
            if earlier != line:
                errors.append(
                    f"line {line}: content “{key}” already has a {algorithm} hash (line {earlier})"
                )
                continue
            named = external_ids.setdefault(key, (external_id, line))
            if external_id and named[0] and named[0] != external_id:
                errors.append(
                    f"line {line}: content “{key}” has external id “{named[0]}” (line "
                    f"{named[1]}), not “{external_id}”"
                )
                continue
            if external_id and not named[0]:
                external_ids[key] = (external_id, line)
        rows.append(HashRow(line, algorithm, value, note[:500], key[:100], external_id))
    if "phash" in names_used and names_used & FORMER_NAMES:
        former = sorted(names_used & FORMER_NAMES)[0]
        raise BankError(
            f"Nothing was imported. The list names both {former} and phash, as this "
            "product's exports did before its names became imagehash's: there “phash” "
            "meant imagehash.phash_simple and “mhash” imagehash.phash. Rename phash to "
            "phash_simple, then mhash to phash, and import it again."
        )
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        listed = "; ".join(errors[:MAX_REPORTED_ERRORS])
        suffix = f"; and {more} more bad line(s)" if more > 0 else ""
        raise BankError(f"Nothing was imported. {listed}{suffix}.")
    return rows


# -- banks -------------------------------------------------------------------------

_BANK_FIELDS = ("name", "kind", "active", "description")


def save_bank(bank: Bank, *, actor=None) -> Bank:
    """Create or change a bank; audited with old → new values."""
    with transaction.atomic():
        if bank.pk is None:
            bank.created_by = bank.created_by or actor
            bank.save()
            detail = {f: getattr(bank, f) for f in _BANK_FIELDS}
            _audit(bank, BankChange.Action.BANK_CREATED, actor, detail)
            changed = {}
        else:
            old = Bank.objects.select_for_update().get(pk=bank.pk)
            changed = {
                f: [getattr(old, f), getattr(bank, f)]
                for f in _BANK_FIELDS
                if getattr(old, f) != getattr(bank, f)
            }
            bank.save()
            if not changed:
                return bank
            _audit(bank, BankChange.Action.BANK_CHANGED, actor, changed)
        # A new bank has no entries and a description matches nothing: no matcher need
        # reload for those (a rebuild of millions of entries takes seconds).
        BankVersion.bump(rebuild=bool(set(changed) - {"description"}))
    return bank


def create_bank(name: str, *, kind=Bank.Kind.BLOCK, actor=None, description="", active=True):
    return save_bank(
        Bank(name=name, kind=kind, description=description, active=active), actor=actor
    )


# -- entries from pictures ------------------------------------------------------------


def fingerprint_reference(data: bytes, name: str = "") -> tuple[dict, str]:
    """Hashes of a reference picture, exactly as an upload of it would be hashed."""
    reference = hash_reference(data, name, with_versions=False)
    return reference.fp, reference.sha256


@dataclass(frozen=True)
class Reference:
    """A reference picture's hashes, and those of its rotated versions (hashing.references)."""

    fp: dict
    sha256: str
    versions: tuple[tuple[str, dict], ...] = ()


def hash_reference(data: bytes, name: str = "", *, with_versions: bool = True) -> Reference:
    """Decode a reference picture within the upload limits and hash it (and its versions);
    a reference video is hashed at every frame (hashing.video)."""
    label = f"“{name}”" if name else "The file"
    if container_of(data) is not None:
        return hash_reference_video(data, label)
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise BankError(f"{label} is larger than the upload limit.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
            if width * height > settings.UPLOAD_MAX_PIXELS:
                raise BankError(f"{label} has more pixels than the upload limit.")
            check_shape(width, height)  # the uploads' sides and proportions
            image = open_for_hashing(data)
    except RefusedUpload as exc:
        raise BankError(f"{label}: {exc.message}" if name else exc.message) from None
    except BankError:
        raise
    except Exception:  # Pillow raises many types on bad input
        raise BankError(f"{label} is not an image that can be read.") from None
    fp = fingerprint(image, mirrored=False)
    if not _entries_for(fp):
        raise BankError(
            f"{label} has too little detail to be matched (a flat or nearly flat picture): "
            "every hash would abstain, so it could never block anything."
        )
    versions = ()
    if with_versions:
        versions = tuple(
            (how, fingerprint(version, mirrored=False))
            for how, version in references.versions(image)
        )
    return Reference(fp, hashlib.sha256(data).hexdigest(), versions)


def hash_reference_video(data: bytes, label: str) -> Reference:
    """A reference video within the video caps, every frame's PDQ and the five pHashes."""
    kind = get_video_kind()
    try:
        kind.validate(data, max_bytes=kind.max_bytes(), max_pixels=settings.UPLOAD_MAX_PIXELS)
        fp = fingerprint(kind.reference(data), kind.name, False)
    except RefusedUpload as exc:
        raise BankError(f"{label}: {exc.message}") from None
    except VideoDecodeError:
        raise BankError(f"{label} is not a video that can be read to its end.") from None
    if not _entries_for(fp):
        raise BankError(f"{label} has too little detail in every frame to be matched.")
    return Reference(fp, hashlib.sha256(data).hexdigest())


def _entries_for(fp: dict) -> dict[str, str | list[str]]:
    """Hex per algorithm; none from a hash too featureless to vote (PDQ on a flat picture).
    A video's: a list per algorithm, one entry per informative frame (hashing.video)."""
    if is_video(fp):
        return reference_entries(fp)
    return {
        name: algorithm.to_hex(fp[name])
        for name, algorithm in ALGORITHMS.items()
        if informative(fp, name)
    }


def _add_content(
    bank,
    fp,
    sha256,
    *,
    source,
    actor,
    name="",
    note="",
    item=None,
    variant_of=None,
    external_id="",
):
    content = BankContent.objects.create(
        bank=bank,
        source=source,
        source_item=item,
        variant_of=variant_of,
        name=name[:255],
        sha256=sha256,
        note=note[:500],
        external_id=external_id[:255],
        created_by=actor,
    )
    entries = BankEntry.objects.bulk_create(
        BankEntry(
            bank=bank,
            content=content,
            algorithm=algorithm,
            value=value,
            frame=frame,
            note=(note or name)[:500],
            created_by=actor,
        )
        for algorithm, values in _entries_for(fp).items()
        for frame, value in enumerate(values if isinstance(values, list) else [values])
    )
    return content, entries


def _add_reference(
    bank,
    reference: Reference,
    *,
    source,
    actor,
    name="",
    note="",
    item=None,
    external_id="",
    made_ids=None,
):
    """The reference's content, and one content per rotated version that has hashes.
    `made_ids`: a list the ids of every entry made are appended to (for BankVersion.bump)."""
    content, entries = _add_content(
        bank,
        reference.fp,
        reference.sha256,
        source=source,
        actor=actor,
        name=name,
        note=note,
        item=item,
        external_id=external_id,
    )
    made_ids = [] if made_ids is None else made_ids
    made_ids.extend(e.pk for e in entries)
    made = 0
    for how, fp in reference.versions:
        if _entries_for(fp):
            _, version_entries = _add_content(
                bank,
                fp,
                "",
                source=source,
                actor=actor,
                name=f"{name} ({how})"[:255],
                note=note,
                item=item,
                variant_of=content,
                external_id=external_id,
            )
            made_ids.extend(e.pk for e in version_entries)
            made += 1
    return content, entries, made


def add_images(
    bank: Bank,
    files: Sequence[tuple[str, bytes]],
    *,
    actor=None,
    note: str = "",
    external_id: str = "",
) -> dict:
    """Hash reference pictures into a bank, one content each (and one per rotated
    version, hashing.references); all or none. `external_id`: the id the pictures have
    elsewhere (an API client's own), kept on each content.

    A picture already in the bank (same bytes) is skipped. Returns {"added": [contents],
    "skipped": [names]}; the versions hang off each added content (``variants``).
    """
    hashed = [(name, hash_reference(data, name)) for name, data in files]
    added, skipped, made_ids = [], [], []
    with transaction.atomic():
        known = set(
            BankContent.objects.filter(
                bank=bank, sha256__in=[r.sha256 for _, r in hashed]
            ).values_list("sha256", flat=True)
        )
        for name, reference in hashed:
            if reference.sha256 in known:
                skipped.append(name)
                continue
            known.add(reference.sha256)
            content, entries, versions = _add_reference(
                bank,
                reference,
                source=BankContent.Source.IMAGE,
                actor=actor,
                name=name,
                note=note,
                external_id=external_id,
                made_ids=made_ids,
            )
            detail = {
                "name": name,
                "sha256": reference.sha256,
                "entries": {e.algorithm: e.value for e in entries},
                "quality": reference.fp.get("quality", {}),
                "rotated_versions": versions,
            }
            if external_id:
                detail["external_id"] = external_id
            _audit(bank, BankChange.Action.IMAGES_ADDED, actor, detail, content=content)
            added.append(content)
        if added:
            _bump_added(made_ids)
    return {"added": added, "skipped": skipped}


def add_item_to_bank(item, bank: Bank, *, actor=None, note: str = "") -> BankContent:
    """Put a reviewed item's picture in a bank ("add to bank" on a rejected item).

    Hashed from the stored original with the same functions as uploads, with its rotated
    versions. Adding the same picture twice returns the content already there.
    """
    with item.file.open("rb") as fh:
        data = fh.read()
    reference = hash_reference(data, item.original_name)
    with transaction.atomic():
        existing = BankContent.objects.filter(bank=bank, sha256=reference.sha256).first()
        if existing is not None:
            return existing
        made_ids = []
        content, entries, versions = _add_reference(
            bank,
            reference,
            source=BankContent.Source.REVIEW_ITEM,
            actor=actor,
            name=item.original_name,
            note=note or f"item {item.uuid}",
            item=item,
            made_ids=made_ids,
        )
        detail = {
            "item": str(item.uuid),
            "entries": {e.algorithm: e.value for e in entries},
            "rotated_versions": versions,
        }
        _audit(bank, BankChange.Action.ITEM_ADDED, actor, detail, content=content)
        _bump_added(made_ids)
    return content


def add_hashes(
    bank: Bank,
    hashes: Mapping[str, str],
    *,
    actor=None,
    note: str = "",
    external_id: str = "",
    name: str = "",
) -> tuple[BankContent, bool]:
    """One content from hashes computed elsewhere, ``{algorithm (or an alias): hex}``:
    the hashes of one picture, so they vote together (as an import's content group).

    Returns (content, created): hashes that are all already one content of the bank
    return that content. Raises BankError naming each bad hash.
    """
    try:
        ((content, created),) = add_hash_contents(
            bank,
            [{"hashes": hashes, "note": note, "external_id": external_id}],
            actor=actor,
            name=name,
        )
    except BankError as exc:
        fields = {k.removeprefix("0."): v for k, v in (exc.fields or {}).items()}
        raise BankError(exc.detail, fields=fields or None) from None
    return content, created


def _parse_hash_map(hashes) -> tuple[dict[str, str], dict[str, list[str]]]:
    parsed: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    if not isinstance(hashes, Mapping) or not hashes:
        return parsed, {"hashes": ["Give at least one hash, {algorithm: hex}."]}
    for key, value in hashes.items():
        try:
            algorithm, text = normalise_hash(str(key), str(value))
        except ValueError as exc:
            errors[str(key)] = [str(exc)]
            continue
        if algorithm in parsed:
            errors[str(key)] = [f"a second {algorithm} hash (a content has one of each)"]
            continue
        parsed[algorithm] = text
    return parsed, errors


def add_hash_contents(
    bank: Bank, items: Sequence[Mapping], *, actor=None, name: str = ""
) -> list[tuple[BankContent, bool]]:
    """Contents from hashes computed elsewhere, all or none, in one transaction: each item
    is ``{"hashes": {algorithm: hex}, "note", "external_id"}``, one picture's hashes.

    Returns (content, created) per item, in order; an item whose hashes are all already one
    content of the bank (or of an earlier item) gets that content. Raises BankError with
    fields "<item>.<algorithm>" naming each bad hash.
    """
    parsed_items, errors = [], {}
    for i, item in enumerate(items):
        parsed, bad = _parse_hash_map(item.get("hashes"))
        errors.update({f"{i}.{key}": messages for key, messages in bad.items()})
        parsed_items.append(parsed)
    if errors:
        raise BankError("Nothing was added: some hashes are not valid.", fields=errors)
    if not parsed_items:
        raise BankError("Give at least one content.")
    with transaction.atomic():
        Bank.objects.select_for_update().filter(pk=bank.pk).first()  # as an import does
        values = {v for parsed in parsed_items for v in parsed.values()}
        algorithms = {a for parsed in parsed_items for a in parsed}
        candidates = set(  # through the (bank, algorithm, value) index
            BankEntry.objects.filter(
                bank=bank, algorithm__in=algorithms, value__in=values
            ).values_list("content_id", flat=True)
        )
        known: dict[frozenset, int] = {}
        if candidates:
            held: dict[int, dict[str, str]] = {}
            rows = BankEntry.objects.filter(content_id__in=candidates).values_list(
                "content_id", "algorithm", "value"
            )
            for content_id, algorithm, value in rows:
                held.setdefault(content_id, {})[algorithm] = value
            known = {frozenset(h.items()): pk for pk, h in held.items()}
        fresh: dict[frozenset, int] = {}  # hashes -> position among the new contents
        new_items = []
        for parsed, item in zip(parsed_items, items):
            key = frozenset(parsed.items())
            if key not in known and key not in fresh:
                fresh[key] = len(new_items)
                new_items.append((parsed, item))
        # COPY, as an import (moderation_site.bulk): bulk_create's per-field preparation
        # was 70% of a 1,000-content request (0.29 s, 3,400 entries/s over HTTP).
        made = insert_rows(
            BankContent,
            BankContent(
                bank=bank, source=BankContent.Source.IMPORT, name=name[:255], created_by=actor
            ),
            [
                {
                    "note": str(item.get("note") or "")[:500],
                    "external_id": str(item.get("external_id") or "")[:255],
                }
                for _, item in new_items
            ],
        )
        by_pk = BankContent.objects.in_bulk(made)
        contents = [by_pk[pk] for pk in made]
        entries = insert_rows(
            BankEntry,
            BankEntry(bank=bank, created_by=actor),
            [
                {
                    "content_id": content.pk,
                    "algorithm": algorithm,
                    "value": text,
                    "note": content.note,
                }
                for content, (parsed, _) in zip(contents, new_items)
                for algorithm, text in parsed.items()
            ],
        )
        insert_rows(
            BankChange,
            BankChange(
                bank=bank, bank_name=bank.name, action=BankChange.Action.HASHES_ADDED, actor=actor
            ),
            [
                {
                    "content_id": content.pk,
                    "detail": {
                        "entries": parsed,
                        "note": content.note,
                        "external_id": content.external_id,
                    },
                }
                for content, (parsed, _) in zip(contents, new_items)
            ],
        )
        if entries:
            _bump_added(entries)
        existing = BankContent.objects.in_bulk(set(known.values()))
    out, told = [], set()
    for parsed in parsed_items:
        key = frozenset(parsed.items())
        if key in known:
            out.append((existing[known[key]], False))
        else:
            out.append((contents[fresh[key]], key not in told))  # a repeat: not made again
            told.add(key)
    return out


# -- hash lists ---------------------------------------------------------------------


@dataclass(frozen=True)
class VoteGroup:
    """`count` new references holding the same algorithms, and the rule they vote by."""

    count: int
    rule: ContentRule

    def sentence(self) -> str:
        rule, k = self.rule, len(self.rule.algorithms)
        refs = f"{self.count:,} reference{'s' if self.count != 1 else ''}"
        hashes = "one hash" if k == 1 else f"{k} hashes"
        head = f"{refs} with {hashes} each ({', '.join(rule.algorithms)})"
        if not rule.strict:
            return f"{head}; vote weight {rule.needed} of {rule.weight} needed"
        if not rule.limits:
            return (
                f"{head}: short of the vote weight {rule.full} a quorum needs, and these never "
                "block alone (a lone aHash matches plain gradients), so they can block nothing "
                "until a content column groups each picture's hashes"
            )
        within = ", ".join(f"{name} within {limit}" for name, limit in rule.limits.items())
        if k == 1:
            (limit,) = rule.limits.values()
            return (
                f"{head}; each blocks alone only within distance {limit}, never on a "
                "low-detail upload"
            )
        ignored = [name for name in rule.algorithms if name not in rule.limits]
        text = (
            f"{head}: short of the vote weight {rule.full} a quorum needs, so vote weight "
            f"{rule.needed} of {rule.weight} needed ({within}), never on a low-detail upload"
        )
        return text + (f"; {', '.join(ignored)} not counted" if ignored else "")


@dataclass(frozen=True)
class ImportReport:
    """What an import added, how its new references will vote, and what the label checks
    (hashing.labels) found: the admin's message and the audit's detail."""

    file: str
    rows: int
    added_entries: int
    added_contents: int
    skipped: int
    groups: tuple[VoteGroup, ...] = ()
    warnings: tuple[str, ...] = ()  # labels the hashes seem to contradict
    checks: tuple[str, ...] = ()  # what the sample pictures showed

    def summary(self) -> str:
        """One paragraph: "Imported 120 hashes as 120 references with one hash each ..."."""
        entries = f"{self.added_entries:,} hash{'es' if self.added_entries != 1 else ''}"
        if not self.groups:
            text = f"Imported no new hashes ({self.rows:,} rows)."
        elif len(self.groups) == 1:
            text = f"Imported {entries} as {self.groups[0].sentence()}."
        else:
            listed = "; ".join(g.sentence() for g in self.groups)
            text = f"Imported {entries} as {self.added_contents:,} references: {listed}."
        if self.skipped:
            text += f" {self.skipped:,} already there."
        return " ".join([text, *self.warnings, *self.checks])

    def detail(self) -> dict:
        return {
            "file": self.file,
            "rows": self.rows,
            "added_entries": self.added_entries,
            "added_contents": self.added_contents,
            "skipped": self.skipped,
            "votes": [g.sentence() for g in self.groups],
            "warnings": list(self.warnings),
            "checks": list(self.checks),
        }


def _vote_groups(groups: Sequence[Sequence[HashRow]], rules) -> tuple[VoteGroup, ...]:
    """New references by the algorithms they hold (registry order), largest group first."""
    order = {name: i for i, name in enumerate(ALGORITHMS)}
    counts: dict[tuple[str, ...], int] = {}
    for group in groups:
        key = tuple(sorted({r.algorithm for r in group}, key=lambda n: order.get(n, 99)))
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(VoteGroup(count, content_rule(key, rules)) for key, count in ranked)


def check_labels(rows: Sequence[HashRow], samples: Sequence[tuple[str, bytes]] = ()):
    """(warnings, checks) about whether the rows' labels fit their hashes (hashing.labels).

    Raises BankError when sample pictures show a label wrong: a list that would import
    "successfully" and never match is refused, naming the label that fits.
    """
    if len(samples) > MAX_SAMPLES:
        raise BankError(f"At most {MAX_SAMPLES} sample pictures, not {len(samples)}.")
    by_label: dict[str, list[int]] = {}
    for row in rows:
        by_label.setdefault(row.algorithm, []).append(int(row.value, 16))
    fps = [fingerprint_reference(data, name)[0] for name, data in samples]
    verdicts = labels.sample_verdicts(by_label, fps)
    wrong = [v.sentence() for v in verdicts if v.mislabelled]
    if wrong:
        raise BankError("Nothing was imported. " + " ".join(wrong))
    return labels.balance_warnings(by_label), [v.sentence() for v in verdicts]


def import_hash_list(
    bank: Bank,
    lines: Iterable[str],
    *,
    actor=None,
    source_name: str = "",
    samples: Sequence[tuple[str, bytes]] = (),
    rules=None,
    progress: Progress | None = None,
    batch_size: int = 2000,
) -> ImportReport:
    """Parse, check and add a CSV hash list in one transaction: every row or none.

    A row whose hash is already in the bank is skipped (so a list can be re-imported);
    a content group is skipped only when all its hashes are. `samples`: (name, bytes) of
    pictures known to be in the list, to check its labels (``check_labels``); hashed and
    dropped. `rules`: the policy's voting rules (the matcher's contract) the report
    describes; by default those of an unedited policy, since the policy lives in review.
    """
    rows = parse_hash_list(lines)
    warnings_found, checks = check_labels(rows, samples)
    groups: dict[tuple, list[HashRow]] = {}
    for row in rows:
        key = ("content", row.content_key) if row.content_key else ("line", row.line)
        groups.setdefault(key, []).append(row)
    with transaction.atomic():
        Bank.objects.select_for_update().filter(pk=bank.pk).first()  # one import at a time
        known = set(BankEntry.objects.filter(bank=bank).values_list("algorithm", "value"))
        fresh = []
        skipped = 0
        for group in groups.values():
            hashes = [(r.algorithm, r.value) for r in group]
            if all(h in known for h in hashes):
                skipped += len(group)
                continue
            known.update(hashes)
            fresh.append(group)
        entries_added = 0
        made_ids: list[int] = []
        total = sum(len(g) for g in fresh)
        content_proto = BankContent(
            bank=bank, source=BankContent.Source.IMPORT, name=source_name[:255], created_by=actor
        )
        entry_proto = BankEntry(bank=bank, created_by=actor)
        for start in range(0, len(fresh), batch_size):
            batch = fresh[start : start + batch_size]
            contents = insert_rows(
                BankContent,
                content_proto,
                [
                    {
                        "note": group[0].note,
                        "external_id": next((r.external_id for r in group if r.external_id), ""),
                    }
                    for group in batch
                ],
            )
            created = insert_rows(
                BankEntry,
                entry_proto,
                [
                    {
                        "content_id": content,
                        "algorithm": row.algorithm,
                        "value": row.value,
                        "note": row.note,
                    }
                    for content, group in zip(contents, batch, strict=True)
                    for row in group
                ],
            )
            entries_added += len(created)
            made_ids.extend(created)
            if progress:
                progress(entries_added, total)
        report = ImportReport(
            file=source_name,
            rows=len(rows),
            added_entries=entries_added,
            added_contents=len(fresh),
            skipped=skipped,
            groups=_vote_groups(fresh, rules or default_rules()),
            warnings=tuple(warnings_found),
            checks=tuple(checks),
        )
        _audit(bank, BankChange.Action.HASHES_IMPORTED, actor, report.detail())
        if fresh:
            _bump_added(made_ids)
    return report


def export_hash_list(bank: Bank, out, *, actor=None, include_disabled: bool = False) -> int:
    """Write the bank as CSV (the import format); audited as who took a copy of it.

    The ``content`` column groups a reference picture's hashes, so that a round trip
    keeps its quorum, and ``external_id`` keeps the content's id elsewhere; importers
    that read three columns can ignore both. The rotated
    versions banked with each picture (hashing.references) are left out: the list holds
    what was put in, at a fifth of the size.
    """
    counted: list[int] = []
    for chunk in iter_hash_list(
        bank, actor=actor, include_disabled=include_disabled, count=counted
    ):
        out.write(chunk)
    return counted[0]


def iter_hash_list(
    bank: Bank, *, actor=None, include_disabled: bool = False, count: list | None = None
):
    """``export_hash_list`` as text chunks (a few thousand rows each), for a streamed
    answer. The audit row is written when the iteration ends, also when it is stopped
    early (a client gone): then with ``"complete": false``. `count`: a list the number of
    entries written is appended to."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    entries = BankEntry.objects.filter(bank=bank, content__variant_of=None)
    if not include_disabled:
        entries = entries.filter(enabled=True)
    order = {name: i for i, name in enumerate(ALGORITHMS)}
    written, complete = 0, False
    rows = entries.order_by("content_id", "pk").values_list(
        "algorithm", "value", "note", "content_id", "content__external_id"
    )
    try:
        batch: list[tuple] = []
        for row in rows.iterator(chunk_size=5000):
            if batch and batch[-1][3] != row[3]:
                written += _write_content(writer, batch, order)
                batch = []
                if buffer.tell() > 256 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            batch.append(row)
        written += _write_content(writer, batch, order)
        yield buffer.getvalue()
        complete = True
    finally:
        detail = {"entries": written, "include_disabled": include_disabled}
        if not complete:
            detail["complete"] = False
        _audit(bank, BankChange.Action.EXPORTED, actor, detail)
        if count is not None:
            count.append(written)


def _write_content(writer, rows: list[tuple], order: dict) -> int:
    for algorithm, value, note, content_id, external_id in sorted(
        rows, key=lambda r: order.get(r[0], 99)
    ):
        writer.writerow([algorithm, value, note, f"c{content_id}", external_id])
    return len(rows)


# -- enabling and disabling ---------------------------------------------------------------


def set_entries_enabled(entries, enabled: bool, *, actor=None, reason: str = "") -> int:
    """Enable or disable entries (never delete them); one audit row per entry changed.

    ``entries``: a BankEntry queryset or an iterable of entries.
    """
    if not isinstance(entries, QuerySet):
        entries = BankEntry.objects.filter(pk__in=[e.pk for e in entries])
    with transaction.atomic():
        rows = list(
            entries.exclude(enabled=enabled)
            .select_for_update(of=("self",))
            .values_list("pk", "bank_id", "bank__name", "content_id")
        )
        if not rows:
            return 0
        BankEntry.objects.filter(pk__in=[r[0] for r in rows]).update(enabled=enabled)
        action = BankChange.Action.ENTRY_ENABLED if enabled else BankChange.Action.ENTRY_DISABLED
        BankChange.objects.bulk_create(
            BankChange(
                bank_id=bank_id,
                bank_name=bank_name,
                entry_id=pk,
                content_id=content_id,
                action=action,
                actor=actor,
                detail={"reason": reason} if reason else {},
            )
            for pk, bank_id, bank_name, content_id in rows
        )
        BankVersion.bump(changed=[r[0] for r in rows])
    return len(rows)


def set_contents_enabled(contents, enabled: bool, *, actor=None, reason: str = "") -> int:
    """All hashes of the given contents (e.g. a reference picture, with its rotated
    versions) on or off."""
    ids = [c.pk for c in contents]
    # Ids first: an OR across the join to the contents made PostgreSQL scan every entry
    # (0.8 s at 2M entries), where each side alone is an index lookup.
    ids += BankContent.objects.filter(variant_of__in=ids).values_list("pk", flat=True)
    entries = BankEntry.objects.filter(content_id__in=ids)
    return set_entries_enabled(entries, enabled, actor=actor, reason=reason)


def _bump_added(ids: list) -> None:
    """BankVersion.bump naming the entries made, so matchers add just those; a rebuild
    when the database did not return their ids."""
    if ids and None not in ids:
        BankVersion.bump(added=ids)
    else:
        BankVersion.bump()


def _audit(bank: Bank, action: str, actor, detail: dict, *, content=None, entry=None):
    return BankChange.objects.create(
        bank=bank,
        bank_name=bank.name,
        action=action,
        actor=actor,
        detail=detail,
        content=content,
        entry=entry,
    )
