"""What other people see of an image: re-encoded without metadata (EXIF GPS, camera serials,
XMP, comments). The original stays byte-exact for moderators and evidence."""

import io

from PIL import Image, ImageOps, ImageSequence

PUBLIC_MAX_SIDE = 2048


def public_name(item) -> str:
    ext = {"image/png": "png", "image/gif": "gif", "image/webp": "webp"}.get(item.mime, "jpg")
    return f"public/{item.uuid.hex[:2]}/{item.uuid.hex}.{ext}"


def render_public(data: bytes, mime: str) -> bytes:
    image = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    if mime == "image/gif":
        # Fresh frames carry no info, so no comment or application block is written back.
        durations, pictures = [], []
        for frame in ImageSequence.Iterator(image):
            durations.append(frame.info.get("duration", 100))
            picture = frame.convert("RGBA")
            picture.info = {}  # convert() copies info, comments included
            pictures.append(picture)
        first, *rest = pictures
        first.save(
            out,
            "GIF",
            save_all=True,
            append_images=rest,
            duration=durations,
            loop=image.info.get("loop", 0),
            disposal=2,
        )
        return out.getvalue()
    image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF tag gave
    image.thumbnail((PUBLIC_MAX_SIDE, PUBLIC_MAX_SIDE))
    icc = image.info.get("icc_profile")  # colour, not identity: kept
    image.info = {}  # Pillow writes some info keys (e.g. a JPEG comment) back when saving
    if mime == "image/png":
        image.save(out, "PNG", icc_profile=icc)
    elif mime == "image/webp":
        image.save(out, "WEBP", quality=90, icc_profile=icc)
    else:
        image.convert("RGB").save(out, "JPEG", quality=90, icc_profile=icc)
    return out.getvalue()
