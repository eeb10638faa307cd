"""Aggregating LoRA adapters from many devices (numpy only, no Flower).

A device's update of one linear layer is the product ``B A`` (B [out, r], A [r, in]); averaging
A and B separately (naive FedAvg) is not the average of the products:
``mean(B_i) mean(A_i) != mean(B_i A_i)``. Two exact alternatives:

- ``svd``: average the products and re-factor the mean to rank r with an SVD. Exact up to the
  rank-r truncation (the mean of K rank-r products has rank <= K r). The new A is ``c Vt_r`` with
  the row norm of a fresh adapter (c = 1/sqrt(3), Kaiming-uniform's), the new B is ``U_r S_r / c``,
  so the next round's gradients of B are as large as in the first. Needs the server to see each
  device's A and B: not possible under secure aggregation.
- ``fixed-a``: every device uses the same A, drawn from a seed the server sends, and trains only B.
  Plain FedAvg on B is then exactly ``mean(B_i) A = mean(B_i A)``: linear, so it works under SecAgg+
  (the server only ever sees sums) and under Flower's DP wrapper with its accountant, and only B
  crosses the wire. The update is confined to the row space of A (r of the ``in`` dimensions).

``naive`` (average A and B separately) is kept only to measure against.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

MODES = ("svd", "fixed-a", "naive")
ROW_NORM = 1.0 / np.sqrt(3.0)  # expected row norm of a Kaiming-uniform(a=sqrt(5)) A, whatever its width

Adapter = Mapping[str, np.ndarray]  # "blocks.3.qkv_proj.lora_a" -> array


def layers(adapter: Adapter) -> list[str]:
    """The layer prefixes of an adapter: "blocks.3.qkv_proj" for its lora_a / lora_b pair."""
    return sorted({k.rsplit(".", 1)[0] for k in adapter})


def shared_a(seed: int, name: str, rank: int, width: int) -> np.ndarray:
    """The fixed A of one layer: Kaiming-uniform like a fresh adapter, a pure function of (seed, name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    bound = 1.0 / np.sqrt(width)
    return rng.uniform(-bound, bound, size=(rank, width)).astype(np.float32)


def weighted_mean(adapters: Sequence[Adapter], weights: Sequence[float]) -> dict[str, np.ndarray]:
    """Plain FedAvg of every tensor (naive on A/B; exact in fixed-a mode, where only B is sent)."""
    w = np.asarray(weights, np.float64) / float(np.sum(weights))
    return {k: sum(wi * a[k].astype(np.float64) for wi, a in zip(w, adapters)).astype(np.float32) for k in adapters[0]}


def product_mean(adapters: Sequence[Adapter], weights: Sequence[float], name: str) -> np.ndarray:
    """``sum_i w_i B_i A_i`` of layer ``name`` (the weights normalized), in float64."""
    w = np.asarray(weights, np.float64) / float(np.sum(weights))
    return sum(
        wi * (a[name + ".lora_b"].astype(np.float64) @ a[name + ".lora_a"].astype(np.float64))
        for wi, a in zip(w, adapters)
    )


def svd_refactor(product: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(A [r, in], B [out, r]) with B A the best rank-r approximation of ``product``; A's rows
    have a fresh adapter's norm (see the module docstring)."""
    u, s, vt = np.linalg.svd(product, full_matrices=False)
    a = ROW_NORM * vt[:rank]
    b = u[:, :rank] * (s[:rank] / ROW_NORM)
    return a.astype(np.float32), b.astype(np.float32)


def aggregate(adapters: Sequence[Adapter], weights: Sequence[float], mode: str) -> dict[str, np.ndarray]:
    """The global adapter from the devices' ones, by ``mode`` (one of MODES)."""
    if mode not in MODES:
        raise ValueError(f"aggregation must be one of {', '.join(MODES)}, got {mode!r}")
    if not adapters:
        raise ValueError("no adapters to aggregate")
    if mode != "svd":
        return weighted_mean(adapters, weights)
    out: dict[str, np.ndarray] = {}
    for name in layers(adapters[0]):
        rank = adapters[0][name + ".lora_a"].shape[0]
        out[name + ".lora_a"], out[name + ".lora_b"] = svd_refactor(product_mean(adapters, weights, name), rank)
    return {k: out[k] for k in adapters[0]}  # the received key order (Flower's DP mods compare it)


def product_error(global_adapter: Adapter, adapters: Sequence[Adapter], weights: Sequence[float], a_of=None) -> float:
    """Relative Frobenius error of the global adapter's products against the mean of the devices'
    products, over all layers. ``a_of(name)`` gives A where the adapters carry only B (fixed-a)."""

    def with_a(ad: Adapter) -> dict[str, np.ndarray]:
        if a_of is None:
            return dict(ad)
        return {**ad, **{n + ".lora_a": a_of(n) for n in layers(ad)}}

    full, g = [with_a(a) for a in adapters], with_a(global_adapter)
    num = den = 0.0
    for name in layers(g):
        target = product_mean(full, weights, name)
        got = g[name + ".lora_b"].astype(np.float64) @ g[name + ".lora_a"].astype(np.float64)
        num, den = num + float(np.sum((got - target) ** 2)), den + float(np.sum(target**2))
    return float(np.sqrt(num / den)) if den else 0.0


def check_adapter(arrays: Adapter, expected: Mapping[str, tuple[int, ...]]) -> str | None:
    """Why a device's reply is unusable (wrong keys, shapes, dtype or non-finite values), else None.
    Shapes must match exactly: numpy broadcasting would silently accept a (1, r) B."""
    if list(arrays) != list(expected):
        missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        return f"tensor names differ (missing {missing[:3]}, unexpected {extra[:3]})"
    for k, shape in expected.items():
        a = arrays[k]
        if tuple(a.shape) != tuple(shape):
            return f"{k} has shape {tuple(a.shape)}, expected {tuple(shape)}"
        if a.dtype.kind != "f":
            return f"{k} has dtype {a.dtype}, expected a float"
        if not np.isfinite(a).all():
            return f"{k} holds NaN or infinite values"
    return None
