"""Dense weights of a model directory, and writing a model directory from weights.

Every toolchain command works on ``LlamaWeights`` with fp32 matrices: it reads them back from
the fp32 graph (``onnx/model.onnx``) our converter writes, changes them (quantize, prune,
fine-tune, distill) and writes a model directory or a new variant of one. Names of the
linear layers are the graph's: ``layers.{i}.qkv_proj | o_proj | gate_up_proj | down_proj``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ToolchainError
from ..models.manifest import Manifest, write_manifest
from .gguf_llama import LlamaConfig, LlamaLayer, LlamaWeights, Matrix, QType
from .onnx_llama import Adapters, build_llama_onnx, hf_config
from .quantspec import QuantSpec

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")
PRESET_FILES = {"fp32": "onnx/model.onnx", "q8": "onnx/model_quantized.onnx", "q4": "onnx/model_q4.onnx"}


def dense(array: np.ndarray) -> Matrix:
    """An fp32 [out, in] matrix."""
    array = np.ascontiguousarray(array, np.float32)
    return Matrix(QType.F32, array, array.shape[1])


def model_dir(model: str | Path) -> Manifest:
    """A model name in the store or a directory path -> its manifest."""
    from ..models.store import ModelStore

    return ModelStore().resolve(model)


TRAINABLE_MODEL_TYPES = ("llama",)


def require_llama(cfg_json: dict, root: Path) -> None:
    """The toolchain's torch model and weight reader know llama only: refuse others clearly
    (a gemma3 model read as llama would train or quantize silently wrong)."""
    model_type = cfg_json.get("model_type", "llama")
    if model_type not in TRAINABLE_MODEL_TYPES:
        raise ToolchainError(
            f"{root.name} is a {model_type!r} model; quantize, prune, finetune, distill and federated "
            f"training support {', '.join(TRAINABLE_MODEL_TYPES)} models only. Run it with the variants "
            "`edgellm pull` made (q4 = the GGUF's own blocks, q8, fp32)"
        )


def load_weights(model: str | Path | Manifest) -> LlamaWeights:
    """fp32 weights of a model converted by edgellm (reads its fp32 variant)."""
    manifest = model if isinstance(model, Manifest) else model_dir(model)
    if "fp32" not in manifest.variants:
        raise ToolchainError(
            f"{manifest.root} has no fp32 variant; the toolchain reads weights from it. "
            "Pull the model again from its GGUF (`edgellm pull file.gguf`) to get one"
        )
    path = manifest.variant_path("fp32")
    cfg_json = json.loads((manifest.root / "config.json").read_text())
    require_llama(cfg_json, manifest.root)
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:
        raise ToolchainError(f"cannot read {path}: {e}") from e
    t = {init.name: init for init in graph.initializer}

    def get(name: str) -> np.ndarray:
        if name not in t:
            raise ToolchainError(f"{path} has no initializer {name!r}: not a graph written by edgellm's converter")
        return numpy_helper.to_array(t[name]).astype(np.float32)

    heads, kv_heads = int(cfg_json["num_attention_heads"]), int(cfg_json["num_key_value_heads"])
    hidden = int(cfg_json["hidden_size"])
    head_dim = int(cfg_json.get("head_dim") or hidden // heads)
    layers = []
    for i in range(int(cfg_json["num_hidden_layers"])):
        p = f"layers.{i}"
        qkv = get(p + ".qkv_proj.weight").T  # stored [in, out]
        q, k, v = np.split(qkv, [heads * head_dim, (heads + kv_heads) * head_dim])
        gate, up = np.split(get(p + ".gate_up_proj.weight").T, 2)
        layers.append(
            LlamaLayer(
                attn_norm=get(p + ".attn_norm"),
                q=dense(q),
                k=dense(k),
                v=dense(v),
                o=dense(get(p + ".o_proj.weight").T),
                ffn_norm=get(p + ".ffn_norm"),
                gate=dense(gate),
                up=dense(up),
                down=dense(get(p + ".down_proj.weight").T),
            )
        )
    tied = bool(cfg_json.get("tie_word_embeddings", True))
    embed = dense(get("embed.weight"))
    cfg = LlamaConfig(
        vocab_size=int(cfg_json["vocab_size"]),
        hidden_size=hidden,
        intermediate_size=int(cfg_json["intermediate_size"]),
        num_layers=len(layers),
        num_heads=heads,
        num_kv_heads=kv_heads,
        rope_theta=float(cfg_json["rope_theta"]),
        rms_eps=float(cfg_json["rms_norm_eps"]),
        max_position=int(cfg_json["max_position_embeddings"]),
        tie_embeddings=tied,
    )
    lm_head = embed if tied else dense(get("lm_head.weight").T)
    return LlamaWeights(cfg, embed, layers, get("final_norm"), lm_head, {"source_dir": str(manifest.root)})


def parameter_count(w: LlamaWeights) -> int:
    """Parameters of the model (the tied embedding counted once)."""
    mats = [w.embed] + ([] if w.config.tie_embeddings else [w.lm_head])
    for layer in w.layers:
        mats += [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]
    vectors = sum(layer.attn_norm.size + layer.ffn_norm.size for layer in w.layers) + w.final_norm.size
    return sum(m.rows * m.cols for m in mats) + int(vectors)


def write_variant(
    weights: LlamaWeights,
    root: Path,
    rel_path: str,
    spec: str | QuantSpec,
    accuracy_level: int = 4,
    adapters: Adapters | None = None,
) -> None:
    """Build one graph of ``weights`` into ``root/rel_path`` (weights in ``<file>_data`` beside it)."""
    model = build_llama_onnx(weights, spec, accuracy_level, adapters)
    path = root / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + "_data",
        size_threshold=1024,
    )


def save_model(
    weights: LlamaWeights,
    out_dir: str | Path,
    *,
    tokenizer_from: str | Path,
    name: str,
    variants: Iterable[str] = ("fp32", "q8"),
    default_variant: str | None = None,
    source: dict | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> Manifest:
    """Write ``weights`` as a model directory the Engine loads: config, tokenizer, graphs, manifest.

    ``variants`` are presets (fp32, q8; q4 needs GGUF blocks, so quantize dense weights with
    ``add_variant`` instead). The directory is written next to its final place and renamed in.
    """
    out = Path(out_dir)
    variants = list(variants)
    bad = [v for v in variants if v not in ("fp32", "q8")]
    if bad:
        raise ValueError(f"save_model writes the fp32 and q8 presets; use add_variant for {bad}")
    tmp = out.with_name(f".{out.name}.writing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        src = Path(tokenizer_from)
        for f in TOKENIZER_FILES:
            if (src / f).is_file():
                shutil.copy2(src / f, tmp / f)
        gen = json.loads((src / "config.json").read_text())
        config = hf_config(
            weights.config, gen.get("bos_token_id", 0), gen.get("eos_token_id", 0), gen.get("pad_token_id", 0)
        )
        config["intermediate_size"] = max(layer.gate.rows for layer in weights.layers)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for v in variants:
            progress(f"building {v} graph")
            write_variant(weights, tmp, PRESET_FILES[v], v)
        progress("hashing files")
        write_manifest(
            tmp,
            name=name,
            variants={v: PRESET_FILES[v] for v in variants},
            default_variant=default_variant or variants[-1],
            source={**(source or {}), "parameters": parameter_count(weights)},
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Manifest.load(out)


def add_variant(
    manifest: Manifest,
    variant: str,
    spec: QuantSpec,
    *,
    weights: LlamaWeights | None = None,
    accuracy_level: int = 4,
    make_default: bool = False,
    overwrite: bool = False,
    adapters: Adapters | None = None,
    adapter_info: dict | None = None,
) -> Manifest:
    """Quantize the model's fp32 weights (or ``weights``) with ``spec`` into a new variant
    ``onnx/model_<variant>.onnx``, with unmerged LoRA ``adapters`` (described by ``adapter_info``)."""
    if not variant.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"variant name {variant!r} may use letters, digits, '-' and '_' only")
    manifest = Manifest.load(manifest.root)  # the caller's copy may predate another variant
    if variant in manifest.variants and not overwrite:
        raise ToolchainError(
            f"{manifest.root} already has a variant {variant!r}; choose another --name or pass --overwrite"
        )
    weights = weights or load_weights(manifest)
    rel = PRESET_FILES.get(variant) or f"onnx/model_{variant}.onnx"
    write_variant(weights, manifest.root, rel, spec, accuracy_level, adapters)
    info = {**spec.describe(), "accuracy_level": accuracy_level}
    info |= {"lora_adapter": adapter_info or {"linears": len(adapters)}} if adapters else {}
    source = {**manifest.source, "variants": {**manifest.source.get("variants", {}), variant: info}}
    return write_manifest(
        manifest.root,
        name=manifest.name,
        variants={**manifest.variants, variant: rel},
        default_variant=variant if make_default else manifest.default_variant,
        source=source,
    )


def output_dir(out: str | Path, store=None) -> Path:
    """``--out``: a directory (a Path, or text with a '/' or starting with '.'), else a name in the store."""
    text = str(out)
    if isinstance(out, Path) or "/" in text or text.startswith("."):
        return Path(text).expanduser()
    from ..models.store import ModelStore

    return (store or ModelStore()).path(text)


def work_dir_for(out: Path) -> Path:
    """Where training for the model directory ``out`` keeps its checkpoints and caches by default."""
    return out.with_name(out.name + ".train")
