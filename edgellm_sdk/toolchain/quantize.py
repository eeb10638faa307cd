"""``edgellm quantize``: a new int8 / int4 weight-only variant of a model directory.

Weights are quantized per block of input columns into ORT's MatMulNBits; at run time the
kernel also rounds activations to int8 per block (accuracy_level 4: "dynamic int8", the
fast path of MLAS on x86 and Arm). With ``calibration`` text, the quantization error of
each input column is weighted by its mean squared activation on that text (activation-aware),
so channels the domain uses get the finer grid. Static activation scales (QDQ) are not
offered: for one-token decode on CPU they save no time over dynamic rounding and cost accuracy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..models.manifest import Manifest
from .checkpoint import add_variant, load_weights, model_dir
from .quantspec import QuantSpec

TARGETS = {"int8": 8, "int4": 4}


def quantize(
    model: str | Path | Manifest,
    to: str,
    *,
    block: int = 32,
    symmetric: bool = False,
    offsets: bool | None = None,
    method: str = "mse",
    exclude: tuple[str, ...] = (),
    calibration: str | Path | None = None,
    accuracy_level: int = 4,
    name: str | None = None,
    make_default: bool = False,
    overwrite: bool = False,
    progress: Callable[[str], None] = lambda msg: None,
) -> tuple[Manifest, str, dict]:
    """Add variant ``name`` (default: ``int4`` / ``int8-b64`` ...) to the model; returns (manifest, variant, info)."""
    if to not in TARGETS:
        raise ValueError(f"--to must be one of {', '.join(TARGETS)}, got {to!r}")
    if accuracy_level not in (0, 1, 2, 3, 4):
        raise ValueError(f"accuracy level must be 0-4 (4 = int8 activations, the fast path), got {accuracy_level}")
    head_bits = None if "lm_head" in exclude else 8
    patterns = tuple(p for p in exclude if p != "lm_head")
    manifest = model if isinstance(model, Manifest) else model_dir(model)
    start = time.perf_counter()
    progress("reading fp32 weights")
    weights = load_weights(manifest)
    importance = {}
    if calibration is not None:
        from .calibrate import activation_stats
        from .data import read_text

        importance = activation_stats(
            manifest, read_text(calibration, what="calibration text"), progress=progress
        ).mean_sq
    if offsets is None:  # int4 default: float block offsets (accuracy first; ~12 % slower decode)
        offsets = to == "int4" and not symmetric
    spec = QuantSpec(
        bits=TARGETS[to],
        block=block,
        symmetric=symmetric,
        offsets=offsets,
        method=method,
        head_bits=head_bits,
        exclude=patterns,
        importance=importance,
    )
    variant = name or _default_name(to, block, symmetric, offsets, head_bits, patterns, bool(importance))
    progress(f"quantizing {variant}")
    manifest = add_variant(
        manifest,
        variant,
        spec,
        weights=weights,
        accuracy_level=accuracy_level,
        make_default=make_default,
        overwrite=overwrite,
    )
    info = {
        "variant": variant,
        "file_mb": manifest.variant_bytes(variant) / 1e6,
        "fp32_mb": manifest.variant_bytes("fp32") / 1e6,
        "seconds": time.perf_counter() - start,
        **spec.describe(),
        "accuracy_level": accuracy_level,
    }
    return manifest, variant, info


def _default_name(to: str, block: int, symmetric: bool, offsets: bool, head_bits, patterns, aware: bool) -> str:
    parts = [to] + ([f"b{block}"] if block != 32 else []) + (["sym"] if symmetric else [])
    parts += ["zp"] if to == "int4" and not symmetric and not offsets else []
    parts += (["fp32head"] if head_bits is None else []) + (["mixed"] if patterns else []) + (["aw"] if aware else [])
    return "-".join(parts)
