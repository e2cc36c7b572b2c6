import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from hashing.algorithms import ALGORITHMS
from hashing.matcher import DEFAULT_QUORUM, VoterSetting, VotingRules
from hashing.textnorm import squeeze
from uploads.video import VideoLimits

from .categories import (
    DEFAULT_CATEGORIES,
    TEXT_CATEGORIES,
    CategoryRule,
    LabelMap,
    sort_rules,
)
from .classifiers.registry import PROVIDERS, provider_class

RULE_FIELDS = ("name", "label", "media_kind", "review_at", "flag_at", "rank")
SCORE = [MinValueValidator(0.0), MaxValueValidator(1.0)]


def validate_providers(value: str):
    unknown = [p for p in _split(value) if p not in PROVIDERS]
    if unknown:
        raise ValidationError(
            f"Unknown provider(s): {', '.join(unknown)}. Known: {', '.join(PROVIDERS)}."
        )


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


SITE_POLICY = 1  # the primary key of the site's policy


class Policy(models.Model):
    """The admin-edited thresholds and counts that turn matches and scores into outcomes.

    The site's is the row pk=1 (``current()``); an intake above review may judge its items
    by another row (an API client's policy: ``review.policy.policy_for``). Each has its
    hash voters, categories and classifier labels as rows of their own (so a new
    algorithm or category needs no migration). Every change made through admin is
    recorded in PolicyChange.
    """

    providers = models.CharField(
        max_length=200,
        default="nudenet,textmodel",
        validators=[validate_providers],
        help_text="Comma-separated classifier providers to run (nudenet, rekognition, "
        "textmodel); each runs on the media kinds it takes.",
    )
    quorum = models.PositiveSmallIntegerField(
        default=DEFAULT_QUORUM,
        help_text=(
            "Vote weight needed to block (capped at what the voters able to vote can give); "
            "0 means a majority of it. 4 with the default weights: any two of aHash, dHash, "
            "pHash and PDQ (weight 2 each) agreeing on one picture."
        ),
    )
    mirror_aware = models.BooleanField(default=True, help_text="Also match mirrored copies.")
    confirm_model_flags = models.BooleanField(
        "Confirm model-only blocks",
        default=True,
        help_text=(
            "A block that rests only on a classifier's score (no bank match, no copy of a "
            "rejected item) stays hidden and also goes to the queue, after the review items, "
            "for a moderator to confirm; approving it restores the item and tells the "
            "uploader. The confirmation rate per category (on the categories below) is the "
            "first figure for tuning their flag-at scores."
        ),
    )

    # Video (uploads.video): caps checked from the container header at intake, and the rate
    # at which frames are classified and hashed (a bank reference is hashed at every frame).
    video_max_mb = models.PositiveIntegerField(
        "Video size cap (MB)",
        default=200,
        validators=[MinValueValidator(1)],
        help_text="Larger videos are refused at intake (at most the server's VIDEO_MAX_BYTES).",
    )
    video_max_seconds = models.PositiveIntegerField(
        "Video length cap (seconds)",
        default=600,
        validators=[MinValueValidator(1)],
        help_text="Longer videos are refused at intake, from the container header.",
    )
    video_sample_fps = models.FloatField(
        "Video frames sampled per second",
        default=1.0,
        validators=[MinValueValidator(0.05)],
        help_text=(
            "Frames classified (and hashed for matching) per second of video; 1 catches a "
            "picture shown for a second. At most 600 frames are sampled per video."
        ),
    )

    # Strikes and review.
    strikes_to_ban = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Strikes before a ban; earlier strikes are warnings.",
    )
    claim_batch_default = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1)]
    )
    claim_batch_max = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(1)]
    )
    lease_minutes = models.PositiveSmallIntegerField(default=10, validators=[MinValueValidator(1)])
    reject_reasons = models.TextField(
        default="Explicit nudity\nSuggestive content\nKnown banned image\nHarassment\nSpam",
        help_text="One reason per line; moderators pick one or write their own.",
    )
    # Intake through the public API (api.analyses): a client's own policy sets its own.
    batch_max_items = models.PositiveSmallIntegerField(
        "API batch size cap",
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Items a client may send in one analyses batch; a larger batch is a 400.",
    )

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policy"
        permissions = [
            ("moderate", "Can claim and decide items under review"),
            ("override", "Can reverse an earlier decision"),
        ]

    def __str__(self):
        return "Moderation policy" if self.pk == SITE_POLICY else f"Policy {self.pk}"

    @classmethod
    def current(cls) -> "Policy":
        policy, created = cls.objects.get_or_create(pk=SITE_POLICY)
        if created:
            policy.seed_defaults()
        return policy

    def seed_defaults(self) -> None:
        """Make the rows that are missing, never touching those that exist: a voter per
        registered algorithm, the default categories, and each provider's default labels
        when it has none. Runs at every migrate (review.apps) and with a new policy."""
        have = set(self.voters.values_list("algorithm", flat=True))
        Voter.objects.bulk_create(
            Voter(
                policy=self,
                algorithm=name,
                threshold=algorithm.default_threshold,
                weight=algorithm.default_weight,
            )
            for name, algorithm in ALGORITHMS.items()
            if name not in have
        )
        categories = {c.name: c for c in self.categories.all()}
        for rule in (*DEFAULT_CATEGORIES, *TEXT_CATEGORIES):
            if rule.name not in categories:
                categories[rule.name] = Category.objects.create(
                    policy=self,
                    name=rule.name,
                    label=rule.label,
                    media_kind=rule.media_kind,
                    review_at=rule.review_at,
                    flag_at=rule.flag_at,
                    rank=rule.rank,
                    at_least=categories.get(rule.at_least),
                )
        labelled = set(self.labels.values_list("provider", flat=True))
        for provider in PROVIDERS:
            if provider in labelled:
                continue
            ClassifierLabel.objects.bulk_create(
                ClassifierLabel(
                    policy=self,
                    provider=provider,
                    label=label,
                    category=categories[name],
                    weight=weight,
                )
                for label, (name, weight) in provider_class(provider).default_labels.items()
                if name in categories
            )

    def video_limits(self) -> VideoLimits:
        return VideoLimits(
            self.video_max_mb * 1024 * 1024, self.video_max_seconds, self.video_sample_fps
        )

    @property
    def provider_names(self) -> list[str]:
        return _split(self.providers)

    def clean(self):
        """A provider runs only when every category it scores has a row: else its finding
        would be recorded but could never send anything to review."""
        if self.pk is None:
            return
        have = set(self.categories.values_list("name", flat=True))
        for name in self.provider_names:
            if name not in PROVIDERS:
                continue  # validate_providers names it
            missing = [c for c in provider_class(name).categories if c not in have]
            if missing:
                raise ValidationError(
                    {
                        "providers": f"{name} scores {', '.join(missing)}, which has no category "
                        "row yet: add the category (and save) first."
                    }
                )

    @property
    def reject_reason_list(self) -> list[str]:
        return [line.strip() for line in self.reject_reasons.splitlines() if line.strip()]

    # The three readers below run once per analysis: plain tuples, not model instances
    # (measured: instances of the ~45 label rows alone cost about 1 ms per item).

    def voter_settings(self) -> dict[str, VoterSetting]:
        """Enabled voters of registered algorithms, in registry order (hashing.matcher)."""
        rows = {
            algorithm: VoterSetting(threshold, weight)
            for algorithm, threshold, weight in self.voters.filter(enabled=True).values_list(
                "algorithm", "threshold", "weight"
            )
        }
        return {name: rows[name] for name in ALGORITHMS if name in rows}

    def voting_rules(self) -> VotingRules:
        return VotingRules(self.voter_settings(), self.quorum, self.mirror_aware)

    def category_rules(self, media_kind: str | None = None) -> list[CategoryRule]:
        """The categories (of one kind), most severe first: what decide() reads."""
        rows = self.categories.all()
        if media_kind is not None:
            rows = rows.filter(media_kind=media_kind)
        return sort_rules(
            CategoryRule(**dict(zip((*RULE_FIELDS, "at_least"), row)))
            for row in rows.values_list(*RULE_FIELDS, "at_least__name")
        )

    def label_map(self) -> LabelMap:
        """provider -> label (lower case) -> [(category, weight)], from the label rows."""
        table: dict = {}
        rows = self.labels.values_list("provider", "label", "category__name", "weight")
        for provider, label, category, weight in rows:
            table.setdefault(provider, {}).setdefault(label.lower(), []).append((category, weight))
        return table


