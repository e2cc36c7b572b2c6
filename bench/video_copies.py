"""Which video voter catches which kind of copy: vPDQ (frame PDQ, every frame of the bank
side, 1 frame/s of the upload) against the 64-bit pHash of the frames at 10/30/50/70/90 %
(vphash), each alone and together (the policy's quorum), on copies of the bank's clips.

The bank holds the three clips of tests/fixtures/videos (chair, pattern, doorknob; BSD,
from ThreatExchange's vPDQ test data). Each is copied as a re-poster would (re-encoded at
CRF 34, and each of: trimmed and resized, letterboxed to 16:9 inside a larger frame, a
large logo badge over a quarter of the picture, a caption bar over the bottom fifth,
cropped by 10 % on each side, mirrored), and every copy is asked of the bank. A clip that is
not in the bank (a fourth made here from scikit-image photographs) and the three clips
against each other's entries measure false matches.

Prints a markdown table: per copy, whether each voter alone would block it, and whether
the policy's vote blocks it (with vPDQ's share of matching frames).

Usage: python bench/video_copies.py
"""

import io
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-throwaway-key")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("REDIS_URL", None)
_TMP = tempfile.mkdtemp(prefix="bench-video-copies-")
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP}/bench.sqlite3"

from tests.videos import letterbox, mirror  # noqa: E402 - the tests' own copies

VIDEOS = ROOT / "tests" / "fixtures" / "videos"
CLIPS = ("chair", "pattern", "doorknob")


def frames_of(data: bytes):
    import av

    source = av.open(io.BytesIO(data))
    stream = source.streams.video[0]
    rate = float(stream.average_rate or 30)
    pictures = [(f.time, f.to_ndarray(format="rgb24")) for f in source.decode(stream)]
    source.close()
    return pictures, rate


def encode(pictures, rate: float, crf: int = 34) -> bytes:
    """The pictures as an H.264 clip (tests.videos.encode), cut to even sides for yuv420p."""
    from tests.videos import encode as encode_clip

    height, width = pictures[0].shape[:2]
    even = [p[: height - height % 2, : width - width % 2] for p in pictures]
    return encode_clip(even, fps=rate, crf=crf)


