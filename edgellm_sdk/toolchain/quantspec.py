"""What a graph variant stores for its weights, and weight-only quantization to MatMulNBits.

``QuantSpec`` describes a variant: fp32, the GGUF-exact presets (q8/q4), or our own
int8/int4 quantization of dense weights with a block size, symmetric or with zero points,
round-to-nearest or an error-minimizing clip search, optionally weighted by calibration
activation statistics (activation-aware). The embedding/lm_head matrix is stored as int8
(``head_bits=8``) or kept fp32 (``--exclude lm_head``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np

from .packing import NBitsWeight

BLOCKS = (16, 32, 64, 128, 256)
SHRINK = np.linspace(1.0, 0.6, 17)  # clip factors the MSE search tries per block


@dataclass(frozen=True)
class QuantSpec:
    bits: int | None = None  # None = fp32 MatMul
    block: int = 32
    symmetric: bool = False
    offsets: bool = False  # float per-block minimum (Q4_1-style), added back through block sums
    method: str = "mse"  # "rtn" | "mse"
    head_bits: int | None = 8  # tied embedding / lm_head: 8 or None (fp32)
    exclude: tuple[str, ...] = ()  # fnmatch patterns of linear names kept fp32 ("layers.0.*", "*.down_proj")
    gguf_preset: str | None = None  # "fp32" | "q8" | "q4": pack the GGUF blocks as the converter does
    importance: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.bits not in (None, 4, 8):
            raise ValueError(f"bits must be 4 or 8 (or None for fp32), got {self.bits}")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {self.block}")
        if self.method not in ("rtn", "mse"):
            raise ValueError(f"method must be 'rtn' or 'mse', got {self.method!r}")
        if self.offsets and (self.symmetric or self.bits != 4):
            raise ValueError("offsets apply to asymmetric int4 only")
        if self.head_bits not in (None, 8):
            raise ValueError(f"head_bits must be 8 or None (fp32), got {self.head_bits}")

    def keeps_fp32(self, name: str) -> bool:
        return self.bits is None or any(fnmatch.fnmatchcase(name, pat) for pat in self.exclude)

    def describe(self) -> dict:
        if self.gguf_preset:
            return {"preset": self.gguf_preset}
        return {
            "bits": self.bits,
            "block": self.block,
            "symmetric": self.symmetric,
            "offsets": self.offsets,
            "method": self.method,
            "lm_head": "fp32" if self.head_bits is None else f"int{self.head_bits}",
            "exclude": list(self.exclude),
            "activation_aware": bool(self.importance),
        }


# What `finetune` / `distill` exports and `edgellm quantize` default to: int4 keeps float block
# offsets (integer zero points cost +28 % ppl on the default model, whose weights are Q4_1 already).
EXPORT_SPECS = {"int4": QuantSpec(bits=4, offsets=True), "int8": QuantSpec(bits=8)}

PRESETS = {
    "fp32": QuantSpec(bits=None, head_bits=None, gguf_preset="fp32"),
    "q8": QuantSpec(bits=8, symmetric=True, method="rtn", gguf_preset="q8"),
    "q4": QuantSpec(bits=4, offsets=True, gguf_preset="q4"),
}


def quantize_weight(
    w: np.ndarray,
    bits: int,
    block: int = 32,
    *,
    symmetric: bool = False,
    offsets: bool = False,
    method: str = "mse",
    importance: np.ndarray | None = None,
    rows_per_chunk: int = 2048,
) -> NBitsWeight:
    """Quantize ``w`` [N, K] per row and block of ``block`` input columns (K is zero-padded).

    ``importance`` [K] weighs the squared error of each input column (calibration E[x^2]);
    the MSE search picks, per block, the clip factor that minimizes that weighted error.
    ``offsets``: w ~ d*q + m with a float m per block (exact for a GGUF Q4_1 source); packed
    as d*(q-8) plus ``mins`` = m + 8d, which the graph adds as blocksum(x) @ mins.T.
    """
    w = np.asarray(w, np.float32)
    n, k = w.shape
    if offsets:
        if k % block:
            raise ValueError(f"offsets need K ({k}) to be a multiple of the block ({block})")
        return _quantize_offsets(w, block, SHRINK if method == "mse" else SHRINK[:1], importance, rows_per_chunk)
    pad = -k % block
    if pad:
        w = np.pad(w, ((0, 0), (0, pad)))
    nb = w.shape[1] // block
    imp = np.ones(k + pad, np.float32) if importance is None else np.pad(np.asarray(importance, np.float32), (0, pad))
    imp = imp.reshape(nb, block)
    q_all = np.empty((n, nb, block), np.uint8)
    s_all = np.empty((n, nb), np.float32)
    z_all = np.empty((n, nb), np.uint8)
    for r in range(0, n, rows_per_chunk):
        blocks = w[r : r + rows_per_chunk].reshape(-1, nb, block)
        q, s, z = _quantize_blocks(blocks, bits, symmetric, SHRINK if method == "mse" else SHRINK[:1], imp)
        q_all[r : r + rows_per_chunk], s_all[r : r + rows_per_chunk], z_all[r : r + rows_per_chunk] = q, s, z
    packed = q_all if bits == 8 else (q_all[..., 0::2] | (q_all[..., 1::2] << 4)).astype(np.uint8)
    zero_points = None
    if not symmetric:
        zero_points = z_all if bits == 8 else _pack_nibbles(z_all)
    return NBitsWeight(bits, np.ascontiguousarray(packed), s_all, zero_points, None, block, k)


def dequantize_weight(p: NBitsWeight) -> np.ndarray:
    """The values MatMulNBits computes with, [N, K] (for tests and error reports)."""
    if p.bits == 8:
        q = p.b.astype(np.float32)
    else:
        q = np.stack([p.b & 0x0F, p.b >> 4], axis=-1).reshape(p.b.shape[0], p.b.shape[1], -1).astype(np.float32)
    nb = q.shape[1]
    if p.zero_points is None:
        z = np.full((q.shape[0], nb), 2 ** (p.bits - 1), np.float32)
    elif p.bits == 8:
        z = p.zero_points.astype(np.float32)
    else:
        z = np.stack([p.zero_points & 0x0F, p.zero_points >> 4], axis=-1).reshape(q.shape[0], -1)[:, :nb]
    w = (q - z.astype(np.float32)[..., None]) * p.scales[..., None]
    if p.mins is not None:
        w = w + p.mins[..., None]
    return w.reshape(q.shape[0], -1)[:, : p.k]


def _quantize_blocks(blocks: np.ndarray, bits: int, symmetric: bool, shrink: np.ndarray, imp: np.ndarray):
    levels = 2**bits - 1
    best_err = np.full(blocks.shape[:2], np.inf, np.float32)
    best_q = np.zeros(blocks.shape, np.uint8)
    best_s = np.ones(blocks.shape[:2], np.float32)
    best_z = np.full(blocks.shape[:2], 2 ** (bits - 1), np.uint8)
    lo, hi = blocks.min(axis=-1), blocks.max(axis=-1)
    absmax = np.maximum(np.abs(lo), np.abs(hi))
    for factor in shrink:
        if symmetric:
            half = 2 ** (bits - 1)
            scale = absmax * factor / (half - 1)
            scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
            zero = np.full(scale.shape, half, np.float32)
        else:
            lo_f, hi_f = np.minimum(lo * factor, 0), np.maximum(hi * factor, 0)
            scale = ((hi_f - lo_f) / levels).astype(np.float32)
            scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
            zero = np.clip(np.rint(-lo_f / scale), 0, levels)
        q = np.clip(np.rint(blocks / scale[..., None]) + zero[..., None], 0, levels)
        err = (((q - zero[..., None]) * scale[..., None] - blocks) ** 2 * imp).sum(axis=-1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_q[better] = q[better].astype(np.uint8)
        best_s = np.where(better, scale, best_s)
        best_z = np.where(better, zero, best_z).astype(np.uint8)
    return best_q, best_s, best_z


def _quantize_offsets(w, block, shrink, importance, rows_per_chunk) -> NBitsWeight:
    n, k = w.shape
    nb = k // block
    imp = (np.ones(k, np.float32) if importance is None else np.asarray(importance, np.float32)).reshape(nb, block)
    q_all = np.empty((n, nb, block), np.uint8)
    d_all = np.empty((n, nb), np.float32)
    m_all = np.empty((n, nb), np.float32)
    for r in range(0, n, rows_per_chunk):
        blocks = w[r : r + rows_per_chunk].reshape(-1, nb, block)
        lo, hi = blocks.min(axis=-1), blocks.max(axis=-1)
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        best = np.full(blocks.shape[:2], np.inf, np.float32)
        for factor in shrink:  # shrink the range around its centre
            m = mid - half * factor
            d = np.where(half == 0, 1.0, 2 * half * factor / 15).astype(np.float32)
            q = np.clip(np.rint((blocks - m[..., None]) / d[..., None]), 0, 15)
            err = (((q * d[..., None] + m[..., None]) - blocks) ** 2 * imp).sum(axis=-1)
            better = err < best
            best = np.where(better, err, best)
            q_all[r : r + rows_per_chunk][better] = q[better].astype(np.uint8)
            d_all[r : r + rows_per_chunk] = np.where(better, d, d_all[r : r + rows_per_chunk])
            m_all[r : r + rows_per_chunk] = np.where(better, m, m_all[r : r + rows_per_chunk])
    packed = (q_all[..., 0::2] | (q_all[..., 1::2] << 4)).astype(np.uint8)
    return NBitsWeight(4, packed, d_all, None, (m_all + 8 * d_all).astype(np.float32), block)


def _pack_nibbles(z: np.ndarray) -> np.ndarray:
    if z.shape[1] % 2:
        z = np.pad(z, ((0, 0), (0, 1)))
    return (z[:, 0::2] | (z[:, 1::2] << 4)).astype(np.uint8)
