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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from PIL import Image

from moderation_site.errors import Invalid
from uploads.kinds import open_for_hashing

from .algorithms import ALGORITHMS, UnknownAlgorithm, algorithm_named, fingerprint, informative
from .models import Bank, BankChange, BankContent, BankEntry, BankVersion

CSV_HEADER = ["hash_type", "hash_value", "note", "content"]
_HEADER_NAMES = {"hash_type", "type", "signal_type", "algorithm"}
_HEX = re.compile(r"[0-9a-f]+")
MAX_REPORTED_ERRORS = 10

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


def normalise_hash(hash_type: str, value: str) -> tuple[str, str]:
    """(algorithm, lowercase hex) or ValueError saying what is wrong.

    Names other lists use are accepted (``algorithm.aliases``). "phash" is deliberately an
    alias of nothing: imagehash's phash is our median-DCT "mhash", ours the old row DCT.
    """
    try:
        algorithm = algorithm_named(hash_type)
    except UnknownAlgorithm:
        known = ", ".join(ALGORITHMS)
        raise ValueError(f"unknown hash type “{hash_type.strip()[:40]}” (use {known})") from None
    text = value.strip().lower().removeprefix("0x")
    chars = algorithm.bits // 4
    if len(text) != chars or not _HEX.fullmatch(text):
        raise ValueError(
            f"a {algorithm.name} hash is {chars} hex characters, not “{value.strip()[:80]}”"
        )
    return algorithm.name, text


def parse_hash_list(lines: Iterable[str]) -> list[HashRow]:
    """Rows of a CSV hash list: ``hash_type,hash_value[,note[,content]]``.

    The header and blank or ``#`` lines are skipped. Rows sharing a ``content`` key are
    the hashes of one picture (what export writes for reference images); rows without
    one are each their own content. Raises BankError naming every bad line (up to 10).
    """
    reader = csv.reader(lines)
    rows: list[HashRow] = []
    errors: list[str] = []
    seen_in_content: dict[tuple[str, str], int] = {}
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
        if len(cells) < 2 or len(cells) > 4:
            errors.append(f"line {line}: expected hash_type,hash_value[,note[,content]]")
            continue
        try:
            algorithm, value = normalise_hash(cells[0], cells[1])
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        note = cells[2] if len(cells) > 2 else ""
        key = cells[3] if len(cells) > 3 else ""
        if key:
            earlier = seen_in_content.setdefault((key, algorithm), line)
            if earlier != line:
                errors.append(
                    f"line {line}: content “{key}” already has a {algorithm} hash (line {earlier})"
                )
                continue
        rows.append(HashRow(line, algorithm, value, note[:500], key[:100]))
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
        BankVersion.bump()
    return bank


def create_bank(name: str, *, kind=Bank.Kind.BLOCK, actor=None, description="", active=True):
    return save_bank(
        Bank(name=name, kind=kind, description=description, active=active), actor=actor
    )


# -- entries from pictures ------------------------------------------------------------


