"""Read a llama- or gemma3-architecture GGUF file into a config and per-tensor weights.

Quantized matrices are kept as their raw GGUF blocks so variants can be packed
losslessly; ``dense()`` dequantizes on demand. Row order is Hugging Face's: llama.cpp
permutes the rows of llama's attn_q/attn_k for its RoPE layout, and we undo that here
(gemma3 is stored unpermuted). Gemma's RMSNorm scale (1 + w) is already folded into the
GGUF's norm weights by llama.cpp's converter, so every norm here is a plain RMSNorm.
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
SUPPORTED_QTYPES = {QType.F32, QType.F16, QType.Q8_0, QType.Q4_1, QType.Q5_0, QType.Q4_K, QType.Q6_K}
ARCHITECTURES = ("llama", "gemma3")
GEMMA3_LOCAL_ROPE_THETA = 10000.0  # llama.cpp and transformers: the sliding-window layers' RoPE base
GEMMA3_GLOBAL_EVERY = 6  # layers 5, 11, 17...: full attention; the others: the sliding window
GEMMA3_MAX_POSITION = 8192  # RoPE tables for 32k positions would add 64 MB to every graph; profiles use <= 4k


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
    arch: str = "llama"
    key_length: int | None = None  # gemma3: 256, not hidden / heads
    sliding_window: int | None = None  # gemma3: local layers see the last N positions
    local_rope_theta: float | None = None
    global_every: int = 0  # 0: every layer attends globally
    embed_scale: float = 1.0  # gemma: sqrt(hidden)
    activation: str = "silu"  # gemma: "gelu_tanh"

    @property
    def head_dim(self) -> int:
        return self.key_length or self.hidden_size // self.num_heads

    def is_local(self, layer: int) -> bool:
        return bool(self.sliding_window and self.global_every and (layer + 1) % self.global_every)


@dataclass
class Matrix:
    """A [rows=out, cols=in] weight matrix, raw GGUF blocks when quantized. A concatenation of
    matrices of different block types keeps its ``parts`` (each packed on its own)."""

    qtype: QType
    raw: np.ndarray  # F32/F16: values [out, in]; quantized: uint8 [out, bytes_per_row]
    cols: int
    parts: tuple[Matrix, ...] = ()

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts) if self.parts else self.raw.shape[0]

    def dense(self) -> np.ndarray:
        if self.parts:
            return np.concatenate([p.dense() for p in self.parts])
        if self.qtype in (QType.F32, QType.F16):
            return np.asarray(self.raw, dtype=np.float32)
        return dequantize(self.raw, self.qtype).astype(np.float32).reshape(self.rows, self.cols)

    def permute_rows(self, order: np.ndarray) -> Matrix:
        if self.parts:
            return Matrix(QType.F32, self.dense()[order], self.cols)
        return Matrix(self.qtype, self.raw[order], self.cols)

    @staticmethod
    def concat(parts: list[Matrix]) -> Matrix:
        flat = [q for p in parts for q in (p.parts or (p,))]
        if len({p.qtype for p in flat}) != 1:
            return Matrix(QType.F32, np.empty((0, 0), np.float32), flat[0].cols, tuple(flat))
        return Matrix(flat[0].qtype, np.concatenate([p.raw for p in flat]), flat[0].cols)


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
    q_norm: np.ndarray | None = None  # gemma3: per-head RMSNorm of q and k before RoPE
    k_norm: np.ndarray | None = None
    post_attn_norm: np.ndarray | None = None  # gemma: RMSNorm of each sublayer's output
    post_ffn_norm: np.ndarray | None = None


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
    if arch not in ARCHITECTURES:
        raise ConversionError(
            f"{path.name}: architecture {arch!r} is not supported; supported: {', '.join(ARCHITECTURES)}"
        )

    def num(key: str, default=None):
        value = _field(reader, f"{arch}.{key}", default)
        if value is None:
            raise ConversionError(f"{path.name}: missing GGUF field {arch}.{key}")
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
    gemma = arch == "gemma3"
    hidden = int(num("embedding_length"))
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=int(num("feed_forward_length")),
        num_layers=int(num("block_count")),
        num_heads=int(num("attention.head_count")),
        num_kv_heads=int(num("attention.head_count_kv", num("attention.head_count"))),
        rope_theta=float(num("rope.freq_base", 10000.0)),
        rms_eps=float(num("attention.layer_norm_rms_epsilon", 1e-5)),
        max_position=min(int(num("context_length", 2048)), GEMMA3_MAX_POSITION)
        if gemma
        else int(num("context_length", 2048)),
        tie_embeddings="output.weight" not in tensors,
        arch=arch,
        key_length=int(num("attention.key_length")) if gemma else None,
        sliding_window=int(num("attention.sliding_window")) if gemma else None,
        local_rope_theta=GEMMA3_LOCAL_ROPE_THETA if gemma else None,
        global_every=GEMMA3_GLOBAL_EVERY if gemma else 0,
        embed_scale=float(np.sqrt(hidden)) if gemma else 1.0,
        activation="gelu_tanh" if gemma else "silu",
    )
    if gemma:
        q_order = k_order = None
    else:
        q_order = _rope_unpermute_order(cfg.hidden_size, cfg.num_heads)
        k_order = _rope_unpermute_order(cfg.num_kv_heads * cfg.head_dim, cfg.num_kv_heads)

    def rows(m: Matrix, order: np.ndarray | None) -> Matrix:
        return m if order is None else m.permute_rows(order)

    def optional(name: str) -> np.ndarray | None:
        return vector(name) if gemma else None

    layers = []
    for i in range(cfg.num_layers):
        p = f"blk.{i}."
        layers.append(
            LlamaLayer(
                attn_norm=vector(p + "attn_norm.weight"),
                q=rows(matrix(p + "attn_q.weight"), q_order),
                k=rows(matrix(p + "attn_k.weight"), k_order),
                v=matrix(p + "attn_v.weight"),
                o=matrix(p + "attn_output.weight"),
                ffn_norm=vector(p + "ffn_norm.weight"),
                gate=matrix(p + "ffn_gate.weight"),
                up=matrix(p + "ffn_up.weight"),
                down=matrix(p + "ffn_down.weight"),
                q_norm=optional(p + "attn_q_norm.weight"),
                k_norm=optional(p + "attn_k_norm.weight"),
                post_attn_norm=optional(p + "post_attention_norm.weight"),
                post_ffn_norm=optional(p + "post_ffw_norm.weight"),
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