def logo(p, part: int = 2):
    """An opaque badge over the top-left corner, 1/part of each side (2: a quarter of the
    picture), with an inner square and white stripes."""
    q = p.copy()
    h, w = q.shape[:2]
    bh, bw = h // part, w // part
    q[:bh, :bw] = (250, 200, 0)
    q[bh // 4 : bh * 3 // 4, bw // 4 : bw * 3 // 4] = (20, 20, 160)
    q[:bh:6, :bw] = (255, 255, 255)
    return q


def caption(p):
    q = p.copy()
    h = q.shape[0]
    q[h - h // 5 :] = (0, 0, 0)
    q[h - h // 7 : h - h // 12, 10:-10:7] = (255, 255, 255)
    return q


def crop(p):
    h, w = p.shape[:2]
    return p[h // 10 : h - h // 10, w // 10 : w - w // 10]


def trimmed(pictures, rate):
    """2 s to 70 % of the clip, resized to two thirds (every other frame: half the rate)."""
    import numpy as np
    from PIL import Image

    end = pictures[-1][0] * 0.7
    chosen = [p for t, p in pictures if 2.0 <= t < end][::2]
    h, w = chosen[0].shape[:2]
    size = (w * 2 // 3 // 2 * 2, h * 2 // 3 // 2 * 2)
    return [np.asarray(Image.fromarray(p).resize(size)) for p in chosen], rate / 2


VARIANTS = {
    "re-encoded (CRF 34)": lambda ps, r: ([p for _, p in ps], r),
    "trimmed, resized, half the frame rate": trimmed,
    "letterboxed, bars 1/8 of the width each side": lambda ps, r: (
        [letterbox(p, 4 / 3) for _, p in ps],
        r,
    ),
    "letterboxed, bars 1/4 of the width each side": lambda ps, r: (
        [letterbox(p) for _, p in ps],
        r,
    ),
    "logo over 1/16 (a corner badge)": lambda ps, r: ([logo(p, 4) for _, p in ps], r),
    "large logo over a quarter": lambda ps, r: ([logo(p) for _, p in ps], r),
    "caption bar over the bottom fifth": lambda ps, r: ([caption(p) for _, p in ps], r),
    "cropped 10 % each side": lambda ps, r: ([crop(p) for _, p in ps], r),
    "mirrored": lambda ps, r: ([mirror(p) for _, p in ps], r),
}


def unrelated_clip() -> bytes:
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    pictures = []
    for i in range(120):  # 4 s at 30 frames/s, a slow pan over each photo
        base = photos[(i // 30) % 4]
        shift = i % 30
        crop_ = base[shift : shift + 240, shift * 2 : shift * 2 + 320]
        pictures.append(np.asarray(Image.fromarray(crop_).resize((320, 240))))
    return encode(pictures, 30, crf=23)


def main():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from hashing import services
    from hashing.algorithms import fingerprint
    from hashing.matcher import VotingRules
    from hashing.video import vote_video
    from review.models import Policy
    from uploads.video import decode_video

    bank = services.create_bank("banned clips")
    references = {name: (VIDEOS / f"{name}.mp4").read_bytes() for name in CLIPS}
    services.add_images(bank, [(f"{n}.mp4", data) for n, data in references.items()])
    rules = Policy.current().voting_rules()
    voters = {n: s for n, s in rules.voter_settings().items() if n in ("vpdq", "vphash")}
    alone = {
        name: VotingRules({name: setting}, rules.quorum, rules.mirror_aware)
        for name, setting in voters.items()
    }

    def ask(data: bytes) -> dict:
        fp = fingerprint(decode_video(data), "video", rules.mirror_aware)
        both = vote_video(fp, rules)
        row = {name: vote_video(fp, r)["blocked"] for name, r in alone.items()}
        return {**row, "blocked": both["blocked"], "share": both["query_match"], "bank": both}

    rows = []
    for clip, data in references.items():
        pictures, rate = frames_of(data)
        for variant, make in VARIANTS.items():
            copy_pictures, copy_rate = make(pictures, rate)
            rows.append((clip, variant, ask(encode(copy_pictures, copy_rate))))
    other = ask(unrelated_clip())

    lines = [
        f"# bench/video_copies.py · {platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}",
        "",
        "Bank: chair, pattern, doorknob (tests/fixtures/videos). Each copy re-encoded at CRF "
        "34. ✓ = blocked.",
        "",
        "| clip | copy | vPDQ alone | vphash alone | the policy's vote | vPDQ share of frames |",
        "|---|---|---|---|---|---:|",
    ]
    mark = {True: "✓", False: "–"}
    for clip, variant, r in rows:
        lines.append(
            f"| {clip} | {variant} | {mark[r['vpdq']]} | {mark[r['vphash']]} | "
            f"{mark[r['blocked']]} | {r['share']:.2f} |"
        )
    lines.append(
        f"| (not in the bank) | photographs, panned | {mark[other['vpdq']]} | "
        f"{mark[other['vphash']]} | {mark[other['blocked']]} | {other['share']:.2f} |"
    )
    totals = {key: sum(1 for _, _, r in rows if r[key]) for key in ("vpdq", "vphash", "blocked")}
    lines += [
        "",
        f"Copies blocked, of {len(rows)}: vPDQ alone {totals['vpdq']}, vphash alone "
        f"{totals['vphash']}, the policy's vote {totals['blocked']}; the unrelated clip: "
        f"{'blocked (a false match)' if other['blocked'] else 'not blocked'}.",
    ]
    for name in voters:
        only = [
            f"{c}: {v}"
            for c, v, r in rows
            if r[name] and not any(r[o] for o in voters if o != name)
        ]
        if only:
            lines.append(f"- Caught by {name} alone: " + "; ".join(only) + ".")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