class Voter(models.Model):
    """One hash algorithm's vote against the banks: on or off, its threshold, its weight.

    A row per algorithm of hashing.algorithms' registry; a missing row is made (enabled,
    with the algorithm's default threshold) at the next migrate.
    """

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="voters")
    algorithm = models.CharField(max_length=16)
    enabled = models.BooleanField(default=True)
    threshold = models.PositiveSmallIntegerField(help_text="Largest Hamming distance that votes.")
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="How many votes its vote counts."
    )

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "algorithm"], name="one_voter_per_algorithm")
        ]

    def __str__(self):
        return f"voter {self.algorithm}"

    def clean(self):
        algorithm = ALGORITHMS.get(self.algorithm)
        if algorithm is None:
            known = ", ".join(ALGORITHMS)
            raise ValidationError({"algorithm": f"Unknown algorithm. Known: {known}."})
        if self.threshold is not None and self.threshold > algorithm.max_threshold:
            raise ValidationError(
                {"threshold": f"At most {algorithm.max_threshold} for {algorithm.label}."}
            )


class Category(models.Model):
    """What classifiers score (explicit, suggestive; for text hate, spam, ...), with the
    scores at which an item goes to review or is flagged."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="categories")
    name = models.SlugField(max_length=32, help_text="Machine name, used in reasons.")
    label = models.CharField(max_length=64, help_text="As people read it: “Explicit”.")
    media_kind = models.CharField(max_length=16, default="image")
    review_at = models.FloatField(validators=SCORE, help_text="Score from which a person looks.")
    flag_at = models.FloatField(
        validators=SCORE, help_text="Score from which it is flagged; 1.0 means never."
    )
    rank = models.PositiveSmallIntegerField(
        default=0, help_text="Higher is more severe: checked first, and wins the overall class."
    )
    at_least = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Never scored below this category (explicit content is also suggestive).",
    )

    class Meta:
        ordering = ["-rank", "name"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="one_category_per_name")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if None not in (self.review_at, self.flag_at) and self.flag_at < self.review_at:
            raise ValidationError({"flag_at": "Flag at a score no lower than review at."})


class ClassifierLabel(models.Model):
    """One provider label counted towards a category: the category's score is the highest
    weighted score of its labels (NudeNet's detections, Rekognition's moderation labels).

    Arithmetic (review.categories.category_scores): a detection of the label at score s
    counts s × weight towards the category; the category's score is the highest of these
    over all its labels and providers, and never below its ``at_least`` category's score;
    the category's ``review_at`` and ``flag_at`` apply to that score. Defaults: each
    provider's ``default_labels`` (review/classifiers/), seeded at migrate.
    """

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="labels")
    provider = models.CharField(max_length=32)
    label = models.CharField(max_length=128, help_text="Matched without regard to case.")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="labels")
    weight = models.FloatField(
        default=1.0,
        validators=SCORE,
        help_text=(
            "0 to 1. A detection's score × this weight counts towards the category: 1 in "
            "full, 0.5 half (a detection at 90 % counts 45 %), 0 stops the label counting. "
            "The category's score is the highest of its weighted labels; its review-at and "
            "flag-at scores apply to that."
        ),
    )

    class Meta:
        ordering = ["provider", "category", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "provider", "label", "category"], name="one_weight_per_label"
            )
        ]

    def __str__(self):
        return f"{self.provider}: {self.label} → {self.category} × {self.weight:g}"

    def clean(self):
        if self.provider not in PROVIDERS:
            known = ", ".join(PROVIDERS)
            raise ValidationError({"provider": f"Unknown provider. Known: {known}."})


class PolicyChange(models.Model):
    """Who changed which policy field, when, old → new."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="changes")
    field = models.CharField(max_length=64)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at"]


