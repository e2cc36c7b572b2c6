"""Benchmark of the image pipeline: ours against a naive baseline, in the same run.

Prints a markdown table for a 1024x768 and a 4000x3000 JPEG:
- decode+hash: one draft-mode decode shared by the five hashes, vs a full decode per hash;
- classify: the process-wide NudeNet session, vs a new NudeDetector per image;
- end to end: upload request (Django test client) to stored decision, tasks in-process;
- images/s with 1 and 2 worker processes (intake + analysis + DB writes), vs the naive
  per-image work (naive hashing + a new model session) in as many processes;
- overhead: end-to-end throughput relative to hashing plus inference alone;
- public copy (made in the analysis, before the verdict): ours (a JPEG draft-decoded at the
  smallest DCT scale that still fills 2048 px, no whole-picture copy to turn it upright),
  vs the whole-picture rendition it replaced (exif_transpose + thumbnail), and what a copy
  decoded at half scale would cost (2000 px for 4000x3000: below the public size).

Usage: python bench/pipeline.py [--images 24] [--save]
Uses DATABASE_URL when set (e.g. PostgreSQL), else a temporary SQLite file.
"""

import argparse
import io
import multiprocessing as mp
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
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # the test client speaks plain http
os.environ.setdefault("NUDENET_THREADS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("REDIS_URL", None)  # tasks in-process: we measure the work, not a broker
_TMP = tempfile.mkdtemp(prefix="bench-pipeline-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_TMP}/bench.sqlite3")
os.environ["PRIVATE_MEDIA_ROOT"] = f"{_TMP}/private"

SIZES = {"1024x768": (1024, 768), "4000x3000": (4000, 3000)}
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")


def make_jpegs(size, count):
    """Distinct real photographs (scikit-image), resized, as JPEG bytes."""
    import numpy as np
    from PIL import Image
    from skimage import data

    out = []
    for i in range(count):
        img = Image.fromarray(np.asarray(getattr(data, PHOTOS[i % len(PHOTOS)])())).convert("RGB")
        img = img.resize(size)
        if i >= len(PHOTOS):  # vary the pixels so no two uploads are identical
            img = img.rotate(i % 7 + 1)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def naive_hash(data: bytes):
    """Full decode for each hash, as the old systems did."""
    import imagehash
    import numpy as np
    import pdqhash
    from PIL import Image

    for func in (imagehash.average_hash, imagehash.dhash, imagehash.phash_simple, imagehash.phash):
        func(Image.open(io.BytesIO(data)))
    pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def naive_classify(data: bytes):
    from nudenet import NudeDetector

    return NudeDetector().detect(data)


def our_hash(data: bytes):
    from hashing.algorithms import fingerprint
    from uploads.kinds import open_for_hashing

    image = open_for_hashing(data)
    return image, fingerprint(image)


def our_classify(image):
    from review.classifiers import get_classifier

    return get_classifier("nudenet").classify(image)


def our_public_copy(data: bytes):
    from uploads.renditions import render_public

    return render_public(data, "image/jpeg")


def whole_public_copy(data: bytes):
    """The rendition before: a square draft request, exif_transpose (a copy of the whole
    picture even when upright) and thumbnail."""
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(data))
    image.draft(image.mode, (2048, 2048))
    image = ImageOps.exif_transpose(image)
    image.thumbnail((2048, 2048))
    image.info = {}
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def half_scale_copy(data: bytes):
    """A copy decoded at half scale, whatever its size (2000 px for 4000x3000)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft(image.mode, (image.width // 2, image.height // 2))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def timed(fn, items, repeat=1, clock=time.perf_counter):
    samples = []
    for _ in range(repeat):
        for x in items:
            t = clock()
            fn(x)
            samples.append((clock() - t) * 1000)
    return statistics.median(samples)


def setup_django(migrate=False):
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _worker_init():
    setup_django()
    from django.db import connection

    connection.close()
    our_classify(our_hash(make_jpegs((64, 48), 1)[0])[0])  # load the model once


def _ours_end_to_end(data: bytes):
    from accounts.models import User
    from review.pipeline import analyse_item
    from uploads.intake import ingest_bytes

    user = User.objects.get(username="bench")
    item = ingest_bytes(data, name="b.jpg", source="web", uploader=user)
    analyse_item(item.pk)
    return item.pk


def _ours_alone(data: bytes):
    our_classify(our_hash(data)[0])


def _naive_alone(data: bytes):
    naive_hash(data)
    naive_classify(data)


def throughput(fn, images, processes):
    ctx = mp.get_context("fork")
    with ctx.Pool(processes, initializer=_worker_init) as pool:
        pool.map(_noop, range(processes))  # workers started and warmed
        t = time.perf_counter()
        pool.map(fn, images, chunksize=1)
        return len(images) / (time.perf_counter() - t)


def _noop(_):
    return None


def end_to_end_request(images):
    """Upload request → stored decision, through the real view (tasks in-process)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.test.utils import setup_test_environment

    from accounts.models import User
    from uploads.models import MediaItem

    try:
        setup_test_environment()  # lets the test client accept "testserver"
    except RuntimeError:
        pass  # already set up by an earlier image size
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    samples = []
    for i, data in enumerate(images):
        t = time.perf_counter()
        response = client.post(
            "/uploads/submit/",
            {"files": [SimpleUploadedFile(f"{i}.jpg", data)]},
            HTTP_ACCEPT="application/json",
        )
        item_id = response.json()["items"][0]["id"]
        status = MediaItem.objects.values_list("status", flat=True).get(uuid=item_id)
        assert status != "processing", "decision not stored"
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="images per throughput run")
    parser.add_argument("--save", action="store_true", help="write bench/results/pipeline.md")
    args = parser.parse_args()

    setup_django(migrate=True)
    from django.conf import settings

    from accounts.models import User

    User.objects.get_or_create(username="bench")
    our_classify(our_hash(make_jpegs((64, 48), 1)[0])[0])  # warm the model

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for label, size in SIZES.items():
        n = args.images if size[0] < 2000 else max(6, args.images // 4)
        images = make_jpegs(size, n)
        sample = images[: min(6, n)]
        hash_ours = timed(our_hash, sample)
        hash_naive = timed(naive_hash, sample)
        decoded = [our_hash(d)[0] for d in sample]
        cls_ours = timed(our_classify, decoded)
        cls_naive = timed(naive_classify, sample[:3])
        e2e = end_to_end_request(sample)
        copies = tuple(
            timed(fn, sample, repeat=3, clock=time.process_time)  # CPU: the machine is shared
            for fn in (our_public_copy, whole_public_copy, half_scale_copy)
        )
        tput = {}
        for p in (1, 2):
            from django.db import connection

            connection.close()  # no shared connection across fork
            tput[("ours", p)] = throughput(_ours_end_to_end, images, p)
            tput[("alone", p)] = throughput(_ours_alone, images, p)
            tput[("naive", p)] = throughput(_naive_alone, images[: max(4, n // 2)], p)
        rows.append((label, hash_ours, hash_naive, cls_ours, cls_naive, e2e, tput, copies))

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        f", database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"NUDENET_THREADS={os.environ['NUDENET_THREADS']}",
        "",
        "| image | decode+hash ms (naive, ratio) | classify ms (naive, ratio) "
        "| upload→decision ms | img/s 1 proc (naive) | img/s 2 proc (naive) "
        "| vs naive @2 | e2e / (hash+infer) @2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, h, hn, c, cn, e2e, t, _ in rows:
        lines.append(
            f"| {label} | {h:.1f} ({hn:.1f}, {hn / h:.1f}x) | {c:.1f} ({cn:.1f}, {cn / c:.1f}x) "
            f"| {e2e:.1f} | {t[('ours', 1)]:.1f} ({t[('naive', 1)]:.1f}) "
            f"| {t[('ours', 2)]:.1f} ({t[('naive', 2)]:.1f}) "
            f"| {t[('ours', 2)] / t[('naive', 2)]:.1f}x "
            f"| {t[('alone', 2)] / t[('ours', 2)]:.2f}x |"
        )
    lines += [
        "",
        "| image | public copy CPU ms | whole-picture rendition (ratio) | half-scale decode |",
        "|---|---|---|---|",
    ]
    for label, *_, (ours, whole, half) in rows:
        lines.append(f"| {label} | {ours:.1f} | {whole:.1f} ({whole / ours:.2f}x) | {half:.1f} |")
    lines += ["", f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    table = "\n".join(lines)
    print(table)
    if args.save:
        out = ROOT / "bench" / "results" / "pipeline.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")


if __name__ == "__main__":
    main()
