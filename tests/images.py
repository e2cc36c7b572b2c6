"""Generated test pictures (no files): the low-detail uploads innocent users post."""

import numpy as np
from PIL import Image, ImageDraw


def low_detail() -> dict[str, Image.Image]:
    """Pictures that carry almost nothing to match on: what innocent uploads often are."""
    ramp = np.tile(np.linspace(0, 255, 640), (480, 1)).astype(np.uint8)
    found = {
        "black": Image.new("RGB", (640, 480)),
        "sky blue": Image.new("RGB", (640, 480), (135, 206, 235)),
        "white": Image.new("RGB", (640, 480), "white"),
        "horizontal gradient": Image.fromarray(ramp).convert("RGB"),
        "vertical gradient": Image.fromarray(ramp.T.copy()).convert("RGB"),
    }
    page = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(page).text((250, 770), "page 1 of 3", fill="black")
    window = Image.new("RGB", (800, 600), (20, 20, 25))
    ImageDraw.Draw(window).rectangle((0, 0, 800, 30), fill=(40, 40, 50))
    loading = Image.new("RGB", (800, 600), "white")
    ImageDraw.Draw(loading).text((370, 290), "loading...", fill=(120, 120, 120))
    found.update({"blank page with footer": page, "dark window": window, "loading": loading})
    return found
