"""What a reference picture is banked as: itself and its straightened rotations.

Hashes do not survive rotation: copies turned 3-5° (a phone's "straighten", a re-poster's
tilt) slipped past the vote for 5 of 7 bank pictures at 5°. Hashing a rotation of the query
at lookup time fixed only rotations with black corners and cost 3.7 ms per upload; banking
each reference also turned ±4°, once with black corners and once cropped to the largest
centred rectangle without them, took recall over every rotation of ±3° and ±5° (with or
without corners) to 100 %, with no false match among 43 negatives, at no cost per upload
(bench/detection.py, docs/benchmarks.md). The versions are contents of their own
(``BankContent.variant_of``): the voters must agree on one picture.
"""

from __future__ import annotations

import math

from PIL import Image

ANGLES = (4, -4)


def rotate_filled(image: Image.Image, degrees: float) -> Image.Image:
    """Turned about the centre on the same canvas, the uncovered corners black."""
    return image.rotate(degrees, Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def rotate_cropped(image: Image.Image, degrees: float) -> Image.Image:
    """Turned, then cropped to the largest centred rectangle of the original aspect ratio
    that holds no uncovered corner (what a phone's "straighten" keeps)."""
    w, h = image.size
    a = math.radians(abs(degrees))
    scale = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
    cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
    turned = image.rotate(degrees, Image.Resampling.BICUBIC, expand=False)
    left, top = (w - cw) // 2, (h - ch) // 2
    return turned.crop((left, top, left + cw, top + ch))


def versions(image: Image.Image) -> list[tuple[str, Image.Image]]:
    """The rotated versions banked with a reference, each with how a person names it."""
    out = []
    for angle in ANGLES:
        out.append((f"rotated {angle:+d}°, cropped", rotate_cropped(image, angle)))
        out.append((f"rotated {angle:+d}°, black corners", rotate_filled(image, angle)))
    return out
