"""Local NudeNet 3.4 (``320n.onnx``, YOLOv8n) detector, scored into our categories.

Runs the model shipped inside the installed ``nudenet`` wheel through one onnxruntime
session per process (never downloads anything). Pre/post-processing reproduce
``nudenet.NudeDetector.detect`` - verified by tests/review/test_nudenet.py - but read the
PIL image directly (no re-encode) and post-process with numpy instead of a Python loop.

Note: NudeDetector feeds the model BGR (``cv2.imread`` then two channel swaps cancel
out), so we do the same to keep its scores; the model is not very sensitive to it.

Default label -> category table (seeds the policy's label rows, edited in admin after;
category score = max of weight x detection score; the default categories send explicit to
review from 0.30 and flag it from 0.60, suggestive to review from 0.50 and never flag it):

============================  ==========  ======
label                         category    weight
============================  ==========  ======
FEMALE_GENITALIA_EXPOSED      explicit    1.0
MALE_GENITALIA_EXPOSED        explicit    1.0
ANUS_EXPOSED                  explicit    1.0
FEMALE_BREAST_EXPOSED         explicit    1.0
BUTTOCKS_EXPOSED              explicit    1.0
FEMALE_BREAST_COVERED         suggestive  1.0
FEMALE_GENITALIA_COVERED      suggestive  1.0
BUTTOCKS_COVERED              suggestive  1.0
ANUS_COVERED                  suggestive  1.0
MALE_BREAST_EXPOSED           suggestive  0.6
BELLY_EXPOSED                 suggestive  0.5
ARMPITS_EXPOSED               suggestive  0.5
FACE_*, FEET_*, BELLY_COVERED,
ARMPITS_COVERED               neutral     -
============================  ==========  ======

The suggestive score is at least the explicit score (the suggestive category's
``at_least``), so thresholds stay monotonic.

Why these weights, in numbers (default categories):

- Exposed genitalia, anus, female breast and buttocks are explicit at weight 1: a detection
  at 0.30 goes to review, at 0.60 it is flagged. ``MALE_GENITALIA_EXPOSED`` is one of them.
- ``MALE_BREAST_EXPOSED`` (a shirtless man) is at most suggestive, and suggestive is never
  flagged by a score. At weight 0.6 it reaches suggestive review (0.50) from a detection
  score of 0.50 / 0.6 = 0.833: a confident detection (0.9 counts 0.54) is seen by a person,
  a hesitant one (0.82 counts 0.49) is not, nor are the crowds of beach and sport photos
  where the detector is less sure. At the former 0.5 it counted at most 0.50, so it
  reached review only at a detection score of exactly 1.0: in practice never.
- ``BELLY_EXPOSED`` and ``ARMPITS_EXPOSED`` stay at 0.5: common in ordinary photos, they
  count but reach review alone only at a detection score of 1.0.
- Covered intimate parts count in full towards suggestive (review from 0.50).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from django.conf import settings

from review.categories import Detection

from .base import Classifier, ClassifierError, ClassifierResult

# Output order of 320n.onnx (copied from nudenet.nudenet.__labels; a test checks it).
LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
DEFAULT_LABELS = {
    "FEMALE_GENITALIA_EXPOSED": ("explicit", 1.0),
    "MALE_GENITALIA_EXPOSED": ("explicit", 1.0),
    "ANUS_EXPOSED": ("explicit", 1.0),
    "FEMALE_BREAST_EXPOSED": ("explicit", 1.0),
    "BUTTOCKS_EXPOSED": ("explicit", 1.0),
    "FEMALE_BREAST_COVERED": ("suggestive", 1.0),
    "FEMALE_GENITALIA_COVERED": ("suggestive", 1.0),
    "BUTTOCKS_COVERED": ("suggestive", 1.0),
    "ANUS_COVERED": ("suggestive", 1.0),
    # A shirtless man: suggestive review (0.50) from a confident detection (0.834 and up).
    # Was 0.5 until migration review 0006, which moves rows still at 0.5 (see above).
    "MALE_BREAST_EXPOSED": ("suggestive", 0.6),
    # Common in ordinary beach/sport photos: count, but alone reach review only at 1.0.
    "BELLY_EXPOSED": ("suggestive", 0.5),
    "ARMPITS_EXPOSED": ("suggestive", 0.5),
}

INPUT_SIZE = 320
SCORE_THRESHOLD = 0.2  # nudenet's candidate threshold
NMS_SCORE_THRESHOLD = 0.25
NMS_IOU_THRESHOLD = 0.45


def detections_of(found: list[dict]) -> list[Detection]:
    """NudeNet's detections ({"class", "score", "box"}) as labelled detections."""
    return [Detection((det["class"],), float(det["score"])) for det in found]


