"""Hash algorithms: exact agreement with the libraries, decoding, and measured robustness."""

import io
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data

from hashing.algorithms import (
    ALGORITHMS,
    GREY_MAX_SIDE,
    HASH_MAX_SIDE,
    fingerprint,
    grey_source,
    hash_source,
    informative,
    names,
    prepare,
)
from tests.images import low_detail
from uploads.kinds import open_for_hashing

VOTERS = names("image")


def hamming(a: int, b: int) -> int:
    return ALGORITHMS["pdq"].distance(a, b)  # every built-in compares by Hamming distance


TESTDATA = Path(__file__).resolve().parents[1] / "fixtures"
VENUS = TESTDATA / "venus-of-urbino-titian.jpg"
HASH64 = ("ahash", "dhash", "phash_simple", "phash")
IMAGEHASH = {
    "ahash": imagehash.average_hash,
    "dhash": imagehash.dhash,
    "phash_simple": imagehash.phash_simple,
    "phash": imagehash.phash,
}


def _jpeg_bytes(image: Image.Image, quality: int = 90, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def _reencode(image: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(_jpeg_bytes(image, quality))).convert("RGB")


def _crop(image: Image.Image, share: float = 0.05) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * share / 2), int(h * share / 2)
    return image.crop((dx, dy, w - dx, h - dy))


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    found = {n: Image.fromarray(getattr(data, n)()).convert("RGB") for n in ("chelsea", "coffee")}
    found["astronaut"] = Image.fromarray(data.astronaut()).convert("RGB")
    if VENUS.exists():
        found["venus"] = Image.open(VENUS).convert("RGB")
    return found


@pytest.fixture(scope="module")
def prints(photos) -> dict[str, dict]:
    return {name: fingerprint(image) for name, image in photos.items()}


def test_voters_and_bits():
    assert VOTERS == ("ahash", "dhash", "phash_simple", "phash", "pdq")
    images = {n: a for n, a in ALGORITHMS.items() if a.media_kind == "image"}  # video, text: theirs
    assert set(images) == set(VOTERS)
    assert {n: a.bits for n, a in images.items()} == {**dict.fromkeys(HASH64, 64), "pdq": 256}
    assert all(ALGORITHMS[n].name == n for n in VOTERS)


@pytest.mark.parametrize("name", HASH64)
def test_64bit_ints_match_imagehash_hex(photos, name):
    for image in photos.values():
        # 64-bit hashes are computed on the small greyscale copy grey_source() makes (the
        # same for queries and bank entries); PDQ on hash_source(), at most HASH_MAX_SIDE.
        source = grey_source(image)
        assert source.mode == "L" and max(source.size) <= GREY_MAX_SIDE
        if max(image.size) <= HASH_MAX_SIDE:
            assert hash_source(image) is image
        expected = str(IMAGEHASH[name](source))
        value = ALGORITHMS[name].compute(image)
        assert 0 <= value < 2**64
        assert format(value, "016x") == expected == ALGORITHMS[name].to_hex(value)
        assert ALGORITHMS[name].from_hex(expected) == value
        # The greyscale shortcut fingerprint() takes gives the very same bits.
        assert ALGORITHMS[name].compute(image.convert("L")) == value


def test_pdq_matches_pdqhash_bits_and_hex_round_trip(photos):
    for image in photos.values():
        bits, quality = pdqhash.compute(np.asarray(hash_source(image)))
        value, q = ALGORITHMS["pdq"].compute_with_quality(image)
        assert value == int("".join(str(int(b)) for b in bits), 2)
        assert q == quality and 0 <= q <= 100
        text = ALGORITHMS["pdq"].to_hex(value)
        assert len(text) == 64 and text == text.lower()
        assert ALGORITHMS["pdq"].from_hex(text) == value
        assert ALGORITHMS["pdq"].from_hex(text.upper()) == value
    with pytest.raises(ValueError):
        ALGORITHMS["pdq"].from_hex("ab" * 16)


def test_fingerprint_shape_and_agreement(photos):
    image = photos["coffee"]
    fp = fingerprint(image)
    assert set(fp) == {*VOTERS, "quality", "mirror"}
    assert set(fp["quality"]) == set(VOTERS)
    assert all(0 <= q <= 100 for q in fp["quality"].values())
    assert set(fp["mirror"]) == set(VOTERS)
    for name in VOTERS:
        assert fp[name] == ALGORITHMS[name].compute(image)
        assert fp["mirror"][name] == ALGORITHMS[name].compute_mirrored(image)
    assert "mirror" not in fingerprint(image, mirrored=False)


def test_mirrored_hash_is_hash_of_mirrored_image(photos):
    for image in photos.values():
        fp = fingerprint(image)
        flipped = fingerprint(ImageOps.mirror(image), mirrored=False)
        for name in HASH64:
            assert fp["mirror"][name] == flipped[name]
        assert hamming(fp["mirror"]["pdq"], flipped["pdq"]) <= 2


def test_draft_decode_of_large_jpeg_is_close_to_full_decode():
    big = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BICUBIC)
    raw = _jpeg_bytes(big, 90)
    full = Image.open(io.BytesIO(raw)).convert("RGB")
    drafted = open_for_hashing(raw)
    assert drafted.mode == "RGB"
    assert 512 <= min(drafted.size) and max(drafted.size) < 2048  # decoded at 1/4 scale
    a, b = fingerprint(full, mirrored=False), fingerprint(drafted, mirrored=False)
    for name in HASH64:
        assert hamming(a[name], b[name]) <= 2, name
    assert hamming(a["pdq"], b["pdq"]) <= 4  # measured 4 (PDQ samples finer detail)