class Analysis(models.Model):
    """One automated run over an item: the audit record of what the machine saw and decided."""

    request_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    item = models.ForeignKey("uploads.MediaItem", on_delete=models.CASCADE, related_name="analyses")
    source = models.CharField(max_length=10)
    author = models.ForeignKey(
        "accounts.Author", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hashes = models.JSONField(default=dict)
    matches = models.JSONField(default=dict)
    scores = models.JSONField(default=dict)
    raw = models.JSONField(default=dict, help_text="Raw provider output.")
    errors = models.JSONField(default=dict)
    outcome = models.CharField(max_length=10)
    reason = models.CharField(max_length=64)
    reason_text = models.CharField(max_length=500)
    timings = models.JSONField(default=dict, help_text="Milliseconds per stage.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analyses"


class QueueEntry(models.Model):
    """An item waiting for a person: pending until claimed, held until decided or released.

    Three purposes: review (the machine could not decide; the item is held), confirm (a
    classifier's score alone hid the item: a person confirms or restores it) and appeal (its
    author asks a person to look again at a removed item: an intake above review, the Slack
    bot, queues it). Confirmations come after review items and appeals: an uploader waits on
    a held item and an appellant on an answer, while a hidden one already errs on the side
    of caution. The row is deleted when the item is decided; the Decision is the lasting
    record.
    """

    class Purpose(models.TextChoices):
        REVIEW = "review", "Review"
        CONFIRM = "confirm", "Confirm a model's block"
        APPEAL = "appeal", "An author's appeal"

    class ReleaseCause(models.TextChoices):
        RELEASED = "released", "Released by its moderator"
        LOGOUT = "logout", "Its moderator logged out of the session that claimed it"
        EXPIRED = "expired", "The lease ran out"
        ADMIN = "admin", "Released by an admin"
        ACCOUNT = "account", "Its moderator was banned or deactivated"

    item = models.OneToOneField(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="queue_entry"
    )
    purpose = models.CharField(max_length=8, choices=Purpose.choices, default=Purpose.REVIEW)
    priority = models.PositiveSmallIntegerField(
        default=1, help_text="Worked first: review items and appeals 1, confirmations 0."
    )
    severity = models.FloatField(default=0.0, help_text="Higher is worked first.")
    item_created_at = models.DateTimeField(help_text="When the item was posted: older first.")
    group_key = models.UUIDField(
        null=True, blank=True, db_index=True, help_text="Near duplicates share one key."
    )
    # No index of its own on either user (review_queue_held_order starts with claimed_by,
    # and released_by is looked up only when a user is deleted): each claimed row's new
    # version went into 7 indexes, now 5. bench/claims.py, 8 moderators, same database:
    # 845 claims/s without the two against 791/s with them (mean of 3 runs each).
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_claims",
        db_index=False,
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_source = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Which credential made the claim: a browser session (session:<digest>) "
        "or an API token (token:<digest>). Logging out releases that session's claims only.",
    )
    # How the last claim ended, so that its holder's next decision is told the real cause.
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who held the item until its last release.",
        db_index=False,
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_cause = models.CharField(max_length=12, choices=ReleaseCause.choices, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)

    PRIORITY = {Purpose.REVIEW: 1, Purpose.CONFIRM: 0, Purpose.APPEAL: 1}

    class Meta:
        ordering = ["-priority", "-severity", "item_created_at", "pk"]
        verbose_name = "queue entry"
        verbose_name_plural = "queue"
        indexes = [
            models.Index(
                fields=["claimed_by", "-priority", "-severity", "item_created_at"],
                name="review_queue_held_order",
            ),
            # The claim query reads only pending rows, in this order.
            models.Index(
                fields=["-priority", "-severity", "item_created_at", "id"],
                condition=models.Q(claimed_by__isnull=True),
                name="review_queue_pending_order",
            ),
            # Held leases by expiry, for the claim's expired branch and the sweeper. Partial
            # so that a plan made once for any time (the claim's prepared statement) reads
            # expired leases from it whatever the statistics say of claimed rows: with a
            # plain index on the column, PostgreSQL's generic plan scanned every held row
            # through review_queue_held_order (16 ms with 46,500 held, against 0.02 ms).
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(claimed_by__isnull=False),
                name="review_queue_leases",
            ),
        ]

    def __str__(self):
        who = self.claimed_by or "nobody"
        return f"{self.item} (claimed by {who})"

    @property
    def confirms(self) -> bool:
        return self.purpose == self.Purpose.CONFIRM


