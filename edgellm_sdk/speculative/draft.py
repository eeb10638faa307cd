"""A draft model: a smaller model with the target's tokenizer that proposes tokens.

It keeps its own KV cache in step with the target's context: before drafting, whatever
of the context it has not seen (the prompt, the tokens the target accepted) is fed, and
what the target rejected is truncated away. Greedy requests draft the draft's argmax;
sampled ones draw from the draft's own distribution (same Sampling), which is kept for
rejection sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import VocabularyMismatch
from ..prefill import common_prefix
from ..sampling import Sampling, distribution, draw, sample
from .verify import Distribution


class DraftModel:
    def __init__(self, backend, tokenizer, name: str):
        self.backend, self.tokenizer, self.name = backend, tokenizer, name
        self._kv: list[int] = []  # tokens whose KV the draft backend holds
        self.weight_bytes = 0  # its weights, from the manifest
        self.relative_cost = 0.5  # a drafted token in target one-token forwards (Engine: weight ratio)

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        store=None,
        threads: int | None = None,
        max_context: int = 2048,
        variant: str | None = None,
        providers=("CPUExecutionProvider",),
        verify: bool = True,
    ) -> DraftModel:
        from ..backends.ort import OrtBackend
        from ..models.store import ModelStore
        from ..tokenizer import Tokenizer

        manifest = (store or ModelStore()).resolve(model)
        variant = variant if variant is not None and variant in manifest.variants else manifest.default_variant
        if verify:
            small = [f for f in manifest.files if not f.startswith("onnx/")]
            manifest.verify(small + manifest.variant_files(variant))
        backend = OrtBackend(
            manifest.variant_path(variant), max_context=max_context, threads=threads, providers=providers
        )
        draft = cls(backend, Tokenizer.from_dir(manifest.root), f"{manifest.name}:{variant}")
        draft.weight_bytes = manifest.variant_bytes(variant)
        return draft

    def check_tokenizer(self, tokenizer, target_name: str) -> None:
        """Raise VocabularyMismatch unless the draft's tokenizer is the target's."""
        mine, theirs = (
            self.tokenizer.hf.get_vocab(with_added_tokens=True),
            tokenizer.hf.get_vocab(with_added_tokens=True),
        )
        if mine == theirs and self.tokenizer.eos_ids == tokenizer.eos_ids:
            return
        differing = sorted(set(mine.items()) ^ set(theirs.items()), key=lambda kv: kv[1])[:3]
        raise VocabularyMismatch(
            f"draft model {self.name!r} ({len(mine)} tokens) does not share the tokenizer of {target_name!r} "
            f"({len(theirs)} tokens; e.g. {differing}); a draft must use the target's vocabulary, such as a "
            f"student made from it with `edgellm distill`"
        )

    def propose(
        self, context: Sequence[int], k: int, sampling: Sampling, rng: np.random.Generator
    ) -> tuple[list[int], list[Distribution | None]]:
        """``k`` tokens continuing ``context``, and the draft distribution of each (None: greedy)."""
        logits = self._sync(context)
        tokens, dists = [], []
        penalized = list(context) if sampling.repetition_penalty != 1.0 else None
        for i in range(k):
            if sampling.greedy:
                token, q = sample(logits, sampling, rng, penalized or ()), None
            else:
                q = distribution(logits, sampling, penalized or ())
                token = draw(q, rng)
            tokens.append(token)
            dists.append(q)
            if penalized is not None:
                penalized.append(token)
            if i < k - 1:
                logits = self.backend.forward([token])
                self._kv.append(token)
        return tokens, dists

    def _sync(self, context: Sequence[int]) -> np.ndarray:
        """Feed what the draft has not seen of ``context``; logits after its last token."""
        n = common_prefix(self._kv, context, min(len(self._kv), len(context) - 1))
        self.backend.truncate(n)
        self._kv = list(context[:n])
        logits = np.empty((0,), np.float32)
        for start in range(n, len(context), 256):  # bounded batches: a long prompt is fed in pieces
            logits = self.backend.forward(list(context[start : start + 256]))
        self._kv = list(context)
        return logits

    def reset(self) -> None:
        self._kv = []
        self.backend.truncate(0)

    def close(self) -> None:
        self.backend.close()
