"""Video fingerprints (vPDQ and the five-frame pHash) in the hash-algorithm registry, and
the bank vote and copies of past videos: trimmed, resized, re-timed copies are caught."""

import pytest

from hashing import services
from hashing.algorithms import ALGORITHMS, algorithms_for, fingerprint
from hashing.models import BankEntry, VideoFrames
from hashing.video import vote_video
from review import pipeline
from review.models import Policy
from tests.review.review_factories import rejected_item
from tests.videos import CHAIR, DOORKNOB, PATTERN, letterbox, mirror, transform
from uploads.intake import ingest_bytes
from uploads.kinds import get_kind
from uploads.models import MediaItem
from uploads.video import content_box, decode_video


def analysed(data: bytes, user, name="clip.mp4") -> MediaItem:
    item = ingest_bytes(data, name=name, source="web", uploader=user)
    pipeline.analyse_item(item.pk)
    item.refresh_from_db()
    return item


@pytest.fixture
def banned_chair(db):
    bank = services.create_bank("banned clips")
    services.add_images(bank, [("chair.mp4", CHAIR.read_bytes())])
    return bank


def the_copy() -> bytes:
    """Re-encoded, resized (240 → 160 px), 30 → 24 frames/s, and trimmed (2 s to 9 s of 12)."""
    return transform(CHAIR.read_bytes(), width=160, fps=24, start=2.0, end=9.0, crf=34)


def test_the_video_voters_are_in_the_registry_for_the_video_kind(db):
    assert [a.name for a in algorithms_for("video")] == ["vpdq", "vphash"]
    assert ALGORITHMS["vpdq"].bits == 256 and ALGORITHMS["vphash"].bits == 64
    voters = set(Policy.current().voter_settings())
    assert {"vpdq", "vphash"} <= voters


def test_frame_hashes_are_pdqhash_of_the_frames_with_quality_and_timestamp():
    import io

    import av
    import numpy as np
    import pdqhash

    data = DOORKNOB.read_bytes()
    fp = fingerprint(decode_video(data), "video", False)
    container = av.open(io.BytesIO(data))
    first = next(container.decode(container.streams.video[0])).to_ndarray(format="rgb24")
    rows, cols = content_box(first)
    cut = np.ascontiguousarray(first[rows, cols])

    def pdq(picture):
        vector, quality = pdqhash.compute(picture)  # 320 px: hashed at its own size
        return int.from_bytes(np.packbits(vector.astype(bool)).tobytes(), "big"), int(quality)

    assert fp["vpdq"][0] == (*pdq(cut), 0.0)
    assert len(fp["vphash"]) == 5
    if cut.shape != first.shape:  # the clip's dark edges cut off; the whole frame kept too
        assert fp["uncut"]["vpdq"][0] == (*pdq(first), 0.0)


def test_a_bank_reference_video_is_one_entry_per_informative_frame(banned_chair):
    entries = BankEntry.objects.filter(bank=banned_chair)
    frames = entries.filter(algorithm="vpdq").count()
    # Every frame of 12 s at 30 frames/s (repeats once), cut to its content and whole: the
    # clip has dark edges of its own (16 px a side), so both readings are banked.
    assert 600 <= frames <= 722
    assert entries.filter(algorithm="vphash").count() == 10


def test_a_trimmed_resized_re_timed_copy_of_a_bank_video_is_blocked(uploader, banned_chair):
    item = analysed(the_copy(), uploader)
    assert item.status == MediaItem.Status.FLAGGED, item.reason_text
    assert item.reason == "bank_match"
    bank = item.matches["bank"]
    assert bank["blocked"] and bank["per_voter"]["vpdq"]["vote"]
    assert bank["query_match"] >= 0.8
    # Only part of the reference was uploaded: the other way round, most frames are missed.
    assert bank["compared_match"] < 0.8


