"""sentence-transformers directory (config.json, model.safetensors, tokenizer.json) -> our layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx

from ..models.manifest import write_manifest
from .bert_onnx import build_bert_onnx, read_safetensors

MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on inputs up to 256 word pieces


def convert_sentence_transformer(src: str | Path, out: str | Path, *, name: str, source: dict | None = None) -> Path:
    src, out = Path(src), Path(out)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    pooling = src / "1_Pooling" / "config.json"
    if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
        raise ValueError(f"{src} does not use mean pooling; only mean-pooled models are supported")
    model = build_bert_onnx(read_safetensors(src / "model.safetensors"), config)
    onnx.save_model(
        model,
        str(out / "onnx/model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx_data",
        size_threshold=1024,
    )
    tokenizer = json.loads((src / "tokenizer.json").read_text())
    tokenizer["padding"] = None  # the Embedder pads batches itself
    tokenizer["truncation"] = {"direction": "Right", "max_length": MAX_TOKENS, "strategy": "LongestFirst", "stride": 0}
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    for extra in ("config.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / extra).is_file():
            shutil.copy(src / extra, out / extra)
    write_manifest(
        out,
        name=name,
        variants={"fp32": "onnx/model.onnx"},
        default_variant="fp32",
        source={"kind": "sentence-embedding", "dimension": config["hidden_size"], **(source or {})},
    )
    return out
