import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, models, transaction


class Fingerprint(models.Model):
    """One hash of an item: one row per algorithm.

    Rows rather than a column per algorithm, so that a new algorithm needs no migration.
    ``value`` is lowercase hex, most significant first, as bank entries store it.
    ``mirrored`` marks a variant stored explicitly; the pipeline stores plain hashes only,
    since lookups mirror the query instead (review.pipeline.store_fingerprint says why).
    """

    # No index of its own: the unique constraint below starts with the item.
    item = models.ForeignKey(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="fingerprints", db_index=False
    )
    algorithm = models.CharField(max_length=16)
    value = models.CharField(max_length=64)
    mirrored = models.BooleanField(default=False)
    quality = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "algorithm", "mirrored"], name="one_hash_per_item_algorithm"
            )
        ]
        indexes = [
            # The duplicate index loads one algorithm's plain hashes, newest since a moment.
            models.Index(fields=["algorithm", "mirrored", "created_at"], name="fp_algo_recent"),
            models.Index(fields=["algorithm", "value"], name="fp_algo_value"),
        ]

    def __str__(self):
        mirror = " (mirrored)" if self.mirrored else ""
        return f"{self.algorithm}:{self.value}{mirror}"


class Bank(models.Model):
    """A named list of known content. Block banks flag matches; allow banks override them.

    Change banks and entries through hashing.services only: every change is audited there
    and bumps BankVersion, which is what tells each process to rebuild its matcher.
    """

    class Kind(models.TextChoices):
        BLOCK = "block", "Block"
        ALLOW = "allow", "Allow"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.BLOCK)
    active = models.BooleanField(
        default=True, help_text="Inactive banks keep their entries but take no part in votes."
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class BankContent(models.Model):
    """One piece of known content: a reference image (one entry per algorithm) or one
    imported hash. Votes are counted per content, so voters must agree on the same picture.

    Reference images are hashed and then dropped: the bank never keeps banned pictures.
    """

    class Source(models.TextChoices):
        IMAGE = "image", "Reference image"
        IMPORT = "import", "Imported hash list"
        REVIEW_ITEM = "review_item", "Reviewed item"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="contents")
    source = models.CharField(max_length=12, choices=Source.choices)
    source_item = models.ForeignKey(
        "uploads.MediaItem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bank_contents",
    )
    variant_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="variants",
        help_text="The reference this is a rotated version of (hashing.references).",
    )
    name = models.CharField(max_length=255, blank=True, help_text="File name of the reference.")
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    note = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="The id the content has elsewhere (an API client's own, a shared list's).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["bank", "external_id"],
                name="bankcontent_external_id",
                condition=~models.Q(external_id=""),
            )
        ]

    def __str__(self):
        return f"content {self.pk} of {self.bank.name}: {self.name or self.get_source_display()}"

    @classmethod
    def labels_of(cls, pks: Iterable[int]) -> dict[int, tuple[int | None, str, str]]:
        """{pk: (variant_of_id, external_id, note)} of these contents: what a lookup's
        matches show of each (api.hashes.look_up), in one plain query. Built by the ORM,
        the same query took ~0.25 ms more of a 3 ms lookup over HTTP (compiling it cost
        more than running it)."""
        pks = list(dict.fromkeys(int(pk) for pk in pks))
        if not pks:
            return {}
        table = connection.ops.quote_name(cls._meta.db_table)
        marks = ", ".join(["%s"] * len(pks))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, variant_of_id, external_id, note FROM {table} WHERE id IN ({marks})",
                pks,
            )
            return {row[0]: row[1:] for row in cursor}


class BankEntry(models.Model):
    """One hash of known content (a "signal"). Disabled entries stay for the record."""

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="entries")
    content = models.ForeignKey(BankContent, on_delete=models.CASCADE, related_name="entries")
    # A name in hashing.algorithms' registry (checked by hashing.services on every write).
    algorithm = models.CharField(max_length=16)
    value = models.CharField(
        max_length=64, help_text="Lowercase hex, most significant first: 16 chars, PDQ 64."
    )
    # A reference video has a hash per frame for the same algorithm (hashing.video): the
    # frame's place among them. 0 for everything else, so a picture has one per algorithm.
    frame = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "bank entries"
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["algorithm", "enabled"], name="bankentry_algorithm_enabled"),
            models.Index(fields=["bank", "algorithm", "value"], name="bankentry_bank_hash"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["content", "algorithm", "frame"], name="one_hash_per_algorithm_frame"
            )
        ]

    def __str__(self):
        return f"{self.algorithm}:{self.value}"


