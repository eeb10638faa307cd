"""Pack weight matrices into ORT's MatMulNBits layout.

MatMulNBits computes ``y = x @ W.T`` with ``W[n, k] = scale[n, b] * (q[n, k] - zp[n, b])``
for blocks ``b`` of ``block_size`` columns. GGUF Q8_0 maps onto it exactly (8-bit,
zp = 128). GGUF Q4_1 stores ``w = d * q + m`` with a float minimum per block; ORT's fast
kernels need integer zero points, so we pack ``d * (q - 8)`` (the default, centred zero
point) and add ``c = m + 8 d`` back as ``blocksum(x) @ C.T``: exact, for a [K/32 x N]
matmul. Centring matters: with accuracy_level 4 the kernel rounds x to int8, and that
error is multiplied by the packed weights, so they must be as small as possible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gguf_llama import Matrix, QType

BLOCK = 32


@dataclass
class NBitsWeight:
    bits: int
    b: np.ndarray  # uint8 [N, n_blocks, BLOCK * bits // 8]
    scales: np.ndarray  # float32 [N, n_blocks]
    zero_points: np.ndarray | None  # uint8 packed, None = default 2**(bits-1)
    mins: np.ndarray | None = None  # float32 [N, n_blocks]: per-block offset added via block sums
    block: int = BLOCK
    cols: int | None = None  # K when it is not a multiple of block (the last block is zero-padded)

    @property
    def n(self) -> int:
        return self.b.shape[0]

    @property
    def k(self) -> int:
        return self.cols or self.b.shape[1] * self.block


def _blocks(m: Matrix, bytes_per_block: int) -> np.ndarray:
    return m.raw.reshape(m.rows, m.cols // BLOCK, bytes_per_block)


def pack_q8_0(m: Matrix) -> NBitsWeight:
    """Exact: Q8_0 block = fp16 scale + 32 int8."""
    blk = _blocks(m, 34)
    scales = blk[..., :2].copy().view(np.float16)[..., 0].astype(np.float32)
    q = (blk[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return NBitsWeight(8, np.ascontiguousarray(q), scales, None)


def pack_q4_1(m: Matrix) -> NBitsWeight:
    """Exact: Q4_1 block = fp16 d, fp16 m, 16 bytes (value j low nibble, j+16 high)."""
    blk = _blocks(m, 20)
    d = blk[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    mins = blk[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = blk[..., 4:]
    values = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # [N, nb, 32] in column order
    packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
    return NBitsWeight(4, np.ascontiguousarray(packed), d, None, mins + 8 * d)


def quantize_rtn8(w: np.ndarray) -> NBitsWeight:
    """Symmetric round-to-nearest int8 per block of 32 (zp = 128)."""
    n, k = w.shape
    if k % BLOCK:
        raise ValueError(f"input dimension {k} is not a multiple of {BLOCK}")
    blocks = w.reshape(n, k // BLOCK, BLOCK).astype(np.float32)
    scales = np.abs(blocks).max(axis=-1) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(blocks / scales[..., None]), -127, 127).astype(np.int16) + 128
    return NBitsWeight(8, q.astype(np.uint8), scales.astype(np.float32), None)


def pack_gguf_exact(m: Matrix, variant: str) -> NBitsWeight | np.ndarray:
    """The GGUF presets: fp32 (dequantized), q8 (Q8_0 exact, else int8 RTN), q4 (Q4_1/Q8_0 exact)."""
    if variant == "fp32":
        return m.dense()
    if m.qtype == QType.Q8_0:
        return pack_q8_0(m)
    if variant == "q4" and m.qtype == QType.Q4_1:
        return pack_q4_1(m)
    if variant == "q4" and m.qtype in (QType.F32, QType.F16):
        return m.dense()  # keep unquantized tensors unquantized in the GGUF-exact variant
    return quantize_rtn8(m.dense())