class Decision(models.Model):
    """A person's verdict on one item. Never edited: a reversal is a new, superseding record."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    item = models.ForeignKey(
        "uploads.MediaItem", on_delete=models.CASCADE, related_name="decisions"
    )
    moderator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Verdict.choices)
    reason = models.CharField(max_length=500, blank=True)
    previous_status = models.CharField(max_length=12, blank=True)
    batch = models.UUIDField(
        default=uuid.uuid4, db_index=True, help_text="Decisions made by one action share it."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(db_index=True)
    seconds_to_decide = models.FloatField(null=True, blank=True)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="superseded_by"
    )
    is_override = models.BooleanField(default=False)

    class Meta:
        ordering = ["-decided_at", "-pk"]

    def __str__(self):
        return f"{self.decision} {self.item} by {self.moderator}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Decisions are immutable; record a superseding decision instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Decisions are part of the audit trail and are never deleted.")


class Term(models.Model):
    """One entry of a category's term bank: a word or phrase that blocks (counts 1.0 towards
    the category; 0.6 quoted) or allows (counter-speech, a reclaimed word: the category's
    model scores count 0.3, and block terms inside it are discounted) in text items.

    Matched after normalising (hashing.textnorm): "k1ll y0urs3lf", "k i l l yourself" and
    "kiiill yourself" are "kill yourself". A term matches whole words, plus a plural "s";
    a trailing ``*`` matches any ending ("fuck*": "fucking"). Edits are audited as policy
    changes (review.admin). Rows are disabled, never deleted.
    """

    class Kind(models.TextChoices):
        BLOCK = "block", "block"
        ALLOW = "allow", "allow"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="terms")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="terms")
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.BLOCK)
    text = models.CharField(
        max_length=200, help_text="As people write it; a trailing * matches any ending."
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why it is here.")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "kind", "text"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "category", "kind", "text"], name="one_term_per_bank"
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.category.name}: {self.text}"

    def clean(self):
        if len(squeeze(self.text.rstrip("*"))) < 2:
            raise ValidationError({"text": "A term needs at least two letters or digits."})
        if self.category_id and self.policy_id and self.category.policy_id != self.policy_id:
            raise ValidationError({"category": "The category of another policy."})
