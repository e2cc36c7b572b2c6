"""Benchmark of video analysis: the one-pass decode that converts only the frames it needs,
against converting every frame, in the same run.

Prints a markdown table for a 720p clip (by default made here: a 30 s, 30 frame/s pan and
cuts across scikit-image photographs, H.264 CRF 23, so every frame differs; or --clip FILE):
- decode only: every frame decoded, none converted (the floor of any sequential pass);
- upload hashing: ``decode_video`` at 1 frame/s (frame PDQ, the sampled pictures, the five
  pHash frames) plus ``fingerprint`` (vPDQ and pHash), against
- every frame: the same pass converting and PDQ-hashing every frame (what a bank
  reference does, and what decoding-then-hashing everything would cost an upload);
- classification at 1 frame/s: the upload hashing plus NudeNet on the sampled frames in
  batches of 16 (``review.video.BATCH``), against classifying every frame.

Each figure is the real-time factor (seconds of video per second of work) and the ratio to
its alternative. PyAV decodes with frame threads (both cores); NudeNet runs one thread
(NUDENET_THREADS=1, as the workers do).

Usage: python bench/video.py [--seconds 30] [--clip FILE] [--repeat 3]
"""

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-throwaway-key")
os.environ.setdefault("NUDENET_THREADS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("REDIS_URL", None)
_TMP = tempfile.mkdtemp(prefix="bench-video-")
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP}/bench.sqlite3"

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")


def make_clip(seconds: int, size=(1280, 720), fps: int = 30) -> bytes:
    """A pan across a photograph, cutting to the next one every 3 s."""
    import av
    import numpy as np
    from PIL import Image
    from skimage import data

    wide = []
    for name in PHOTOS:
        photo = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        wide.append(np.asarray(photo.resize((size[0] * 2, size[1] * 2))))
    out = io.BytesIO()
    target = av.open(out, "w", format="mp4")
    stream = target.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = {"crf": "23", "preset": "veryfast"}
    for i in range(seconds * fps):
        scene = wide[(i // (3 * fps)) % len(wide)]
        step = i % (3 * fps)
        x, y = step * 4, step * 2
        picture = np.ascontiguousarray(scene[y : y + size[1], x : x + size[0]])
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, fps)
        for packet in stream.encode(frame):
            target.mux(packet)
    for packet in stream.encode():
        target.mux(packet)
    target.close()
    return out.getvalue()


def decode_only(data: bytes) -> int:
    import av

    container = av.open(io.BytesIO(data))
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count = sum(1 for _ in container.decode(stream))
    container.close()
    return count


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from hashing.algorithms import fingerprint
    from review.classifiers import get_classifier
    from review.video import BATCH
    from uploads import video

    video.set_limits_hook(lambda: video.VideoLimits(10**9, 3600, 1.0))
    data = args.clip.read_bytes() if args.clip else make_clip(args.seconds)
    info = video.read_header(data, 10**9, 3600)
    duration = info.duration
    nudenet = get_classifier("nudenet")

    t_decode, frames = best(lambda: decode_only(data), args.repeat)
    t_upload, upload = best(
        lambda: fingerprint(video.decode_video(data, sample_fps=1.0), "video", False),
        args.repeat,
    )
    t_every, every = best(
        lambda: fingerprint(video.decode_video(data, every_frame=True), "video", False),
        args.repeat,
    )
    sample = video.decode_video(data, sample_fps=1.0)
    pictures = [image for _, image in sample.sampled]
    nudenet.classify_batch(pictures[:BATCH])  # load the model outside the timing

    def classify_sampled():
        for start in range(0, len(pictures), BATCH):
            nudenet.classify_batch(pictures[start : start + BATCH])

    t_classify, _ = best(classify_sampled, args.repeat)

    # Every frame through the classifier: converted at the same size, batched the same.
    every_sample = video.decode_video(data, sample_fps=float(info.fps or 30))
    all_pictures = [image for _, image in every_sample.sampled]

    def classify_all():
        for start in range(0, len(all_pictures), BATCH):
            nudenet.classify_batch(all_pictures[start : start + BATCH])

    t_classify_all, _ = best(classify_all, 1)
    t_every_sample, _ = best(lambda: video.decode_video(data, sample_fps=30.0), 1)

    def rt(seconds: float) -> str:
        return f"{duration / seconds:.1f}×"

    upload_classify = t_upload + t_classify
    every_classify = t_every_sample + t_classify_all
    rows = [
        ("decode only (every frame, none converted)", t_decode, "floor"),
        ("upload hashing: 1 frame/s converted + vPDQ/pHash", t_upload, "aim ≥ 5×"),
        ("every frame converted + PDQ (bank reference)", t_every, ""),
        ("classification at 1 frame/s (hashing pass + NudeNet)", upload_classify, "aim ≥ 2×"),
        ("classification of every frame (pass + NudeNet)", every_classify, ""),
    ]
    load = os.getloadavg()
    print(f"# Video analysis, {info.width}x{info.height}, {duration:.1f} s at {info.fps} fps")
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {frames} frames, "
        f"{len(upload['vpdq'])} sampled, {len(every['vpdq'])} hashed for a reference; "
        f"best of {args.repeat} (every-frame classification: 1 run)\n"
    )
    print("| path | seconds | real-time factor | note |")
    print("|---|---:|---:|---|")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds:.2f} | {rt(seconds)} | {note} |")
    print(
        f"\nUpload hashing is {t_every / t_upload:.1f}× cheaper than converting and hashing "
        f"every frame; classification at 1 frame/s {every_classify / upload_classify:.1f}× "
        "cheaper than classifying every frame."
    )


if __name__ == "__main__":
    main()