@pytest.mark.parametrize("other", [PATTERN, DOORKNOB])
def test_a_different_video_is_not_blocked(uploader, banned_chair, other):
    item = analysed(other.read_bytes(), uploader)
    assert item.status == MediaItem.Status.PASSED, item.reason_text
    assert not item.matches["bank"]["blocked"]
    assert item.matches["bank"]["query_match"] < 0.2


def test_the_vote_of_a_copy_needs_most_of_its_frames_to_match(banned_chair):
    rules = Policy.current().voting_rules()
    copy = fingerprint(decode_video(the_copy()), "video", False)
    assert vote_video(copy, rules)["blocked"]
    # The same copy with all but two frames replaced by another clip's: not enough.
    other = fingerprint(decode_video(PATTERN.read_bytes()), "video", False)
    mixed = {**copy, "vpdq": copy["vpdq"][:2] + other["vpdq"]}
    # ... read cut to the content and whole (the clip has dark edges of its own)
    mixed["uncut"] = {**copy["uncut"], "vpdq": copy["uncut"]["vpdq"][:2] + other["vpdq"]}
    found = vote_video(mixed, rules)
    assert not found["blocked"] and found["query_match"] < 0.8


def test_a_disabled_voter_does_not_vote(banned_chair):
    policy = Policy.current()
    policy.voters.filter(algorithm="vpdq").update(enabled=False)
    copy = fingerprint(decode_video(the_copy()), "video", False)
    assert not vote_video(copy, policy.voting_rules())["blocked"]


def test_a_copy_of_a_rejected_video_goes_to_review_as_a_near_copy(uploader, moderator):
    original = rejected_item(CHAIR.read_bytes(), uploader, moderator, name="chair.mp4")
    assert original.status == MediaItem.Status.REJECTED
    stored = VideoFrames.objects.get(item=original)
    assert len(stored.hashes) % 32 == 0 and len(stored.hashes) // 32 >= 10
    item = analysed(the_copy(), uploader)
    assert item.reason == "near_copy_of_rejected", item.reason_text
    assert item.duplicate_of_id == original.pk
    again = analysed(CHAIR.read_bytes(), uploader, name="same.mp4")
    assert again.reason == "duplicate_of_rejected"
    assert again.status == MediaItem.Status.FLAGGED


def test_a_different_video_is_no_copy_of_a_rejected_one(uploader, moderator):
    rejected_item(CHAIR.read_bytes(), uploader, moderator, name="chair.mp4")
    item = analysed(PATTERN.read_bytes(), uploader)
    assert item.status == MediaItem.Status.PASSED, item.reason_text
    assert item.duplicate_of_id is None


def test_the_video_kind_says_how_it_is_hashed():
    assert get_kind("video").frame_kind == "image"


def test_a_gif_cut_from_a_bank_video_is_blocked_by_the_video_bank(uploader, banned_chair):
    import io

    import av

    container = av.open(io.BytesIO(CHAIR.read_bytes()))
    pictures = []
    for n, frame in enumerate(container.decode(container.streams.video[0])):
        if 3.0 <= frame.time < 9.0 and n % 6 == 0:  # 5 frames/s of 6 s
            pictures.append(frame.to_image().resize((160, 240)))
    buf = io.BytesIO()
    pictures[0].save(buf, "GIF", save_all=True, append_images=pictures[1:], duration=200, loop=0)
    item = analysed(buf.getvalue(), uploader, name="chair.gif")
    assert item.kind == "image" and item.details["frames"] == len(pictures)
    assert item.details["animation"]["frames_sampled"] >= 1  # its review strip
    assert item.status == MediaItem.Status.FLAGGED, item.reason_text
    assert item.reason == "bank_match" and item.matches["bank"]["query_match"] >= 0.8


def test_an_unrelated_gif_does_not_meet_the_video_bank(uploader, banned_chair, photo):
    import io

    pictures = [photo(n).resize((160, 240)) for n in ("chelsea", "coffee", "rocket")] * 3
    buf = io.BytesIO()
    pictures[0].save(buf, "GIF", save_all=True, append_images=pictures[1:], duration=300, loop=0)
    item = analysed(buf.getvalue(), uploader, name="cats.gif")
    assert item.status == MediaItem.Status.PASSED, item.reason_text


