"""Pack weight matrices into ORT's MatMulNBits layout.

MatMulNBits computes ``y = x @ W.T`` with ``W[n, k] = scale[n, b] * (q[n, k] - zp[n, b])``
for blocks ``b`` of ``block_size`` columns. GGUF Q8_0 maps onto it exactly (8-bit,
zp = 128). GGUF Q4_1 stores ``w = d * q + m`` with a float minimum per block; ORT's fast
kernels need integer zero points, so we pack ``d * (q - 8)`` (the default, centred zero
point) and add ``c = m + 8 d`` back as ``blocksum(x) @ C.T``: exact, for a [K/32 x N]
matmul. Centring matters: with accuracy_level 4 the kernel rounds x to int8, and that
error is multiplied by the packed weights, so they must be as small as possible.

The k-quants of Q4_K_M files are read exactly too: Q4_K's sub-blocks of 32 carry a scale
and a minimum (the Q4_1 form: 4 bits + offsets), Q5_0 (5 bits) fits 8-bit blocks of 32 with
zp 128, and Q6_K (6 bits, a scale per 16) fits 8-bit blocks of 16: no value changes.
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


def _blocks(m: Matrix, bytes_per_block: int, block: int = BLOCK) -> np.ndarray:
    return m.raw.reshape(m.rows, m.cols // block, bytes_per_block)


def _f16(b: np.ndarray) -> np.ndarray:
    """[..., 2] bytes -> float32 [...]."""
    return b.copy().view(np.float16)[..., 0].astype(np.float32)


def _pack4(values: np.ndarray) -> np.ndarray:
    return (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)


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


def pack_q5_0(m: Matrix) -> NBitsWeight:
    """Exact in 8 bits: Q5_0 block = fp16 d, 32 high bits, 16 bytes of low nibbles; w = d * (q - 16)."""
    blk = _blocks(m, 22)
    d = _f16(blk[..., 0:2])
    high = blk[..., 2:6].copy().view(np.uint32)[..., 0]
    qs = blk[..., 6:]
    low = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int16)  # [N, nb, 32]
    bits = (high[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    q = low | (bits.astype(np.int16) << 4)
    return NBitsWeight(8, (q - 16 + 128).astype(np.uint8), d, None)


def _k4_scales(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K's 12 bytes -> 8 six-bit scales and 8 six-bit minimums per super-block."""
    s = scales.astype(np.uint8)
    sc = np.empty(s.shape[:-1] + (8,), np.uint8)
    mn = np.empty_like(sc)
    sc[..., :4], mn[..., :4] = s[..., 0:4] & 63, s[..., 4:8] & 63
    sc[..., 4:] = (s[..., 8:12] & 0x0F) | ((s[..., 0:4] >> 6) << 4)
    mn[..., 4:] = (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def pack_q4_k(m: Matrix) -> NBitsWeight:
    """Exact: Q4_K super-block of 256 = fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes;
    sub-block j: w = d * sc_j * q - dmin * m_j, the Q4_1 form per 32 (centred like pack_q4_1)."""
    blk = _blocks(m, 144, 256)
    d, dmin = _f16(blk[..., 0:2]), _f16(blk[..., 2:4])
    sc, mn = _k4_scales(blk[..., 4:16])
    qs = blk[..., 16:].reshape(*blk.shape[:-1], 4, 32)  # 4 chunks of 64 values: low nibbles, then high
    values = np.stack([qs & 0x0F, qs >> 4], axis=-2).reshape(m.rows, -1, BLOCK)  # [N, nb, 32]
    scale = (d[..., None] * sc).reshape(m.rows, -1)
    minimum = (dmin[..., None] * mn).reshape(m.rows, -1)
    return NBitsWeight(4, np.ascontiguousarray(_pack4(values)), scale, None, 8 * scale - minimum)


def pack_q6_k(m: Matrix) -> NBitsWeight:
    """Exact in 8-bit blocks of 16: Q6_K super-block of 256 = 128 bytes low 4 bits, 64 bytes high 2 bits,
    16 int8 scales, fp16 d; w = d * sc_j * (q - 32)."""
    blk = _blocks(m, 210, 256)
    ql, qh = blk[..., :128].reshape(*blk.shape[:-1], 2, 64), blk[..., 128:192].reshape(*blk.shape[:-1], 2, 32)
    sc = blk[..., 192:208].view(np.int8).astype(np.float32)
    d = _f16(blk[..., 208:210])
    lo = np.stack([ql[..., :32] & 0x0F, ql[..., 32:] & 0x0F, ql[..., :32] >> 4, ql[..., 32:] >> 4], axis=-2)
    hi = np.stack([(qh >> shift) & 3 for shift in (0, 2, 4, 6)], axis=-2)
    q = (lo | (hi << 4)).astype(np.int16).reshape(m.rows, -1, 16)  # half, quarter, 32 -> blocks of 16
    scale = (d[..., None] * sc).reshape(m.rows, -1)
    return NBitsWeight(8, (q - 32 + 128).astype(np.uint8), scale, None, block=16)


EXACT_PACKERS = {QType.Q8_0: pack_q8_0, QType.Q5_0: pack_q5_0, QType.Q6_K: pack_q6_k}  # 8-bit, lossless


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
    """The GGUF presets: fp32 (dequantized), q8 (8-bit: Q8_0/Q5_0/Q6_K exact, else int8 RTN),
    q4 (the file's own blocks exactly: Q4_1/Q4_K in 4 bits, Q8_0/Q5_0/Q6_K in 8)."""
    if variant == "fp32":
        return m.dense()
    if m.parts:  # q, k, v of different block types: pack each, one matmul when the layouts agree
        packed = [pack_gguf_exact(p, variant) for p in m.parts]
        return concat_nbits(packed) or quantize_rtn8(m.dense())
    if m.qtype in EXACT_PACKERS:
        return EXACT_PACKERS[m.qtype](m)
    if variant == "q4" and m.qtype == QType.Q4_1:
        return pack_q4_1(m)
    if variant == "q4" and m.qtype == QType.Q4_K:
        return pack_q4_k(m)
    if variant == "q4" and m.qtype in (QType.F32, QType.F16):
        return m.dense()  # keep unquantized tensors unquantized in the GGUF-exact variant
    return quantize_rtn8(m.dense())


def concat_nbits(parts: list) -> NBitsWeight | None:
    """Stack packed matrices along N when they share bits, block and form (else None)."""
    first = parts[0]
    if not all(
        isinstance(p, NBitsWeight)
        and (p.bits, p.block, p.mins is None, p.zero_points is None, p.cols)
        == (first.bits, first.block, first.mins is None, True, None)
        for p in parts
    ):
        return None
    mins = None if first.mins is None else np.concatenate([p.mins for p in parts])
    return NBitsWeight(
        first.bits,
        np.concatenate([p.b for p in parts]),
        np.concatenate([p.scales for p in parts]),
        None,
        mins,
        first.block,
    )
