"""Benchmark of animated images: what judging every stretch of an animation costs.

Prints a markdown table for GIFs of 8 frames (320x240) and 40 frames (480x360), made from
scikit-image photographs:
- sample: decoding the sampled frames (all up to 8, else 8 spread evenly), each composed
  as a viewer shows it;
- hash: every algorithm on every sampled frame, with mirrors;
- classify: NudeNet on the sampled frames in one batch (one ``session.run``), against one
  call per frame (the obvious alternative), and the ratio;
- analysis: ``analyse_item`` end to end (read, sample, hash, match, classify, record),
  against a still JPEG of the same size in the same run.

Usage: python bench/animation.py [--repeat 10]
Uses a temporary SQLite file; tasks in-process.
"""

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-throwaway-key")  # DEBUG off needs one
os.environ.setdefault("NUDENET_THREADS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("REDIS_URL", None)
_TMP = tempfile.mkdtemp(prefix="bench-animation-")
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP}/bench.sqlite3"
os.environ["PRIVATE_MEDIA_ROOT"] = f"{_TMP}/private"

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")
CASES = {"8 frames 320x240": (8, (320, 240)), "40 frames 480x360": (40, (480, 360))}


def frames_of(count, size):
    import numpy as np
    from PIL import Image
    from skimage import data

    out = []
    for i in range(count):
        photo = np.asarray(getattr(data, PHOTOS[i % len(PHOTOS)])())
        image = Image.fromarray(photo).convert("RGB").resize(size)
        out.append(image.rotate(i % 5))  # no two frames alike: GIF writers merge repeats
    return out


def gif(frames) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def jpeg(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def median_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from hashing.algorithms import fingerprint
    from moderation_site.celery import app
    from review import pipeline
    from review.classifiers import get_classifier
    from review.models import Analysis
    from uploads.intake import ingest_bytes
    from uploads.kinds import sample_frames

    app.conf.task_always_eager = True
    user = User.objects.create(username="bench")
    nudenet = get_classifier("nudenet")
    rows = []
    for label, (count, size) in CASES.items():
        frames = frames_of(count, size)
        data = gif(frames)
        sampled = sample_frames(data)
        subjects = sampled.subjects
        nudenet.classify_batch(subjects)  # warm the session
        sample_ms = median_ms(lambda d=data: sample_frames(d), args.repeat)
        hash_ms = median_ms(lambda s=subjects: [fingerprint(x) for x in s], args.repeat)
        batch_ms = median_ms(lambda s=subjects: nudenet.classify_batch(s), args.repeat)
        loop_ms = median_ms(lambda s=subjects: [nudenet.classify(x) for x in s], args.repeat)

        def analysis(payload):
            item = ingest_bytes(payload, name="x", source="web", uploader=user)
            found = pipeline.analyse_item(item.pk) or Analysis.objects.get(item=item)
            return found.timings["total"]

        totals, stills = [], []
        for i in range(args.repeat):
            # A fresh frame each time, so no upload is an exact copy of an earlier one.
            varied = [frames[0].rotate(7 + i), *frames[1:]]
            totals.append(analysis(gif(varied)))
            stills.append(analysis(jpeg(varied[0])))
        rows.append(
            (
                label,
                len(subjects),
                sample_ms,
                hash_ms,
                batch_ms,
                loop_ms,
                statistics.median(totals),
                statistics.median(stills),
            )
        )

    load = os.getloadavg()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, NUDENET_THREADS={os.environ['NUDENET_THREADS']}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; median of {args.repeat}"
    )
    print()
    print(
        "| animation | frames sampled | sample ms | hash ms | classify ms, one batch "
        "(per frame, ratio) | analysis ms (a still of the same size) |"
    )
    print("|---|---:|---:|---:|---|---|")
    for label, n, sample_ms, hash_ms, batch_ms, loop_ms, total, still in rows:
        print(
            f"| {label} | {n} | {sample_ms:.1f} | {hash_ms:.1f} | {batch_ms:.1f} ({loop_ms:.1f}, "
            f"{loop_ms / batch_ms:.2f}x) | {total:.1f} ({still:.1f}) |"
        )


if __name__ == "__main__":
    main()
