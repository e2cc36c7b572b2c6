"""Bank matching on real photographs, transformed here the way re-posters evade filters.

The bank holds reference pictures added as an admin adds them (hashed from their bytes);
each query goes the way of an upload: encode, decode with ``open_for_hashing``, then
``fingerprint``. Default policy: thresholds 10 (64-bit) and 31 (PDQ), majority quorum.
"""

from functools import cache

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from hashing import matcher, services
from hashing.algorithms import fingerprint
from tests.conftest import VENUS, encode
from uploads.kinds import open_for_hashing

REFERENCES = ("chelsea", "coffee", "astronaut", "venus")
UNRELATED = (
    "rocket",
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "brick",
    "moon",
    "horse",
    "coins",
    "page",
    "retina",
    "colorwheel",
    "logo",
)


@cache
def picture(name: str) -> Image.Image:
    if name == "venus":
        return Image.open(VENUS).convert("RGB")
    from skimage import data

    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


@cache
def reference_bytes(name: str) -> bytes:
    return VENUS.read_bytes() if name == "venus" else encode(picture(name), quality=95)


def crop_5_percent(img: Image.Image) -> Image.Image:
    """Keep the middle 95 % of width and height."""
    w, h = img.size
    dx, dy = round(w * 0.025), round(h * 0.025)
    return img.crop((dx, dy, w - dx, h - dy))


TRANSFORMS = {
    "jpeg_q40": lambda img: encode(img, quality=40),
    "half_size": lambda img: encode(img.resize((img.width // 2, img.height // 2))),
    "greyscale": lambda img: encode(img.convert("L")),
    "brighter_20pc": lambda img: encode(ImageEnhance.Brightness(img).enhance(1.2)),
    "crop_5pc": lambda img: encode(crop_5_percent(img)),
    "mirrored": lambda img: encode(ImageOps.mirror(img)),
}


@cache
def query_fp(name: str, transform: str = "") -> dict:
    data = TRANSFORMS[transform](picture(name)) if transform else encode(picture(name))
    return fingerprint(open_for_hashing(data), mirrored=True)


def as_query(fp: dict, policy) -> dict:
    return fp if policy.mirror_aware else {k: v for k, v in fp.items() if k != "mirror"}


@pytest.fixture
def reference_bank(db):
    bank = services.create_bank("known images")
    added = services.add_images(bank, [(f"{n}.jpg", reference_bytes(n)) for n in REFERENCES])
    return {
        name: {content.pk, *content.variants.values_list("pk", flat=True)}
        for name, content in zip(REFERENCES, added["added"])
    }


@pytest.mark.parametrize("name", REFERENCES)
def test_transformed_copies_are_blocked_by_quorum(policy, reference_bank, name):
    for transform in TRANSFORMS:
        result = matcher.vote(query_fp(name, transform), policy)
        assert result["blocked"], (transform, result["per_voter"])
        # The picture or one of its rotated versions (hashing.references) is the nearest.
        assert result["content"] in reference_bank[name], transform
        assert result["votes"] >= result["quorum"] == 4  # two of the strong voters at least


def test_a_cropped_copy_is_blocked_although_pdq_disagrees(policy, reference_bank):
    """PDQ is crop-sensitive (measured 42-56 bits for a 5 % crop); the others outvote it."""
    result = matcher.vote(query_fp("coffee", "crop_5pc"), policy)
    assert result["blocked"] and not result["per_voter"]["pdq"]["vote"]
    assert result["votes"] >= 4


def test_a_mirrored_copy_is_missed_unless_voters_are_mirror_aware(policy, reference_bank):
    fp = query_fp("astronaut", "mirrored")
    result = matcher.vote(fp, policy)
    assert result["blocked"] and result["votes"] == 9  # all five voters; four weigh 2
    assert all(v["mirrored"] and v["distance"] == 0 for v in result["per_voter"].values())
    policy.mirror_aware = False
    result = matcher.vote(as_query(fp, policy), policy)
    assert not result["blocked"] and result["votes"] == 0


@pytest.mark.parametrize("name", UNRELATED)
def test_unrelated_photographs_do_not_match(policy, reference_bank, name):
    result = matcher.vote(query_fp(name), policy)
    agreeing = [n for n, v in result["per_voter"].items() if v["vote"]]
    assert not result["blocked"] and len(agreeing) <= 1, result["per_voter"]


def test_the_reference_pictures_do_not_match_each_other(policy, db):
    for name in REFERENCES:
        bank = services.create_bank(f"only {name}")
        services.add_images(bank, [(name, reference_bytes(name))])
        for other in REFERENCES:
            if other != name:
                assert not matcher.vote(query_fp(other), policy)["blocked"], (name, other)
        bank.active = False
        services.save_bank(bank)
