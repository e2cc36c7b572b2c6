"""Name -> provider lookup, one instance per process, and time-boxed fan-out.

Providers are imported lazily so a process that only runs NudeNet never imports boto3.
The web process imports a provider's module only to read its declarations (media kinds,
categories, default labels) when the policy is seeded or edited; serving pages and the
API imports neither onnxruntime nor boto3.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings

from .base import Classifier, ClassifierError, ClassifierResult

log = logging.getLogger(__name__)

PROVIDERS = {
    "nudenet": "review.classifiers.nudenet.NudeNetClassifier",
    "rekognition": "review.classifiers.rekognition.RekognitionClassifier",
    "textmodel": "review.classifiers.textmodel.TextModelClassifier",
}

_lock = threading.Lock()
_instances: dict[str, Classifier] = {}
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The fan-out pool of this process, made on first use."""
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=settings.CLASSIFIER_WORKERS,
                    thread_name_prefix="classifier",
                )
    return _executor


def _after_fork_in_child() -> None:
    """A forked child (celery prefork, multiprocessing) inherits the pool's bookkeeping but
    not its threads: work submitted there would wait forever. Start afresh."""
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def provider_class(name: str) -> type[Classifier]:
    """The provider's class, its module imported on first use (its declarations: media
    kinds, default labels, are class attributes)."""
    try:
        path = PROVIDERS[name]
    except KeyError:
        raise ClassifierError(f"unknown classifier {name!r}") from None
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ClassifierError(f"cannot load classifier {name!r}: {exc}") from exc


def get_classifier(name: str) -> Classifier:
    """Return the process-wide instance for `name`, importing its module on first use."""
    inst = _instances.get(name)
    if inst is not None:
        return inst
    with _lock:
        inst = _instances.get(name)
        if inst is None:
            inst = _instances[name] = provider_class(name)()
    return inst


def warm_up(names) -> None:
    """Make and load the named providers now (a worker process at start), so the first
    item does not wait for the models: a cold NudeNet and text model held the first
    Slack removal of a run at 4 s against 0.4 s for the next ones (bench/slack.py).
    A provider that fails to load is logged and left to fail again, with its reason, on
    the item that needs it."""
    for name in names:
        try:
            get_classifier(name).warm()
        except Exception:  # noqa: BLE001 - a warm-up never stops a worker
            log.warning("could not load classifier %s ahead of the first item", name, exc_info=True)


def default_label_map(names=None) -> dict:
    """The providers' own default label tables as a LabelMap (review.categories), without
    the database: what a new policy is seeded with."""
    return {
        name: {
            label.lower(): [(category, weight)]
            for label, (category, weight) in provider_class(name).default_labels.items()
        }
        for name in (names or PROVIDERS)
    }


def providers_for(media_kind: str, names: list[str]) -> list[str]:
    """Of the named providers, those that accept the kind (unknown names stay in, so that
    running them reports the error instead of silently skipping it)."""
    keep = []
    for name in names:
        try:
            accepts = media_kind in provider_class(name).media_kinds
        except ClassifierError:
            accepts = True
        if accepts:
            keep.append(name)
    return keep


def register(name: str, path: str) -> None:
    """Add a provider by dotted path (a plug-in, or a test's fake)."""
    PROVIDERS[name] = path


def unregister(name: str) -> None:
    PROVIDERS.pop(name, None)
    with _lock:
        _instances.pop(name, None)


def run_classifiers(
    names: list[str], image, timeout_s: float = 30.0
) -> tuple[list[ClassifierResult], dict[str, str]]:
    """Run providers concurrently on one subject; failures and overruns go to errors,
    never raise (``classify_frames`` for several)."""
    per_frame, errors = classify_frames(names, [image], timeout_s)
    return per_frame[0], errors


def classify_frames(
    names: list[str], subjects: list, timeout_s: float = 30.0, policy=None
) -> tuple[list[list[ClassifierResult]], dict[str, str]]:
    """Each provider classifies all subjects in one batch, providers concurrently.

    Returns the results per subject (each a list with one result per provider that
    succeeded) and the errors per provider. `timeout_s` is one deadline for the whole
    call. A timed-out provider keeps its worker thread until it returns (threads cannot
    be killed), so providers should also bound their own I/O.
    """
    per_frame: list[list[ClassifierResult]] = [[] for _ in subjects]
    errors: dict[str, str] = {}
    try:
        for subject in subjects:
            load = getattr(subject, "load", None)  # PIL: decode once here, not per thread
            if load is not None:
                load()
    except Exception as exc:  # noqa: BLE001 - a broken image fails every provider
        return per_frame, {name: f"image load failed: {exc}" for name in names}

    deadline = time.monotonic() + timeout_s
    futures: dict[str, Future] = {}
    for name in dict.fromkeys(names):  # de-duplicate, keep order
        try:
            provider = get_classifier(name)
            prepared = provider.prepare(list(subjects), policy)  # here: it may read rows
            # In the caller's context: the provider's log lines keep the analysis's ids.
            run = contextvars.copy_context().run
            futures[name] = _pool().submit(run, provider.classify_batch, prepared)
        except Exception as exc:  # noqa: BLE001
            errors[name] = _describe(exc)

    for name, fut in futures.items():
        try:
            batch = fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError as exc:
            if fut.done():  # the provider itself raised TimeoutError
                errors[name] = _describe(exc)
            else:
                fut.cancel()
                errors[name] = f"timed out after {timeout_s:g}s"
            continue
        except Exception as exc:  # noqa: BLE001
            errors[name] = _describe(exc)
            continue
        if len(batch) != len(subjects):
            errors[name] = f"returned {len(batch)} results for {len(subjects)} frames"
            continue
        for results, result in zip(per_frame, batch, strict=True):
            results.append(result)
    for name, msg in errors.items():
        log.warning("classifier %s failed: %s", name, msg)
    return per_frame, errors


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClassifierError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
