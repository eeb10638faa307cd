"""Memory guard: estimate a model's peak RSS before loading it, and refuse what will not fit.

peak RSS ≈ runtime (Python, onnxruntime, numpy, tokenizers) + weights × 1.1 (onnxruntime's
prepacked copies) + session overhead + float32 KV cache for the whole context + prefix cache
budget (+ a draft model's weights, KV cache and session). The constants were measured on the
default model (q4 / q8 / fp32, contexts 512-8192) and the estimate is checked against a measured
peak RSS in tests/test_profiles.py. ``LoadPlan`` (models/plan.py) decides what goes in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
from dataclasses import dataclass

from .errors import MemoryBudgetExceeded, ProfileError

RUNTIME_MB = 60.0  # interpreter + onnxruntime + numpy + tokenizers + jinja2, nothing loaded
SESSION_MB = 85.0  # onnxruntime session: arena, logits, graph
WEIGHTS_FACTOR = 1.1
MAX_RSS_ENV = "EDGELLM_MAX_RSS_MB"


@dataclass(frozen=True)
class MemoryEstimate:
    weights_mb: float
    kv_mb: float
    prefix_cache_mb: float
    overhead_mb: float
    draft_mb: float = 0.0  # a draft model loaded beside it (speculative decoding)

    @property
    def total_mb(self) -> float:
        return self.weights_mb + self.kv_mb + self.prefix_cache_mb + self.overhead_mb + self.draft_mb

    def describe(self) -> str:
        draft = f", draft model {self.draft_mb:.0f}" if self.draft_mb else ""
        return (
            f"{self.total_mb:.0f} MB (weights {self.weights_mb:.0f}, KV cache {self.kv_mb:.0f}, "
            f"prefix cache {self.prefix_cache_mb:.0f}, runtime {self.overhead_mb:.0f}{draft})"
        )


def peak_rss_mb() -> float:
    """This process's peak RSS. /proc's VmHWM starts afresh at exec; ru_maxrss would report a
    parent's larger peak inherited across fork + exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def kv_bytes_per_token(manifest) -> int:
    """Bytes of float32 keys + values one token occupies, from the model's config.json."""
    try:
        cfg = json.loads((manifest.root / "config.json").read_text(encoding="utf-8"))
        layers, kv_heads = (
            int(cfg["num_hidden_layers"]),
            int(cfg.get("num_key_value_heads", cfg["num_attention_heads"])),
        )
        head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return 0  # unknown architecture: weights-only estimate
    return layers * 2 * kv_heads * head_dim * 4


def draft_footprint_mb(manifest, variant: str, max_context: int) -> float:
    """What a draft model adds: its weights, its KV cache and its own session."""
    est = estimate(manifest, variant, max_context)
    return est.weights_mb + est.kv_mb + SESSION_MB


def estimate(
    manifest, variant: str, max_context: int, *, prefix_cache_bytes: int = 0, draft_mb: float = 0.0
) -> MemoryEstimate:
    """The peak RSS of ``variant`` with a KV cache of ``max_context`` tokens; ``draft_mb``: a draft
    model loaded beside it (draft_footprint_mb)."""
    weights = manifest.variant_bytes(variant) / 2**20
    return MemoryEstimate(
        weights_mb=weights * WEIGHTS_FACTOR,
        kv_mb=kv_bytes_per_token(manifest) * max_context / 2**20,
        prefix_cache_mb=prefix_cache_bytes / 2**20,
        overhead_mb=RUNTIME_MB + SESSION_MB,
        draft_mb=draft_mb,
    )


def budget_mb(profile=None) -> float | None:
    """EDGELLM_MAX_RSS_MB when set (0 = no limit), else the profile's budget, else None."""
    env = os.environ.get(MAX_RSS_ENV)
    if env is not None and env.strip():
        try:
            value = float(env)
        except ValueError:
            raise ProfileError(
                f"{MAX_RSS_ENV}={env!r} is not a number of megabytes (it overrides the device "
                "profile's [memory] budget_mb; 0 = no limit)"
            ) from None
        return value or None
    return getattr(profile, "memory_budget_mb", None)


def check(
    manifest,
    variant: str,
    max_context: int,
    budget: float | None,
    *,
    prefix_cache_bytes: int = 0,
    draft_mb: float = 0.0,
) -> MemoryEstimate:
    """The estimate; MemoryBudgetExceeded naming smaller variants / contexts that fit when over ``budget``."""
    est = estimate(manifest, variant, max_context, prefix_cache_bytes=prefix_cache_bytes, draft_mb=draft_mb)
    if budget is None or est.total_mb <= budget:
        return est
    hints = []
    for other in sorted(manifest.variants, key=manifest.variant_bytes):
        if other != variant:
            alt = estimate(manifest, other, max_context, prefix_cache_bytes=prefix_cache_bytes, draft_mb=draft_mb)
            if alt.total_mb <= budget:
                hints.append(f"variant={other!r} ({alt.total_mb:.0f} MB)")
    per_token = kv_bytes_per_token(manifest) / 2**20
    room = budget - (est.total_mb - est.kv_mb)
    if per_token and room >= 16 * per_token:
        fits = int(room / per_token) // 256 * 256 or int(room / per_token)
        hints.append(f"max_context={fits}")
    if prefix_cache_bytes:
        hints.append("a smaller prefix cache")
    if draft_mb:
        hints.append("no draft model")
    fix = ("; try " + " or ".join(hints)) if hints else "; use a smaller model"
    raise MemoryBudgetExceeded(
        f"{manifest.name}:{variant} with max_context={max_context} needs about {est.describe()}, more than the "
        f"budget of {budget:.0f} MB{fix} (or raise the budget: {MAX_RSS_ENV}=<MB>, 0 = no limit)"
    )


def release_freed_heap() -> None:
    """Give the C heap's freed pages back to the OS (glibc's ``malloc_trim``; elsewhere nothing).

    Parsing a large tokenizer.json frees most of what it allocated, but glibc keeps the pages:
    Gemma 3's 262k-token tokenizer leaves 307 MB resident where 114 MB are in use."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        return
