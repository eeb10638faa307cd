"""Read a llama-architecture GGUF file into a config and per-tensor weights.

Quantized matrices are kept as their raw GGUF blocks so variants can be packed
losslessly; ``dense()`` dequantizes on demand. Row order is Hugging Face's: llama.cpp
permutes the rows of attn_q/attn_k for its RoPE layout, and we undo that here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConversionError

try:
    import gguf
    from gguf.quants import dequantize
except ImportError as e:  # pragma: no cover - exercised only without the extra
    from ..errors import MissingDependency

    raise MissingDependency("gguf", "tools") from e

QType = gguf.GGMLQuantizationType
SUPPORTED_QTYPES = {QType.F32, QType.F16, QType.Q8_0, QType.Q4_1}


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    rope_theta: float
    rms_eps: float
    max_position: int
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass
class Matrix:
    """A [rows=out, cols=in] weight matrix, raw GGUF blocks when quantized."""

    qtype: QType
    raw: np.ndarray  # F32/F16: values [out, in]; quantized: uint8 [out, bytes_per_row]
    cols: int

    @property
    def rows(self) -> int:
        return self.raw.shape[0]

    def dense(self) -> np.ndarray:
        if self.qtype in (QType.F32, QType.F16):
            return np.asarray(self.raw, dtype=np.float32)
        return dequantize(self.raw, self.qtype).astype(np.float32).reshape(self.rows, self.cols)

    def permute_rows(self, order: np.ndarray) -> Matrix:
        return Matrix(self.qtype, self.raw[order], self.cols)

    @staticmethod
    def concat(parts: list[Matrix]) -> Matrix:
        if len({p.qtype for p in parts}) != 1:
            dense = np.concatenate([p.dense() for p in parts])
            return Matrix(QType.F32, dense, parts[0].cols)
        return Matrix(parts[0].qtype, np.concatenate([p.raw for p in parts]), parts[0].cols)


@dataclass
class LlamaLayer:
    attn_norm: np.ndarray
    q: Matrix
    k: Matrix
    v: Matrix
    o: Matrix
    ffn_norm: np.ndarray
    gate: Matrix
    up: Matrix
    down: Matrix


@dataclass
class LlamaWeights:
    config: LlamaConfig
    embed: Matrix  # [vocab, hidden]
    layers: list[LlamaLayer]
    final_norm: np.ndarray
    lm_head: Matrix  # same object as embed when tied
    metadata: dict  # tokenizer.* and general.* GGUF fields


def _rope_unpermute_order(rows: int, n_head: int) -> np.ndarray:
    """Row order that undoes llama.cpp's Q/K permutation (HF rotate-half layout)."""
    idx = np.arange(rows)
    half = rows // n_head // 2
    return idx.reshape(n_head, half, 2).swapaxes(1, 2).reshape(rows)


def _field(reader: gguf.GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def read_gguf(path: str | Path) -> LlamaWeights:
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"GGUF file not found: {path}")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as e:
        raise ConversionError(f"{path} is not a readable GGUF file: {e}") from e
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ConversionError(f"{path.name}: architecture {arch!r} is not supported (only 'llama')")

    def num(key: str, default=None):
        value = _field(reader, f"llama.{key}", default)
        if value is None:
            raise ConversionError(f"{path.name}: missing GGUF field llama.{key}")
        return value

    tensors = {t.name: t for t in reader.tensors}

    def matrix(name: str) -> Matrix:
        t = tensors.get(name)
        if t is None:
            raise ConversionError(f"{path.name}: missing tensor {name}")
        if t.tensor_type not in SUPPORTED_QTYPES:
            raise ConversionError(
                f"{path.name}: tensor {name} has type {t.tensor_type.name}; supported: "
                + ", ".join(q.name for q in SUPPORTED_QTYPES)
            )
        cols = int(t.shape[0])  # GGUF shape is [in, out]
        return Matrix(t.tensor_type, np.array(t.data), cols)

    def vector(name: str) -> np.ndarray:
        return matrix(name).dense().reshape(-1)

    vocab = len(_field(reader, "tokenizer.ggml.tokens", []) or []) or int(num("vocab_size"))
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=int(num("embedding_length")),
        intermediate_size=int(num("feed_forward_length")),
        num_layers=int(num("block_count")),
        num_heads=int(num("attention.head_count")),
        num_kv_heads=int(num("attention.head_count_kv", num("attention.head_count"))),
        rope_theta=float(num("rope.freq_base", 10000.0)),
        rms_eps=float(num("attention.layer_norm_rms_epsilon", 1e-5)),
        max_position=int(num("context_length", 2048)),
        tie_embeddings="output.weight" not in tensors,
    )
    q_order = _rope_unpermute_order(cfg.hidden_size, cfg.num_heads)
    k_order = _rope_unpermute_order(cfg.num_kv_heads * cfg.head_dim, cfg.num_kv_heads)
    layers = []
    for i in range(cfg.num_layers):
        p = f"blk.{i}."
        layers.append(
            LlamaLayer(
                attn_norm=vector(p + "attn_norm.weight"),
                q=matrix(p + "attn_q.weight").permute_rows(q_order),
                k=matrix(p + "attn_k.weight").permute_rows(k_order),
                v=matrix(p + "attn_v.weight"),
                o=matrix(p + "attn_output.weight"),
                ffn_norm=vector(p + "ffn_norm.weight"),
                gate=matrix(p + "ffn_gate.weight"),
                up=matrix(p + "ffn_up.weight"),
                down=matrix(p + "ffn_down.weight"),
            )
        )
    embed = matrix("token_embd.weight")
    if embed.rows != cfg.vocab_size:
        raise ConversionError(
            f"{path.name}: token_embd has {embed.rows} rows but the vocabulary has {cfg.vocab_size} tokens"
        )
    metadata = {
        k: _field(reader, k)
        for k in reader.fields
        if k.startswith(("tokenizer.", "general.")) and k not in ("general.alignment",)
    }
    return LlamaWeights(
        config=cfg,
        embed=embed,
        layers=layers,
        final_norm=vector("output_norm.weight"),
        lm_head=embed if cfg.tie_embeddings else matrix("output.weight"),
        metadata=metadata,
    )
