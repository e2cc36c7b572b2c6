"""A decoded picture turned upright (its EXIF orientation applied) a band of rows at a time.

``ImageOps.exif_transpose`` copies the whole picture (and returns a copy even when there is
nothing to turn): 196 MB more for a 7000 x 7000 RGBA upload. The analysis copy
(``uploads.kinds``) and the public copy (``uploads.renditions``) both shrink the picture by
an integer factor anyway, so they cut bands from the decoded picture, turn each band
upright and reduce it on its own; the decoded picture is then the only large thing held.
"""

from __future__ import annotations

from collections.abc import Iterator

from PIL import Image

# Pixels turned and reduced at a time (about 4 MB in RGBA).
BAND_PIXELS = 1 << 20
ORIENTATION = 0x0112  # the EXIF tag ImageOps.exif_transpose reads
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Transpositions whose output row y is the input's column y (or width - 1 - y).
_SWAPS = {Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270}
_SWAPS_MIRRORED = {Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90}
_ROWS_MIRRORED = {Image.Transpose.ROTATE_180, Image.Transpose.FLIP_TOP_BOTTOM}


def orientation(image: Image.Image) -> Image.Transpose | None:
    """The transposition that turns the picture upright; None when it already is."""
    return TRANSPOSE.get(image.getexif().get(ORIENTATION, 1))


def upright_size(image: Image.Image, method: Image.Transpose | None) -> tuple[int, int]:
    """The picture's width and height once turned upright."""
    if method in _SWAPS or method in _SWAPS_MIRRORED:
        return image.height, image.width
    return image.size


def upright_bands(
    image: Image.Image, method: Image.Transpose | None, rows: int
) -> Iterator[tuple[int, Image.Image]]:
    """(top, band): the upright picture's rows ``top`` to ``top + rows``, one band at a time,
    each cut from the decoded picture and turned on its own (a band keeps the image's mode,
    palette and info, as crop does)."""
    height = upright_size(image, method)[1]
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        if method in _SWAPS:
            box = (top, 0, bottom, image.height)
        elif method in _SWAPS_MIRRORED:
            box = (image.width - bottom, 0, image.width - top, image.height)
        elif method in _ROWS_MIRRORED:
            box = (0, image.height - bottom, image.width, image.height - top)
        else:
            box = (0, top, image.width, bottom)
        band = image.crop(box)
        yield top, band.transpose(method) if method is not None else band
