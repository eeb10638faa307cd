"""Engine: a loaded model (backend + tokenizer + chat template) that generates text.

One generation runs at a time per Engine; concurrent callers wait their turn (a caller
whose deadline passes while waiting gets finish_reason "deadline"). The KV cache keeps
the last sequence, so a request that starts with the same tokens (a shared system
prompt, the previous chat turns) prefills only what is new.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cache.answers import AnswerCaches
from .cache.prefix import PrefixCache
from .cache.response import CachedResponse, ResponseCache
from .cache.semantic import SemanticCache
from .chat import CHATML, ChatTemplate, MessageLike, as_messages
from .constrain import compile_constraint
from .decode import Decoder
from .errors import ContextOverflow, EngineClosed, VocabularyMismatch
from .memory import release_freed_heap
from .models.plan import LoadPlan
from .models.store import DEFAULT_MODEL, ModelStore
from .prefill import PREFILL_CHUNK, boundary_at_or_before, chunks, common_prefix, is_boundary, turn_end
from .sampling import GREEDY, Sampling
from .speculative import DraftModel, SpeculationStats, Speculative, resolve_speculative
from .speculative.lookup import AnswerHistory
from .tokenizer import Tokenizer
from .types import Completion, FinishReason, Message, Token, Usage

if TYPE_CHECKING:
    from .backends.base import Backend
    from .models.manifest import Manifest
    from .session import ChatSession


class Engine:
    plan: LoadPlan | None = None  # how load() sized it (variant, context, threads, memory estimate)

    def __init__(
        self,
        backend: Backend,
        tokenizer: Tokenizer,
        *,
        manifest: Manifest | None = None,
        variant: str | None = None,
        prefix_cache: PrefixCache | None = None,
        response_cache: ResponseCache | None = None,
        semantic_cache: SemanticCache | None = None,
        speculative: Speculative | str | dict | bool | None = "auto",
        draft: DraftModel | None = None,
    ):
        model_vocab = getattr(backend, "vocab_size", -1)
        if model_vocab > 0 and tokenizer.vocab_size > model_vocab:
            raise VocabularyMismatch(
                f"tokenizer has {tokenizer.vocab_size} tokens but the model's logits cover {model_vocab}; "
                "tokenizer.json does not belong to this model"
            )
        self.backend, self.tokenizer = backend, tokenizer
        self.manifest, self.variant = manifest, variant
        self.template = ChatTemplate(tokenizer.chat_template or CHATML, tokenizer.special_tokens)
        self._lock = threading.Lock()
        self._kv_ids: list[int] = []  # the tokens whose KV the backend holds, in order
        self._canonical = 0  # leading cached tokens computed as whole aligned prefill chunks
        self._closed = False
        self.load_s = 0.0
        self.prefix_cache = prefix_cache
        self.response_cache = response_cache
        self.semantic_cache = semantic_cache
        self.prefill_tokens = 0  # tokens run through prefill since load (cache effectiveness)
        self.speculative = resolve_speculative(speculative)
        self.draft = draft
        if draft is not None:
            try:
                draft.check_tokenizer(tokenizer, manifest.name if manifest else "this model")
            except VocabularyMismatch:
                draft.close()
                raise
            if manifest is not None and variant in manifest.variants and draft.weight_bytes:
                draft.relative_cost = draft.weight_bytes / manifest.variant_bytes(variant)
        self.answer_history = AnswerHistory()  # recent answers: drafts of the opt-in "history" source
        self.speculation = SpeculationStats()  # drafted / accepted since load, per source

    @classmethod
    def load(
        cls,
        model: str | Path = DEFAULT_MODEL,
        *,
        variant: str | None = None,
        max_context: int | None = None,
        threads: int | None = None,
        profile=None,
        store: ModelStore | None = None,
        verify: bool = True,
        prefix_cache: PrefixCache | int | bool = True,
        response_cache: ResponseCache | None = None,
        semantic_cache: SemanticCache | None = None,
        speculative: Speculative | str | dict | bool = "auto",
        draft: str | Path | DraftModel | None = None,
        draft_variant: str | None = None,
    ) -> Engine:
        """Load an installed model by name (``edgellm pull NAME``) or a model directory.

        ``profile`` (a DeviceProfile, a profile name such as "rpi4", a profile TOML path, or
        anything with ``threads``/``max_context``/``variant``) supplies defaults for the
        explicit arguments, the execution providers, the prefix cache budget and the memory
        budget. ``LoadPlan.resolve`` decides all of them (``engine.plan`` keeps it); before
        anything is loaded, the peak RSS is estimated and MemoryBudgetExceeded raised when it
        would not fit (EDGELLM_MAX_RSS_MB overrides the budget; 0 = none).
        ``prefix_cache``: True (a PrefixCache, 32 MB unless the profile says), a byte budget, a
        PrefixCache to share between engines, or False. ``response_cache`` /
        ``semantic_cache``: answer caches for deterministic requests (off by default); the
        semantic one matches a chat's last user question by meaning.

        ``speculative``: "auto" (default: grammar fast-forward, prompt lookup and the draft model
        when one is given), "off", a Speculative or a dict of its fields (``history=True`` adds
        drafts from earlier answers);
        ``generate`` may override it per request (edgellm_sdk.speculative). ``draft``: a model sharing this model's tokenizer (name, directory or a
        loaded DraftModel), e.g. a student made by ``edgellm distill``, that proposes tokens
        the target verifies in one batched forward; ``draft_variant`` picks its variant.
        """
        from .backends.ort import OrtBackend

        t0 = time.perf_counter()
        plan = LoadPlan.resolve(
            model,
            profile,
            variant=variant,
            max_context=max_context,
            threads=threads,
            prefix_cache=prefix_cache,
            draft=None if isinstance(draft, DraftModel) else draft,
            draft_variant=draft_variant,
            store=store,
        )
        speculative = resolve_speculative(speculative)
        manifest = plan.manifest
        if verify:
            small = [f for f in manifest.files if not f.startswith("onnx/")]
            manifest.verify(small + manifest.variant_files(plan.variant))
        plan.check_memory()
        tokenizer = Tokenizer.from_dir(manifest.root)
        release_freed_heap()  # before the session allocates: what the tokenizer's parse freed
        backend = OrtBackend(
            plan.onnx_path,
            max_context=plan.max_context,
            threads=plan.threads,
            providers=plan.providers,
            inter_op_threads=plan.inter_op_threads,
            kv_dtype=plan.kv_dtype,
        )
        if plan.prefix_cache_bytes:
            prefix_cache = PrefixCache(plan.prefix_cache_bytes)
        if plan.draft is not None:
            draft = DraftModel.load(
                plan.draft.root,
                threads=plan.threads,
                max_context=plan.max_context,
                variant=plan.draft_variant,
                verify=verify,
                providers=plan.providers,
            )
        shared = prefix_cache if isinstance(prefix_cache, PrefixCache) else None
        engine = cls(
            backend,
            tokenizer,
            manifest=manifest,
            variant=plan.variant,
            prefix_cache=shared,
            response_cache=response_cache,
            semantic_cache=semantic_cache,
            speculative=speculative,
            draft=draft if isinstance(draft, DraftModel) else None,
        )
        engine.plan = plan
        engine.load_s = time.perf_counter() - t0
        release_freed_heap()  # and what the session's graph optimization freed
        return engine

    # --- prompts ---------------------------------------------------------------------
    @property
    def max_context(self) -> int:
        return self.backend.max_context

    def render(self, messages: Iterable[MessageLike], *, add_generation_prompt: bool = True) -> str:
        return self.template.render(as_messages(messages), add_generation_prompt=add_generation_prompt)

    def _head_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of a conversation so far (no generation prompt): the semantic cache's scope."""
        return self.tokenizer.encode(self.render(messages, add_generation_prompt=False))

    def prompt_ids(self, prompt: str | Sequence[MessageLike] | Sequence[int]) -> list[int]:
        """Token ids for raw text, a message list (chat template applied), or ids as given."""
        if isinstance(prompt, str):
            if not prompt:
                raise ValueError("prompt is empty; pass some text or a list of messages")
            return self.tokenizer.encode(prompt)
        items = list(prompt)
        if items and all(isinstance(i, (int, np.integer)) for i in items):
            ids = [int(i) for i in items]  # type: ignore[arg-type]  # all are ints (checked above)
            vocab = self.tokenizer.vocab_size
            if any(not 0 <= i < vocab for i in ids):
                raise ValueError(f"token ids must be in [0, {vocab})")
            return ids
        return self.tokenizer.encode(self.render(items))  # type: ignore[arg-type]  # messages: as_messages checks

    # --- generation ------------------------------------------------------------------
    def generate(
        self,
        prompt,
        *,
        max_tokens: int = 256,
        stop: str | Sequence[str] = (),
        sampling: Sampling | None = None,
        deadline_s: float | None = None,
        cancel: threading.Event | None = None,
        context: str | bytes | None = None,
        kv_reuse: str = "exact",
        schema=None,
        regex: str | None = None,
        grammar: str | None = None,
        speculative: Speculative | str | dict | bool | None = None,
    ) -> Iterator[Token]:
        """Stream tokens. The last item has ``finish_reason`` and ``usage`` set.

        ``kv_reuse``: "exact" (default) reuses only KV computed by chunk-aligned prefill, so
        the answer is token-for-token what a cold start gives; "full" also reuses the KV of
        tokens generated earlier (a chat's previous replies): nothing is recomputed, but the
        quantized kernels round a token's activations differently when it was decoded alone,
        so answers may differ slightly from a cold replay. ChatSession uses "full".

        ``schema`` (JSON Schema dict/text or pydantic model), ``regex`` or ``grammar`` (Lark)
        constrain the output token by token (the ``structured`` extra); generation ends when
        the constrained output is complete.

        ``speculative`` overrides the Engine's setting for this request (see ``load``). Greedy
        answers keep the tokens the model agrees with; sampled ones use rejection sampling,
        so their distribution is unchanged. Batched verification rounds activations slightly
        differently than one token at a time, so a greedy answer can differ where two tokens
        are nearly tied (benchmarks/bench_decode.py measures how often).

        ``context`` is a digest of the outside state the answer depends on (sensor values,
        time of day...); it is part of the ResponseCache key. Raises ValueError /
        ContextOverflow up front (before the first token)."""
        t_call = time.perf_counter()
        if self._closed:
            raise EngineClosed("this Engine was closed; load a new one")
        ids = self.prompt_ids(prompt)
        stops = [stop] if isinstance(stop, str) else list(stop)
        if any(not isinstance(s, str) for s in stops):
            raise ValueError("stop must be a string or a list of strings")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ValueError(f"max_tokens must be an int in [1, {self.max_context}], got {max_tokens!r}")
        if deadline_s is not None and not deadline_s > 0:
            raise ValueError(f"deadline_s must be > 0 seconds or None, got {deadline_s!r}")
        if len(ids) + max_tokens > self.max_context:
            raise ContextOverflow(len(ids), max_tokens, self.max_context)
        deadline = t_call + deadline_s if deadline_s is not None else None
        sampling = sampling or GREEDY
        if kv_reuse not in ("exact", "full"):
            raise ValueError(f"kv_reuse must be 'exact' or 'full', got {kv_reuse!r}")
        vocab = self.backend.vocab_size if getattr(self.backend, "vocab_size", -1) > 0 else self.tokenizer.vocab_size
        constraint = compile_constraint(self.tokenizer, vocab, schema=schema, regex=regex, grammar=grammar)
        spec = self.speculative if speculative is None else resolve_speculative(speculative)
        run = self._run(ids, max_tokens, stops, sampling, deadline, cancel, t_call, kv_reuse, constraint, spec)
        caches = AnswerCaches(self.response_cache, self.semantic_cache)
        if not sampling.deterministic or not caches.enabled:
            return run
        key = caches.key(
            self.model_id,
            self._head_ids,
            prompt,
            ids,
            sampling=sampling,
            stop=stops,
            max_tokens=max_tokens,
            context=context,
            grammar=constraint.grammar if constraint is not None else None,
        )
        hit = caches.get(key)
        if hit is not None:
            run.close()
            return self._replay(hit, len(ids), t_call)
        return caches.record(run, key)

    def complete(self, prompt, **kwargs) -> Completion:
        return Completion.from_tokens(self.generate(prompt, **kwargs), self.tokenizer.eos_ids)

    def chat(
        self, messages: Sequence[MessageLike], *, tools: Sequence | None = None, max_tool_rounds: int = 3, **kwargs
    ) -> Completion:
        """One chat turn. With ``tools`` (callables or JSON descriptions) the model may call them
        first (see edgellm_sdk.tools); ``Completion.tool_calls`` lists the calls made."""
        if tools:
            from .tools import chat_with_tools

            return chat_with_tools(self, messages, tools, max_rounds=max_tool_rounds, **kwargs)
        return self.complete(as_messages(messages), **kwargs)

    def session(self, system: str | None = None, **defaults) -> ChatSession:
        from .session import ChatSession

        return ChatSession(self, system, **defaults)

    def _replay(self, hit: CachedResponse, prompt_tokens: int, t_call: float) -> Iterator[Token]:
        generated = sum(1 for i, _ in hit.pieces if i >= 0 and i not in self.tokenizer.eos_ids)
        for i, (token_id, text) in enumerate(hit.pieces):
            if i < len(hit.pieces) - 1:
                yield Token(token_id, text)
            else:
                elapsed = time.perf_counter() - t_call
                yield Token(
                    token_id, text, hit.finish_reason, Usage(prompt_tokens, generated, elapsed, elapsed), cached=True
                )

    def _run(
        self,
        ids: list[int],
        max_tokens: int,
        stops: list[str],
        sampling: Sampling,
        deadline: float | None,
        cancel: threading.Event | None,
        t_call: float,
        kv_reuse: str,
        constraint,
        spec: Speculative,
    ) -> Generator[Token, None, None]:
        def interrupted() -> FinishReason | None:
            if cancel is not None and cancel.is_set():
                return "cancelled"
            if deadline is not None and time.perf_counter() >= deadline:
                return "deadline"
            return None

        wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            yield Token(-1, "", "deadline", Usage(len(ids), 0, 0.0, time.perf_counter() - t_call))
            return
        decoder: Decoder | None = None
        tokens: Generator[int, None, None] | None = None
        try:
            if self._closed:
                raise EngineClosed("this Engine was closed; load a new one")
            stream = self.tokenizer.stream(stops)
            generated: list[int] = []
            ttft, reason = 0.0, None
            # tokens the grammar forces before any choice ('{"command": "') are prefilled with the prompt
            head = constraint.forced()[:max_tokens] if constraint is not None and spec.constraint else []
            logits = None
            if head and constraint.ends_after(head):
                pass  # the grammar allows exactly one output: the model has no choice to make
            elif (reason := interrupted()) is None:
                logits, reason = self._prefill(ids + head, interrupted, kv_reuse)
            if reason is not None:
                yield Token(-1, stream.flush(), reason, self._usage(ids, generated, ttft, t_call))
                return
            decoder = Decoder(
                self.backend,
                self._kv_ids,
                logits,
                prompt=ids,
                sampling=sampling,
                rng=np.random.default_rng(sampling.seed),
                max_tokens=max_tokens,
                eos_ids=self.tokenizer.eos_ids,
                constraint=constraint,
                speculative=spec,
                history=self.answer_history,
                draft=self.draft,
                head=head,
            )
            tokens = iter(decoder)
            eos = self.tokenizer.eos_ids
            for token in tokens:
                if not generated:
                    ttft = time.perf_counter() - t_call
                if token in eos:
                    yield Token(token, stream.flush(), "stop", self._usage(ids, generated, ttft, t_call, decoder))
                    return
                generated.append(token)
                text = stream.step(token)
                if stream.stopped is not None or (constraint is not None and constraint.done):
                    reason = "stop"
                elif len(generated) >= max_tokens:
                    reason = "length"
                else:
                    reason = interrupted()
                if reason is not None:
                    yield Token(
                        token, text + stream.flush(), reason, self._usage(ids, generated, ttft, t_call, decoder)
                    )
                    return
                yield Token(token, text)
        finally:
            if decoder is not None and tokens is not None:
                tokens.close()  # drops the KV of drafts nobody will read
                self.speculation.merge(decoder.stats)
            self._lock.release()

    def _prefill(
        self, ids: list[int], interrupted, kv_reuse: str = "exact"
    ) -> tuple[np.ndarray | None, FinishReason | None]:
        """Feed ``ids`` after the longest prefix already computed; logits of the last one.

        The reusable prefix is the longer of what the KV cache holds now and the best
        PrefixCache entry (at least one token is always fed). With kv_reuse "exact" only
        chunk-aligned prefill KV is reused; "full" also reuses KV written while decoding.
        """
        limit = len(ids) - 1
        turn = turn_end(ids, self.tokenizer.eos_ids)
        if kv_reuse == "full":
            common = common_prefix(self._kv_ids, ids, min(limit, len(self._kv_ids)))
        else:
            common = boundary_at_or_before(common_prefix(self._kv_ids, ids, min(limit, self._canonical)), turn)
        cache = self.prefix_cache
        if cache is not None:
            found, entry = cache.longest(ids[:limit])
            found = boundary_at_or_before(found, turn)
            cache.record(hit=max(found, common) >= PREFILL_CHUNK)
            if entry is not None and found > common:
                self.backend.restore(entry.arrays, found)
                self._kv_ids, self._canonical, common = ids[:found], found, found
        self.backend.truncate(common)
        self._kv_ids, self._canonical = ids[:common], min(self._canonical, common)
        logits = None
        for start, end in chunks(common, len(ids), turn):
            if start > common and (reason := interrupted()) is not None:
                return None, reason
            logits = self.backend.forward(ids[start:end])
            self.prefill_tokens += end - start
            self._kv_ids = ids[:end]
            if start == self._canonical and is_boundary(end, turn):
                self._canonical = end
        if cache is not None:
            self._remember_prefix(ids[: self._canonical], turn)
        return logits, None

    def _remember_prefix(self, prefix: list[int], turn: int | None) -> None:
        """Cache a new prompt head once: a whole prompt when nothing like it is cached; the
        shared part when it diverges from a cached prompt (a system prompt reused with a new
        question); nothing when a cached entry already is a prefix of it."""
        cache = self.prefix_cache
        if cache is None or len(prefix) < PREFILL_CHUNK:
            return
        shared, entry = cache.longest(prefix)
        shared = boundary_at_or_before(shared, turn)
        if entry is None or shared < PREFILL_CHUNK:
            cache.put(prefix, self.backend.snapshot(len(prefix)))
        elif shared < len(entry.tokens) and not _exact_entry(cache, prefix[:shared]):
            cache.put(prefix[:shared], self.backend.snapshot(shared))

    def warm(self, prompt) -> int:
        """Prefill ``prompt`` (text, messages or ids) into the prefix cache; returns cached tokens.

        For a system prompt, pass ``[{"role": "system", "content": ...}]``: its rendering is the
        head of every conversation that uses it."""
        if self.prefix_cache is None:
            raise ValueError("this Engine has no prefix cache; load it with prefix_cache=True")
        if isinstance(prompt, (list, tuple)) and prompt and not isinstance(prompt[0], (int, np.integer)):
            ids = self.tokenizer.encode(self.render(prompt, add_generation_prompt=False))
        else:
            ids = self.prompt_ids(prompt)
        with self._lock:
            if self._closed:
                raise EngineClosed("this Engine was closed; load a new one")
            self._prefill(ids + [ids[-1]], lambda: None)  # the extra token is never cached
            aligned = boundary_at_or_before(len(ids), turn_end(ids, self.tokenizer.eos_ids))
            if aligned and not self.prefix_cache.covers(ids[:aligned]):
                self.prefix_cache.put(ids[:aligned], self.backend.snapshot(aligned))
        return aligned

    @functools.cached_property
    def model_id(self) -> str:
        """Identifies the exact weights (for caches that outlive the process); computed once, as
        response-cache keys use it on every request."""
        if self.manifest is None:
            return f"unknown:{self.variant}"
        files = self.manifest.variant_files(self.variant) if self.variant in self.manifest.variants else []
        # the graph and its external weights: a re-trained model keeps the same graph file
        hashes = [self.manifest.files.get(f, {}).get("sha256", "unhashed") for f in files] or ["unhashed"]
        digest = hashlib.sha256("".join(hashes).encode()).hexdigest()
        return f"{self.manifest.name}:{self.variant}:{digest[:16]}"

    def _usage(
        self, ids: list[int], generated: list[int], ttft: float, t_call: float, decoder: Decoder | None = None
    ) -> Usage:
        if decoder is None:
            return Usage(len(ids), len(generated), ttft, time.perf_counter() - t_call)
        stats = decoder.stats
        return Usage(
            len(ids),
            len(generated),
            ttft,
            time.perf_counter() - t_call,
            drafted_tokens=stats.total_drafted,
            accepted_tokens=stats.total_accepted,
            warnings=tuple(decoder.warnings),
        )

    def reset(self) -> None:
        """Forget the cached KV state (the next request prefills from scratch)."""
        with self._lock:
            self._kv_ids, self._canonical = [], 0
            self.backend.truncate(0)
            if self.draft is not None:
                self.draft.reset()

    # --- lifetime --------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.backend.close()
                if self.draft is not None:
                    self.draft.close()

    def __enter__(self) -> Engine:  # noqa: PYI034  (no typing_extensions dependency in the core)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        name = self.manifest.name if self.manifest else "?"
        return f"Engine(model={name!r}, variant={self.variant!r}, max_context={self.max_context})"


def _exact_entry(cache: PrefixCache, ids: list[int]) -> bool:
    n, entry = cache.longest(ids)
    return entry is not None and n == len(ids) == len(entry.tokens)
