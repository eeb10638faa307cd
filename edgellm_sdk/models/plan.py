"""LoadPlan: how a model will be loaded on this device, decided before anything is loaded.

One function turns (model, device profile, explicit arguments) into the variant, the context
length, threads, execution providers, KV dtype, prefix-cache budget and the memory estimate the
memory guard checks. ``Engine.load``, ``edgellm doctor``, ``edgellm bench`` and ``edgellm tradeoff``
all read it, so what the doctor promises is what a load does.

    plan = LoadPlan.resolve("smollm2-135m", "rpi4")
    print(plan)             # smollm2-135m:q4 (profile rpi4): context 2048, 3 threads on CPU, ...
    plan.check_memory()     # MemoryBudgetExceeded naming what would fit, when over the budget

Each setting comes from the explicit argument, else the profile, else the default (the model's
default variant, DEFAULT_MAX_CONTEXT tokens, min(4, CPUs) threads, the CPU provider, a 32 MB
prefix cache). The context is then capped by the model's own limit (``model_context``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import memory as guard
from ..errors import ProfileError
from ..profiles import default_threads, kv_dtype_problem
from ..profiles import resolve as resolve_profile
from .manifest import Manifest
from .store import ModelStore

DEFAULT_MAX_CONTEXT = 2048
DEFAULT_PREFIX_CACHE_BYTES = 32 << 20
CPU_ONLY = ("CPUExecutionProvider",)


def model_context(root: str | Path) -> int | None:
    """The longest context the model was trained for (config.json ``max_position_embeddings``);
    None when its config does not say."""
    try:
        value = json.loads((Path(root) / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"]
        return int(value) or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class LoadPlan:
    manifest: Manifest
    variant: str
    max_context: int  # KV cache length in tokens, within the model's limit
    threads: int  # onnxruntime intra-op threads
    inter_op_threads: int
    providers: tuple[str, ...]  # execution providers, in order; every one must be present
    kv_dtype: str  # profiles.KV_DTYPES
    prefix_cache_bytes: int  # budget of the PrefixCache to create (0: none, or one passed in)
    budget_mb: float | None  # what the memory guard allows (None: no limit)
    memory: guard.MemoryEstimate  # the guard's peak RSS estimate, draft model included
    profile: str | None = None  # name of the device profile it came from
    draft: Manifest | None = None  # a draft model to load beside it (speculative decoding)
    draft_variant: str | None = None

    @classmethod
    def resolve(
        cls,
        model: str | Path | Manifest,
        profile=None,
        *,
        variant: str | None = None,
        max_context: int | None = None,
        threads: int | None = None,
        prefix_cache: int | bool | object = True,
        draft: str | Path | None = None,
        draft_variant: str | None = None,
        store: ModelStore | None = None,
    ) -> LoadPlan:
        """The plan for ``model`` (an installed name, a directory or a Manifest) under ``profile``
        (a DeviceProfile, its name or TOML path, anything with its attributes, or None).

        The keyword arguments override the profile as in ``Engine.load``: ``prefix_cache`` True (the
        profile's budget, else 32 MB), a byte budget, or anything else (False, a shared PrefixCache:
        nothing new to budget for). ValueError for an unknown variant or a context below 2 tokens,
        ProfileError for a KV dtype the runtime cannot allocate. Nothing is checked against the
        memory budget here: ``check_memory`` does that.
        """
        store = store or ModelStore()
        manifest = model if isinstance(model, Manifest) else store.resolve(model)
        profile = resolve_profile(profile)
        name = getattr(profile, "name", None)
        preferred = getattr(profile, "variant", None)
        if variant is None and preferred in manifest.variants:
            variant = preferred  # the profile's preference, when this model has it
        variant = variant or manifest.default_variant
        manifest.variant_path(variant)  # ValueError naming the available variants
        context = max_context or getattr(profile, "max_context", None) or DEFAULT_MAX_CONTEXT
        if not isinstance(context, int) or isinstance(context, bool) or context < 2:
            raise ValueError(f"max_context must be an int >= 2, got {context!r}")
        context = min(context, model_context(manifest.root) or context)
        kv_dtype = getattr(profile, "kv_dtype", None) or "float32"
        if problem := kv_dtype_problem(kv_dtype):
            raise ProfileError(f"device profile {name or profile!r}: {problem}")
        if prefix_cache is True:
            profile_bytes = getattr(profile, "prefix_cache_bytes", None)
            prefix_bytes = DEFAULT_PREFIX_CACHE_BYTES if profile_bytes is None else profile_bytes
        elif isinstance(prefix_cache, int) and not isinstance(prefix_cache, bool):
            prefix_bytes = prefix_cache
        else:
            prefix_bytes = 0
        draft_manifest = store.resolve(draft) if draft is not None else None
        draft_mb = 0.0
        if draft_manifest is not None:
            if draft_variant is None or draft_variant not in draft_manifest.variants:
                draft_variant = draft_manifest.default_variant  # the draft's own default
            draft_mb = guard.draft_footprint_mb(draft_manifest, draft_variant, context)
        return cls(
            manifest=manifest,
            variant=variant,
            max_context=context,
            threads=threads or getattr(profile, "threads", None) or default_threads(),
            inter_op_threads=getattr(profile, "inter_op_threads", None) or 1,
            providers=tuple(getattr(profile, "providers", None) or CPU_ONLY),
            kv_dtype=kv_dtype,
            prefix_cache_bytes=prefix_bytes,
            budget_mb=guard.budget_mb(profile),
            memory=guard.estimate(manifest, variant, context, prefix_cache_bytes=prefix_bytes, draft_mb=draft_mb),
            profile=name,
            draft=draft_manifest,
            draft_variant=draft_variant if draft_manifest else None,
        )

    @property
    def key(self) -> str:
        """``model:variant``, as in messages and reports."""
        return f"{self.manifest.name}:{self.variant}"

    @property
    def onnx_path(self) -> Path:
        return self.manifest.variant_path(self.variant)

    def check_memory(self) -> guard.MemoryEstimate:
        """The estimate; MemoryBudgetExceeded naming the variants / contexts that fit when over budget."""
        return guard.check(
            self.manifest,
            self.variant,
            self.max_context,
            self.budget_mb,
            prefix_cache_bytes=self.prefix_cache_bytes,
            draft_mb=self.memory.draft_mb,
        )

    def __str__(self) -> str:
        providers = "+".join(p.removesuffix("ExecutionProvider") for p in self.providers)
        source = f" (profile {self.profile})" if self.profile else ""
        draft = f", draft {self.draft.name}:{self.draft_variant}" if self.draft else ""
        budget = f" of a {self.budget_mb:.0f} MB budget" if self.budget_mb else ", no memory budget"
        return (
            f"{self.key}{source}: context {self.max_context}, {self.threads} threads on {providers}, "
            f"KV {self.kv_dtype}, prefix cache {self.prefix_cache_bytes / 2**20:.0f} MB{draft}; "
            f"needs ~{self.memory.describe()}{budget}"
        )