def test_open_applies_exif_orientation_and_keeps_small_images():
    image = Image.fromarray(data.chelsea())  # 451 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    opened = open_for_hashing(_jpeg_bytes(image, exif=exif.tobytes()))
    assert opened.size == (300, 451)
    assert open_for_hashing(_jpeg_bytes(image)).size == (451, 300)


def test_open_first_frame_and_alpha_on_white():
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    first = open_for_hashing(buf.getvalue())
    assert first.mode == "RGB" and first.getpixel((5, 5))[0] > 200

    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    buf = io.BytesIO()
    clear.save(buf, "PNG")
    assert open_for_hashing(buf.getvalue()).getpixel((5, 5)) == (255, 255, 255)
    assert prepare(clear).getpixel((0, 0)) == (255, 255, 255)


def test_open_scales_16bit_greyscale():
    ramp = Image.fromarray(np.arange(256 * 256, dtype=np.uint16).reshape(256, 256))
    buf = io.BytesIO()
    ramp.save(buf, "PNG")
    pixels = np.asarray(open_for_hashing(buf.getvalue()))
    assert pixels.shape == (256, 256, 3)
    assert pixels[0, 0, 0] == 0 and pixels[128, 0, 0] == 128 and pixels[-1, -1, 0] == 255


def test_open_reduces_large_non_jpeg():
    big = Image.fromarray(data.coffee()).resize((2400, 1600))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    opened = open_for_hashing(buf.getvalue())
    assert opened.size == (600, 400)  # box-reduced by 4, no side under the 384 decode target
    a, b = fingerprint(big, mirrored=False), fingerprint(opened, mirrored=False)
    assert max(hamming(a[n], b[n]) for n in HASH64) <= 2


# Worst distance measured over chelsea, coffee, astronaut and Venus (Pillow 13,
# imagehash 4.3.2, pdqhash 0.2.8), hashing copies reduced to HASH_MAX_SIDE (384 px since
# issue 9: PDQ moved to 6 on JPEG q40 and 2 on greyscale from 2 and 0 at 512 px, and
# improved on the others). For scale:
# typical thresholds are ~10 bits of 64 and 31 of 256 (PDQ); unrelated photographs are
# >= 20 / >= 110 apart.
TRANSFORMS = {
    "jpeg_q40": (
        lambda im: _reencode(im, 40),
        {"ahash": 1, "dhash": 0, "phash_simple": 1, "phash": 0, "pdq": 6},
    ),
    "half_size": (
        lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
        {"ahash": 1, "dhash": 1, "phash_simple": 1, "phash": 2, "pdq": 18},
    ),
    "greyscale": (
        lambda im: ImageOps.grayscale(im).convert("RGB"),
        {"ahash": 0, "dhash": 0, "phash_simple": 0, "phash": 0, "pdq": 2},
    ),
    "brightness_+20%": (
        lambda im: ImageEnhance.Brightness(im).enhance(1.2),
        {"ahash": 4, "dhash": 1, "phash_simple": 0, "phash": 0, "pdq": 10},
    ),
    "crop_5%": (_crop, {"ahash": 6, "dhash": 9, "phash_simple": 7, "phash": 10, "pdq": 52}),
}


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_robustness_on_photographs(photos, prints, transform):
    change, worst = TRANSFORMS[transform]
    for name, image in photos.items():
        altered = fingerprint(change(image), mirrored=False)
        for voter in VOTERS:
            distance = hamming(prints[name][voter], altered[voter])
            assert distance <= worst[voter], (name, voter, distance)


def test_pdq_does_not_survive_a_crop_but_64bit_hashes_do(photos, prints):
    """Why several voters: PDQ misses 5% crops (46-52 bits) the DCT/gradient hashes catch."""
    for name, image in photos.items():
        cropped = fingerprint(_crop(image), mirrored=False)
        assert hamming(prints[name]["pdq"], cropped["pdq"]) > 31
        assert min(hamming(prints[name][v], cropped[v]) for v in HASH64) <= 7


def test_mirrored_copy_needs_the_mirror_hash(photos, prints):
    for name, image in photos.items():
        flipped = fingerprint(ImageOps.mirror(image), mirrored=False)
        for voter in HASH64:
            assert hamming(prints[name][voter], flipped[voter]) >= 16
            assert prints[name]["mirror"][voter] == flipped[voter]
        assert hamming(prints[name]["pdq"], flipped["pdq"]) >= 100


def test_unrelated_photographs_are_far_apart(prints):
    names = list(prints)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for voter in HASH64:
                assert hamming(prints[a][voter], prints[b][voter]) >= 20, (a, b, voter)
                assert hamming(prints[a][voter], prints[b]["mirror"][voter]) >= 16
            assert hamming(prints[a]["pdq"], prints[b]["pdq"]) >= 100


@pytest.mark.parametrize("name", list(low_detail()))
def test_hashes_of_low_detail_pictures_abstain(name):
    fp = fingerprint(low_detail()[name])
    speaking = [n for n in VOTERS if informative(fp, n)]
    # A gradient's mean is still a fair split (aHash); nothing else may speak for them.
    assert set(speaking) <= ({"ahash"} if "gradient" in name else set()), speaking


def test_every_photo_keeps_at_least_three_voters(photos):
    for name, image in photos.items():
        fp = fingerprint(image)
        assert sum(informative(fp, n) for n in VOTERS) >= 3, name