# -- black bars and mirrors ----------------------------------------------------------------


def test_black_bars_are_found_inside_compression_noise_and_dark_frames_are_left_whole():
    import numpy as np

    rng = np.random.default_rng(1)
    content = rng.integers(60, 255, (90, 120, 3), dtype=np.uint8)
    framed = np.zeros((100, 200, 3), np.uint8)
    framed[5:95, 40:160] = content
    framed[:, :40] += rng.integers(0, 4, (100, 40, 3), dtype=np.uint8)  # H.264's black
    framed[:, 40:160][:, :1] = 200  # a lit first column
    assert content_box(framed) == (slice(5, 95), slice(40, 160))
    # A bar thinner than 3 % of its side (2 of 100 rows) is edge noise: not cut.
    thin = np.zeros((100, 120, 3), np.uint8)
    thin[2:] = content[:1].repeat(98, axis=0)[:, :120]
    assert content_box(thin)[0] == slice(0, 100)
    # A nearly black frame (a fade) keeps less than 30 % of a side: hashed whole.
    fade = np.zeros((100, 200, 3), np.uint8)
    fade[45:55, 90:110] = 120
    assert content_box(fade) == (slice(0, 100), slice(0, 200))
    # A picture with no bars at all is itself.
    assert content_box(content) == (slice(0, 90), slice(0, 120))


@pytest.mark.parametrize("widen", [4 / 3, 1.5])
def test_a_letterboxed_copy_of_a_bank_video_is_blocked(uploader, banned_chair, widen):
    """Bars of 1/8 and of 1/4 of the width on each side: 0 frames matched before the cut."""
    data = transform(CHAIR.read_bytes(), crf=34, change=lambda p: letterbox(p, widen))
    item = analysed(data, uploader)
    assert item.status == MediaItem.Status.FLAGGED, item.reason_text
    bank = item.matches["bank"]
    assert bank["per_voter"]["vpdq"]["vote"] and bank["query_match"] >= 0.8
    assert not bank["per_voter"]["vpdq"]["mirrored"]


def test_a_resized_copy_of_a_clip_with_dark_edges_of_its_own_is_still_blocked(uploader):
    """The pattern clip's PDQ moves by 6-10 bits when its cut shifts by a pixel: its
    resized copy matches by the frames read whole (uploads.video BAR_LEVEL)."""
    bank = services.create_bank("banned clips")
    services.add_images(bank, [("pattern.mp4", PATTERN.read_bytes())])
    data = transform(PATTERN.read_bytes(), width=160, fps=15, start=2.0, end=4.8, crf=34)
    fp = fingerprint(decode_video(data), "video", True)
    assert fp.get("uncut"), "the clip's own dark edges are cut"
    found = vote_video(fp, Policy.current().voting_rules())
    assert found["blocked"] and found["query_match"] >= 0.8


def test_a_mirrored_copy_is_blocked_only_when_the_policy_looks_for_mirrors(uploader, banned_chair):
    data = transform(CHAIR.read_bytes(), crf=34, change=mirror)
    item = analysed(data, uploader)
    assert item.status == MediaItem.Status.FLAGGED, item.reason_text
    assert item.matches["bank"]["per_voter"]["vpdq"]["mirrored"]
    policy = Policy.current()
    policy.mirror_aware = False
    policy.save()
    again = analysed(data, uploader, name="again.mp4")
    assert again.status == MediaItem.Status.PASSED, again.reason_text
    assert not again.matches["bank"]["blocked"]


def test_a_mirrored_copy_of_a_rejected_video_is_a_near_copy(uploader, moderator):
    original = rejected_item(CHAIR.read_bytes(), uploader, moderator, name="chair.mp4")
    item = analysed(transform(CHAIR.read_bytes(), crf=34, change=mirror), uploader)
    assert item.reason == "near_copy_of_rejected", item.reason_text
    assert item.duplicate_of_id == original.pk
