"""The axes grow by a module and rows, not edits across the tree.

Everything new here is defined in this file: a hash algorithm for images, and a whole new
media kind (plain notes, a toy beside the real text kind) with its own hash algorithm,
classifier and category. Nothing outside the test changes, yet each is computed, stored,
matched and thresholded.
"""

import hashlib
import re

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from hashing import matcher, services
from hashing.algorithms import HashAlgorithm, Signal, registered
from hashing.models import Bank, Fingerprint
from review.categories import Detection
from review.classifiers import Classifier, ClassifierResult, registry
from review.models import Analysis, Category
from uploads import intake, kinds
from uploads.models import MediaItem
from uploads.validation import RefusedUpload


class RedHash(HashAlgorithm):
    """A toy 64-bit hash: the 8x8 red channel against its mean."""

    name = "redhash"
    label = "red hash"
    media_kind = "image"
    default_threshold = 6
    max_threshold = 12

    def signal(self, source) -> Signal:
        if hasattr(source, "rgb"):
            red = np.asarray(source.rgb.resize((8, 8)).getchannel("R"), dtype=float)
        else:  # the mirrored source keeps only the array
            small = source.rgb_array[:: max(1, source.rgb_array.shape[0] // 8)]
            red = small[:8, :: max(1, small.shape[1] // 8)][:8, :8, 0].astype(float)
        bits = (red > red.mean()).ravel()
        return Signal(int("".join("1" if b else "0" for b in bits), 2))


class TextKind(kinds.MediaKind):
    """Plain notes, recognised by a marker so that no real file is ever taken for it."""

    name = "note"
    label = "Note"
    formats = "a text starting with TEXT:"

    def recognises(self, data: bytes) -> bool:
        return data.startswith(b"TEXT:")

    def validate(self, data: bytes, *, max_bytes: int, max_pixels: int) -> kinds.Accepted:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise RefusedUpload("corrupt", "The text is not UTF-8.") from None
        return kinds.Accepted(
            kind=self.name,
            mime="text/plain",
            extension=".txt",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            details={"words": len(data.split())},
        )

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8").removeprefix("TEXT:").strip()


class WordHash(HashAlgorithm):
    """A toy simhash over words: near texts are near hashes."""

    name = "wordhash"
    label = "word hash"
    media_kind = "note"
    mirrorable = False
    default_threshold = 8

    def signal(self, text: str) -> Signal:
        weights = np.zeros(64)
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
            weights += [1 if h >> (63 - i) & 1 else -1 for i in range(64)]
        return Signal(int("".join("1" if w > 0 else "0" for w in weights), 2))


class SpamClassifier(Classifier):
    """Scores the category "spam" directly: the share of words that sell something."""

    name = "spamfinder"
    media_kinds = ("note",)
    categories = ("spam",)
    SELLING = {"buy", "cheap", "now", "pills", "offer"}

    def classify(self, text: str) -> ClassifierResult:
        words = re.findall(r"\w+", text.lower())
        share = sum(w in self.SELLING for w in words) / max(1, len(words))
        return ClassifierResult(self.name, [Detection(("spam",), share)], raw={"share": share})


@pytest.fixture
def take(django_capture_on_commit_callbacks):
    """The one intake, with the analysis it starts after commit run in-process."""

    def send(data: bytes, name: str = "", source: str = "api", uploader=None) -> MediaItem:
        with django_capture_on_commit_callbacks(execute=True):
            result = intake.take(
                [intake.Submission(name=name, data=data)], source=source, uploader=uploader
            )
        (item,) = result.accepted
        item.refresh_from_db()
        return item

    return send


@pytest.fixture
def red_hash(policy):
    with registered(RedHash()) as algorithm:
        policy.seed_defaults()  # the algorithm's voter row, as the next migrate would make it
        yield algorithm
    matcher.matcher.reset()


@pytest.fixture
def text_kind(policy):
    """The text kind, its hash and classifier, and the policy rows an admin would add."""
    registry.register("spamfinder", "tests.test_extending.SpamClassifier")
    with kinds.registered(TextKind()), registered(WordHash()):
        policy.seed_defaults()
        Category.objects.update_or_create(  # the text kind's "spam", for notes here
            policy=policy,
            name="spam",
            defaults={
                "label": "Spam",
                "media_kind": "note",
                "review_at": 0.3,
                "flag_at": 0.6,
                "rank": 5,
            },
        )
        policy.providers = "nudenet,spamfinder"
        policy.full_clean()  # as admin checks it: the provider's category has its row
        policy.save()
        yield policy
    registry.unregister("spamfinder")
    matcher.matcher.reset()


def test_a_new_image_algorithm_is_computed_stored_matched_and_thresholded(
    red_hash, policy, uploader, photo, take
):
    from tests.conftest import encode

    voter = policy.voters.get(algorithm="redhash")
    assert (voter.enabled, voter.threshold) == (True, 6)
    picture = photo("chelsea")
    bank = services.create_bank("known bad", kind=Bank.Kind.BLOCK)
    (content,) = services.add_images(bank, [("cat.jpg", encode(picture))])["added"]
    assert content.entries.filter(algorithm="redhash").exists()

    # Only the new voter may vote: it alone must block the copy.
    policy.voters.exclude(algorithm="redhash").update(enabled=False)
    width, height = picture.size
    copy = encode(picture.crop((10, 8, width - 10, height - 8)), quality=60)  # 5 bits away
    item = take(copy, "c.jpg", source="web", uploader=uploader)
    stored = Fingerprint.objects.filter(item=item, algorithm="redhash")
    assert [f.mirrored for f in stored] == [False]  # the mirror is searched, not stored
    assert item.analyses.get().hashes["mirror"]["redhash"]
    bank_vote = item.matches["bank"]
    assert bank_vote["per_voter"]["redhash"]["vote"] is True
    assert bank_vote["per_voter"]["redhash"]["distance"] <= 6
    assert (item.status, item.reason) == (MediaItem.Status.FLAGGED, "bank_match")

    # Thresholded: one bit tighter than the copy's distance and it no longer votes.
    distance = bank_vote["per_voter"]["redhash"]["distance"]
    assert distance >= 1
    policy.voters.filter(algorithm="redhash").update(threshold=distance - 1)
    again = take(copy, "c2.jpg", source="web")
    assert again.matches["bank"]["per_voter"]["redhash"]["vote"] is False
    assert again.reason != "bank_match"


def test_a_new_media_kind_with_its_hash_classifier_and_category(text_kind, uploader, take):
    spam = b"TEXT: buy cheap pills now, offer ends now"
    item = take(spam, uploader=uploader)
    assert (item.kind, item.mime, item.width, item.details) == (
        "note",
        "text/plain",
        None,
        {"words": 8},
    )
    assert (item.status, item.reason, item.category) == ("flagged", "spam_flagged", "spam")
    assert item.reason_text.startswith("Spam content detected (")
    analysis = Analysis.objects.get(item=item)
    assert set(analysis.raw) == {"spamfinder"}  # NudeNet takes images only: not run
    assert set(analysis.hashes) == {"wordhash", "quality"}  # no image hash, no mirror
    assert Fingerprint.objects.filter(item=item).count() == 1

    mild = b"TEXT: a cheap cup of tea now"  # 2 of 6 words sell: 0.33, review from 0.3
    calm = take(mild)
    assert (calm.status, calm.reason) == ("review", "spam_for_review")

    # Matched: a bank of known texts blocks a near copy through the text's own voter.
    bank = services.create_bank("known spam", kind=Bank.Kind.BLOCK)
    value = WordHash().to_hex(WordHash().compute("the meeting moved to friday at noon"))
    services.import_hash_list(bank, ["hash_type,hash_value", f"wordhash,{value}"])
    near = b"TEXT: The meeting moved to Friday, at noon!"
    known = take(near)
    assert (known.status, known.reason) == ("flagged", "bank_match")


def test_a_provider_is_refused_until_its_categories_have_rows(policy):
    registry.register("spamfinder", "tests.test_extending.SpamClassifier")
    try:
        Category.objects.filter(policy=policy, name="spam").delete()  # the text kind's row
        policy.providers = "nudenet,spamfinder"
        with pytest.raises(ValidationError, match="spamfinder scores spam, which has no category"):
            policy.full_clean()
    finally:
        registry.unregister("spamfinder")