def model_path() -> Path:
    """The 320n.onnx inside the installed nudenet package (found without importing it)."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.origin:
        raise ClassifierError("nudenet package is not installed")
    return Path(spec.origin).parent / "320n.onnx"


_session_lock = threading.Lock()
_session: ort.InferenceSession | None = None


def get_session() -> ort.InferenceSession:
    """Load the model once per process; onnxruntime sessions are safe to share."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                path = model_path()
                if not path.is_file():
                    raise ClassifierError(f"NudeNet model missing: {path}")
                # Telemetry is off by ORT_DISABLE_TELEMETRY=1 (moderation_site/__init__.py,
                # before onnxruntime loads); this turns off the events the API can.
                ort.disable_telemetry_events()
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = settings.NUDENET_THREADS
                opts.inter_op_num_threads = 1
                _session = ort.InferenceSession(
                    str(path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
    return _session


def preprocess(image, size: int = INPUT_SIZE) -> tuple[np.ndarray, int, int]:
    """PIL image -> (1, 3, size, size) float32 blob, like nudenet's ``_read_image``.

    nudenet pads bottom/right with black to a max(w, h) square, resizes it to size x size
    (cv2 bilinear on uint8, as ``cv2.dnn.blobFromImage`` does) and scales to 0..1 NCHW.
    The square is never made here: the picture, with only the black margin the bilinear
    samples reach, is resized by the square's scale (``fx``/``fy``: the same sample
    positions, so the same pixels) into a black size x size canvas. A 20000 x 1 strip
    made a 1.2 GB square; now the resize reads 20000 x 64 pixels. Returns blob, width,
    height. The PIL -> numpy copy (~3 ms at 1024 px) is the price of not re-encoding.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    rgb = np.asarray(image)
    height, width = rgb.shape[:2]
    side = max(height, width)
    scale = size / side
    # At least one black row/column (the last samples blend the picture with it) and enough
    # for the resize to give one output row/column; never more than the square had.
    reach = -(-side // size) + 1
    bottom = min(side - height, max(1, reach - height))
    right = min(side - width, max(1, reach - width))
    padded = cv2.copyMakeBorder(rgb, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    scaled = cv2.resize(padded, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    resized = np.zeros((size, size, 3), dtype=np.uint8)
    rows, cols = min(size, scaled.shape[0]), min(size, scaled.shape[1])
    resized[:rows, :cols] = scaled[:rows, :cols]
    # Channels resize independently, so swapping to BGR (see module docstring) after
    # the resize gives the same pixels at 1/10 of the cost on a ~1000 px image.
    blob = cv2.dnn.blobFromImage(resized, 1 / 255.0, swapRB=True, crop=False)
    return blob, width, height


def postprocess(output: np.ndarray, width: int, height: int, size: int = INPUT_SIZE):
    """Vectorised ``nudenet._postprocess``: threshold, xywh->corner, scale, clip, NMS."""
    rows = np.asarray(output)[0].T  # (1, 4 + classes, candidates) -> (candidates, ...)
    class_scores = rows[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    best = class_scores[np.arange(len(rows)), class_ids]
    keep = best >= SCORE_THRESHOLD
    if not keep.any():
        return []
    rows, class_ids, best = rows[keep], class_ids[keep], best[keep]

    side = max(width, height)  # == original + padding on both axes
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    x = (cx - w / 2) * side / size
    y = (cy - h / 2) * side / size
    w = w * side / size
    h = h * side / size
    x = np.clip(x, 0, width)
    y = np.clip(y, 0, height)
    w = np.minimum(w, width - x)
    h = np.minimum(h, height - y)
    boxes = np.stack([x, y, w, h], axis=1)

    indices = cv2.dnn.NMSBoxes(
        boxes.tolist(), best.tolist(), NMS_SCORE_THRESHOLD, NMS_IOU_THRESHOLD
    )
    return [
        {
            "class": LABELS[class_ids[i]],
            "score": float(best[i]),
            "box": [int(v) for v in boxes[i]],
        }
        for i in np.asarray(indices, dtype=int).reshape(-1)
    ]


class NudeNetClassifier(Classifier):
    """NudeNet detector; ``raw`` is the detection list (class, score, box x/y/w/h)."""

    name = "nudenet"
    media_kinds = ("image",)
    categories = ("explicit", "suggestive")
    default_labels = DEFAULT_LABELS

    @property
    def session(self) -> ort.InferenceSession:
        return get_session()

    def warm(self) -> None:
        get_session()

    def detect(self, image) -> list[dict]:
        """Detections in nudenet's format, in original-image pixel coordinates."""
        blob, width, height = preprocess(image)
        session = self.session
        try:
            outputs = session.run(None, {session.get_inputs()[0].name: blob})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"NudeNet inference failed: {exc}") from exc
        return postprocess(outputs[0], width, height)

    def classify(self, image) -> ClassifierResult:
        start = time.perf_counter()
        detections = self.detect(image)
        return ClassifierResult(
            provider=self.name,
            detections=detections_of(detections),
            raw=detections,
            elapsed_ms=(time.perf_counter() - start) * 1000,
        )

    def classify_batch(self, images: list) -> list[ClassifierResult]:
        """All frames in one ``session.run`` (the model's batch axis is dynamic); each
        result's ``elapsed_ms`` is its share of the batch."""
        if len(images) == 1:
            return [self.classify(images[0])]
        start = time.perf_counter()
        prepared = [preprocess(image) for image in images]
        blob = np.concatenate([blob for blob, _, _ in prepared])
        session = self.session
        try:
            (output,) = session.run(None, {session.get_inputs()[0].name: blob})[:1]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ClassifierError(f"NudeNet inference failed: {exc}") from exc
        share = (time.perf_counter() - start) * 1000 / len(images)
        results = []
        for i, (_, width, height) in enumerate(prepared):
            found = postprocess(output[i : i + 1], width, height)
            results.append(ClassifierResult(self.name, detections_of(found), found, share))
        return results
