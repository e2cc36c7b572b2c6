"""Celery's prefork workers fork after the parent may have classified: children must work."""

import multiprocessing as mp

from PIL import Image

from review.classifiers import run_classifiers


def _classify_in_child(queue):
    results, errors = run_classifiers(["nudenet"], Image.new("RGB", (64, 64)), timeout_s=20)
    queue.put((len(results), errors))


def test_a_forked_child_can_classify_after_the_parent_did():
    results, errors = run_classifiers(["nudenet"], Image.new("RGB", (64, 64)))
    assert len(results) == 1 and not errors  # the parent's pool has live threads now
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_classify_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (1, {})