def fingerprint_reference(data: bytes, name: str = "") -> tuple[dict, str]:
    """Hashes of a reference picture, exactly as an upload of it would be hashed."""
    label = f"“{name}”" if name else "The file"
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise BankError(f"{label} is larger than the upload limit.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
            if width * height > settings.UPLOAD_MAX_PIXELS:
                raise BankError(f"{label} has more pixels than the upload limit.")
            image = open_for_hashing(data)
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
    return fp, hashlib.sha256(data).hexdigest()


def _entries_for(fp: dict) -> dict[str, str]:
    """Hex per algorithm; none from a hash too featureless to vote (PDQ on a flat picture)."""
    return {
        name: algorithm.to_hex(fp[name])
        for name, algorithm in ALGORITHMS.items()
        if informative(fp, name)
    }


def _add_content(bank, fp, sha256, *, source, actor, name="", note="", item=None):
    content = BankContent.objects.create(
        bank=bank,
        source=source,
        source_item=item,
        name=name[:255],
        sha256=sha256,
        note=note[:500],
        created_by=actor,
    )
    entries = BankEntry.objects.bulk_create(
        BankEntry(
            bank=bank,
            content=content,
            algorithm=algorithm,
            value=value,
            note=(note or name)[:500],
            created_by=actor,
        )
        for algorithm, value in _entries_for(fp).items()
    )
    return content, entries


def add_images(
    bank: Bank, files: Sequence[tuple[str, bytes]], *, actor=None, note: str = ""
) -> dict:
    """Hash reference pictures into a bank, one content each; all or none.

    A picture already in the bank (same bytes) is skipped. Returns {"added": [contents],
    "skipped": [names]}.
    """
    hashed = [(name, *fingerprint_reference(data, name)) for name, data in files]
    added, skipped = [], []
    with transaction.atomic():
        known = set(
            BankContent.objects.filter(bank=bank, sha256__in=[h[2] for h in hashed]).values_list(
                "sha256", flat=True
            )
        )
        for name, fp, sha256 in hashed:
            if sha256 in known:
                skipped.append(name)
                continue
            known.add(sha256)
            content, entries = _add_content(
                bank,
                fp,
                sha256,
                source=BankContent.Source.IMAGE,
                actor=actor,
                name=name,
                note=note,
            )
            detail = {
                "name": name,
                "sha256": sha256,
                "entries": {e.algorithm: e.value for e in entries},
                "quality": fp.get("quality", {}),
            }
            _audit(bank, BankChange.Action.IMAGES_ADDED, actor, detail, content=content)
            added.append(content)
        if added:
            BankVersion.bump()
    return {"added": added, "skipped": skipped}


def add_item_to_bank(item, bank: Bank, *, actor=None, note: str = "") -> BankContent:
    """Put a reviewed item's picture in a bank ("add to bank" on a rejected item).

    Hashed from the stored original with the same functions as uploads. Adding the same
    picture twice returns the content already there.
    """
    with item.file.open("rb") as fh:
        data = fh.read()
    fp, sha256 = fingerprint_reference(data, item.original_name)
    with transaction.atomic():
        existing = BankContent.objects.filter(bank=bank, sha256=sha256).first()
        if existing is not None:
            return existing
        content, entries = _add_content(
            bank,
            fp,
            sha256,
            source=BankContent.Source.REVIEW_ITEM,
            actor=actor,
            name=item.original_name,
            note=note or f"item {item.uuid}",
            item=item,
        )
        detail = {"item": str(item.uuid), "entries": {e.algorithm: e.value for e in entries}}
        _audit(bank, BankChange.Action.ITEM_ADDED, actor, detail, content=content)
        BankVersion.bump()
    return content


# -- hash lists ---------------------------------------------------------------------


def import_hash_list(
    bank: Bank,
    lines: Iterable[str],
    *,
    actor=None,
    source_name: str = "",
    progress: Progress | None = None,
    batch_size: int = 2000,
) -> dict:
    """Parse and add a CSV hash list in one transaction: every row or none.

    A row whose hash is already in the bank is skipped (so a list can be re-imported);
    a content group is skipped only when all its hashes are. Returns counts.
    """
    rows = parse_hash_list(lines)
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
        total = sum(len(g) for g in fresh)
        for start in range(0, len(fresh), batch_size):
            batch = fresh[start : start + batch_size]
            contents = BankContent.objects.bulk_create(
                BankContent(
                    bank=bank,
                    source=BankContent.Source.IMPORT,
                    name=source_name[:255],
                    note=group[0].note,
                    created_by=actor,
                )
                for group in batch
            )
            created = BankEntry.objects.bulk_create(
                BankEntry(
                    bank=bank,
                    content=content,
                    algorithm=row.algorithm,
                    value=row.value,
                    note=row.note,
                    created_by=actor,
                )
                for content, group in zip(contents, batch)
                for row in group
            )
            entries_added += len(created)
            if progress:
                progress(entries_added, total)
        result = {
            "file": source_name,
            "rows": len(rows),
            "added_entries": entries_added,
            "added_contents": len(fresh),
            "skipped": skipped,
        }
        _audit(bank, BankChange.Action.HASHES_IMPORTED, actor, result)
        if fresh:
            BankVersion.bump()
    return result


def export_hash_list(bank: Bank, out, *, actor=None, include_disabled: bool = False) -> int:
    """Write the bank as CSV (the import format); audited as who took a copy of it.

    The ``content`` column groups a reference picture's hashes, so that a round trip
    keeps its quorum; importers that read three columns can ignore it.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    entries = BankEntry.objects.filter(bank=bank)
    if not include_disabled:
        entries = entries.filter(enabled=True)
    order = {name: i for i, name in enumerate(ALGORITHMS)}
    count = 0
    rows = entries.order_by("content_id", "pk").values_list(
        "algorithm", "value", "note", "content_id"
    )
    batch: list[tuple] = []
    for row in rows.iterator(chunk_size=5000):
        if batch and batch[-1][3] != row[3]:
            count += _write_content(writer, batch, order)
            batch = []
        batch.append(row)
    count += _write_content(writer, batch, order)
    detail = {"entries": count, "include_disabled": include_disabled}
    _audit(bank, BankChange.Action.EXPORTED, actor, detail)
    return count


def _write_content(writer, rows: list[tuple], order: dict) -> int:
    for algorithm, value, note, content_id in sorted(rows, key=lambda r: order.get(r[0], 99)):
        writer.writerow([algorithm, value, note, f"c{content_id}"])
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
        BankVersion.bump()
    return len(rows)


def set_contents_enabled(contents, enabled: bool, *, actor=None, reason: str = "") -> int:
    """All hashes of the given contents (e.g. a reference picture) on or off."""
    entries = BankEntry.objects.filter(content__in=contents)
    return set_entries_enabled(entries, enabled, actor=actor, reason=reason)


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