class BankChange(models.Model):
    """Audit of every bank change: who, when, what. Never edited or deleted."""

    class Action(models.TextChoices):
        BANK_CREATED = "bank_created", "Bank created"
        BANK_CHANGED = "bank_changed", "Bank changed"
        IMAGES_ADDED = "images_added", "Reference images added"
        HASHES_IMPORTED = "hashes_imported", "Hash list imported"
        HASHES_ADDED = "hashes_added", "Hashes added"
        ITEM_ADDED = "item_added", "Item added"
        ENTRY_DISABLED = "entry_disabled", "Entry disabled"
        ENTRY_ENABLED = "entry_enabled", "Entry enabled"
        EXPORTED = "exported", "Exported"

    bank = models.ForeignKey(
        Bank, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    bank_name = models.CharField(max_length=100, help_text="Kept if the bank is ever deleted.")
    entry = models.ForeignKey(
        BankEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    content = models.ForeignKey(
        BankContent, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_action_display()} ({self.bank_name})"


class BankVersion(models.Model):
    """One row whose token changes with every bank change, in the same transaction.

    Each process compares it with the token its matcher was built from (one primary-key
    read per vote). A random token rather than only a counter, so that a restored or
    rolled-back database never looks "unchanged" to a process that saw another state.

    ``bump`` also writes the change's BankJournal row: the counter is raised under the
    row's lock, which the transaction holds until it commits, so counters follow commit
    order and a process that sees counter N can read every journal row up to N.
    """

    token = models.UUIDField(default=uuid.uuid4)
    counter = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    @classmethod
    def current(cls) -> uuid.UUID | None:
        """The token, or None before the first bank change."""
        return cls.read()[0]

    # The token is read before every vote: ~0.4 ms of a one-hash API lookup's ~1.5 ms in
    # the process (bench/api_lookup.py). Outside a transaction a read at most this old is
    # used again: a bank change committed by another process is seen within it (the aim is
    # 1 s), one made in this process at once (bump forgets it, and again at its commit).
    # Inside a transaction every read goes to the database: the transaction may be about
    # to change banks, or have changed them without committing yet.
    READ_TTL_S = 0.05
    _last_read: tuple[float, tuple[uuid.UUID | None, int]] | None = None

    @classmethod
    def read(cls, fresh: bool = False) -> tuple[uuid.UUID | None, int]:
        """(token, counter); (None, 0) before the first bank change. Raw SQL: this runs
        before every vote, and the ORM's query building costs ~25 times the query itself.
        `fresh`: from the database, whatever was read lately (a rebuild)."""
        reusable = not connection.in_atomic_block
        if reusable and not fresh:
            last = cls._last_read
            if last is not None and time.monotonic() - last[0] < cls.READ_TTL_S:
                return last[1]
        read_at = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT token, counter FROM {cls._meta.db_table} WHERE id = 1")
            row = cursor.fetchone()
        if row is None:
            found = (None, 0)
        else:
            found = (row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(row[0]), int(row[1]))
        if reusable:
            cls._last_read = (read_at, found)
        return found

    @classmethod
    def forget_read(cls) -> None:
        cls._last_read = None

    @classmethod
    def bump(
        cls,
        *,
        added: Iterable[int] = (),
        changed: Iterable[int] = (),
        rebuild: bool | None = None,
    ) -> None:
        """Call inside the transaction that changes banks: the new token commits with it.

        ``added``: ids of the entries the change made; ``changed``: ids of entries whose
        ``enabled`` it changed. With neither (a bank's kind or activity, a deletion) the
        journal says "rebuild", and every matcher reloads all entries, unless ``rebuild``
        is False (a change no match depends on); with them, matchers apply just those
        entries (hashing.matcher), so a change is live in milliseconds.
        """
        cls.forget_read()
        transaction.on_commit(cls.forget_read)
        row = cls.objects.select_for_update().only("token", "counter").filter(pk=1).first()
        if row is None:  # the first change ever
            cls.objects.get_or_create(pk=1)
            row = cls.objects.select_for_update().only("token", "counter").get(pk=1)
        previous, token = row.token, uuid.uuid4()
        cls.objects.filter(pk=1).update(token=token, counter=models.F("counter") + 1)
        added, changed = _runs(added), _runs(changed)
        if rebuild is None:
            rebuild = not (added or changed)
        BankJournal.objects.create(
            counter=row.counter + 1,
            token=token,
            previous=previous,
            added=added,
            changed=changed,
            rebuild=rebuild,
        )
        if (row.counter + 1) % BankJournal.PRUNE_EVERY == 0:
            BankJournal.objects.filter(counter__lte=row.counter + 1 - BankJournal.KEEP).delete()


def _runs(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids (a bulk insert is one run)."""
    runs: list[list[int]] = []
    for pk in sorted(set(ids)):
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


class BankJournal(models.Model):
    """What one bank change did to the entries, for matchers to catch up without a
    rebuild: the entries it added and those it enabled or disabled, each as [first, last]
    runs of ids (a bulk insert or a content's hashes are one run).

    Rows are chained by token (``previous`` is the token before the change), so a process
    whose matcher was built at token T applies the rows after T only when the chain from T
    is unbroken; a gap, a restored database or a ``rebuild`` row means a full reload.
    """

    KEEP = 10_000  # rows kept (pruned every PRUNE_EVERY changes)
    PRUNE_EVERY = 1_000

    counter = models.PositiveBigIntegerField(primary_key=True)
    token = models.UUIDField()
    previous = models.UUIDField(null=True)
    added = models.JSONField(default=list, blank=True)
    changed = models.JSONField(default=list, blank=True)
    rebuild = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["counter"]

    def __str__(self):
        return f"bank change {self.counter}"


class VideoFrames(models.Model):
    """A video item's sampled frames' PDQ (32 bytes each, in time order, informative frames
    only): what later uploads are compared with for copies of past videos (hashing.video).
    One row per video; its Fingerprint rows cannot hold a variable number of hashes."""

    item = models.OneToOneField(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="video_frames"
    )
    hashes = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{len(self.hashes) // 32} frame hashes of item {self.item_id}"
