"""GGUF (llama, gemma3) -> model directory in the Optimum / transformers.js layout.

    <out>/config.json  generation_config.json  tokenizer.json  tokenizer_config.json
    <out>/onnx/model.onnx            fp32, the GGUF values dequantized (the reference)
                                     (each graph keeps its weights in <file>_data beside it)
    <out>/onnx/model_quantized.onnx  q8: int8 weight-only MatMulNBits, round-to-nearest
    <out>/onnx/model_q4.onnx         q4: the GGUF's Q4_1/Q8_0 blocks repacked exactly
    <out>/manifest.json              sha256 + size of every file, variants, source

``CONVERTERS`` is what ``ModelStore.pull`` needs to install weights that are not ONNX yet
(``edgellm pull`` passes it; the distribution also declares it as ``edgellm_sdk.converters``
entry points, see edgellm_sdk.models.converters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnx

from ..models.converters import Converter
from ..models.manifest import write_manifest
from .gguf_llama import read_gguf
from .gguf_tokenizer import build_tokenizer, end_of_turn_ids, tokenizer_config
from .onnx_llama import build_llama_onnx, hf_config

VARIANT_FILES = {"fp32": "onnx/model.onnx", "q8": "onnx/model_quantized.onnx", "q4": "onnx/model_q4.onnx"}


def convert_gguf(
    gguf_path: str | Path,
    out_dir: str | Path,
    *,
    variants=("fp32", "q8", "q4"),
    default_variant: str = "q4",
    accuracy_level: int = 4,
    name: str | None = None,
    source: dict | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> Path:
    """Convert ``gguf_path`` into ``out_dir`` (created); returns out_dir."""
    out = Path(out_dir)
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    progress("reading GGUF")
    weights = read_gguf(gguf_path)
    meta, cfg = weights.metadata, weights.config
    eos_ids = end_of_turn_ids(meta)
    eos = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    bos = int(meta.get("tokenizer.ggml.bos_token_id", eos_ids[0]))
    pad = int(meta.get("tokenizer.ggml.padding_token_id", eos_ids[0]))

    progress("writing tokenizer")
    build_tokenizer(meta).save(str(out / "tokenizer.json"))
    _dump(out / "tokenizer_config.json", tokenizer_config(meta))
    _dump(out / "config.json", hf_config(cfg, bos, eos, pad))
    _dump(
        out / "generation_config.json",
        {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad, "do_sample": False},
    )
    for variant in variants:
        progress(f"building {variant} graph")
        model = build_llama_onnx(weights, variant, accuracy_level)
        # Weights in a side file (transformers.js naming): ORT maps it instead of parsing a
        # protobuf copy, which lowers peak RSS at load by ~20 MB for the q4 variant.
        path = out / VARIANT_FILES[variant]
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + "_data",
            size_threshold=1024,
        )
        del model
    progress("hashing files")
    write_manifest(
        out,
        name=name or Path(gguf_path).stem,
        variants={v: VARIANT_FILES[v] for v in variants},
        default_variant=default_variant,
        source={
            "gguf": Path(gguf_path).name,
            "converter": "edgellm_sdk.toolchain.convert",
            "accuracy_level": accuracy_level,
            **(source or {}),
        },
    )
    return out


def convert_sentence_transformer(
    src: str | Path,
    out_dir: str | Path,
    *,
    name: str,
    source: dict | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> Path:
    """A sentence-transformers directory (all-MiniLM-L6-v2) -> an embedding model directory."""
    from .bert_convert import convert_sentence_transformer as convert

    progress("building embedding graph")
    return convert(src, out_dir, name=name, source=source)


CONVERTERS: dict[str, Converter] = {"gguf": convert_gguf, "sentence-transformer": convert_sentence_transformer}


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
