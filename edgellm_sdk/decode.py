"""The decode loop: choose a token, run the model, repeat — speculatively when drafts exist.

``Decoder`` yields generated token ids one at a time; the Engine turns them into text,
checks stop strings, ``max_tokens``, the deadline and cancel after each one, and closes
the iterator to end. Each round it asks the draft sources (``speculative``) for tokens to
follow the one just chosen; without drafts the round is a plain one-token forward, with
drafts it is one batched forward whose logits verify them. Rejected drafts' KV is
truncated away, so the backend always holds exactly the tokens of ``kv`` (the Engine's
list of tokens whose KV is cached), also when the consumer stops mid-round.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from .sampling import Sampling, sample
from .speculative.config import Speculative
from .speculative.lookup import AnswerHistory, NgramIndex
from .speculative.policy import DraftPolicy
from .speculative.stats import SpeculationStats
from .speculative.verify import verify


class Decoder:
    def __init__(
        self,
        backend,
        kv: list[int],
        logits: np.ndarray | None,
        *,
        prompt: list[int],
        sampling: Sampling,
        rng: np.random.Generator,
        max_tokens: int,
        eos_ids,
        constraint=None,
        speculative: Speculative,
        history: AnswerHistory | None = None,
        draft=None,
        head: Sequence[int] = (),
    ):
        self.backend, self.kv, self.first_logits = backend, kv, logits
        self.head = list(head)  # forced tokens already prefilled after the prompt; logits follow them
        self.sampling, self.rng, self.max_tokens, self.eos_ids = sampling, rng, max_tokens, eos_ids
        self.constraint, self.spec = constraint, speculative
        # fresh per request: how a request is batched must not depend on earlier ones (policy.py)
        self.policies = {
            source: DraftPolicy(
                max_draft=speculative.max_draft, cooldown=speculative.cooldown, adaptive=speculative.adaptive
            )
            for source in ("lookup", "history", "draft")
        }
        self.context = list(prompt)  # prompt + tokens emitted so far
        self.prompt_len = len(prompt)
        self.emitted = 0
        self.indexes: list[tuple[str, NgramIndex | AnswerHistory]] = []  # (source, index) of lookup drafts
        if speculative.lookup:
            index = NgramIndex(self.context, ngram_min=speculative.ngram_min, ngram_max=speculative.ngram_max)
            self.indexes.append(("lookup", index))
        self.history = history if speculative.history else None
        if self.history is not None:
            self.indexes.append(("history", self.history))
        self.draft = draft if speculative.draft else None
        self.stats = SpeculationStats()
        self.warnings: list[str] = []

    # --- the loop ----------------------------------------------------------------------
    def __iter__(self) -> Generator[int, None, None]:
        try:
            for forced in self.head:  # prefilled with the prompt (Engine: forced_head)
                self.constraint.advance(forced)
                self.stats.drafted["constraint"] += 1
                self.stats.accepted["constraint"] += 1
                self._emit(forced)
                yield forced
            assert self.first_logits is not None, "a Decoder is iterated once"
            token = self._choose(self.first_logits)
            self.first_logits = None
            while True:
                self._emit(token)
                yield token
                drafts, sources, dists, kind = self._propose()
                if drafts and sources[-1] == "constraint" and self.constraint.ends_after(drafts):
                    # the grammar completes with forced tokens: they need no forward at all
                    for drafted in drafts:
                        self.constraint.advance(drafted)
                        self.stats.accepted["constraint"] += 1
                        self._emit(drafted)
                        yield drafted
                    return
                # logits are needed where a draft must be verified and at the end; forced tokens
                # come first and need none
                first = next((i for i, src in enumerate(sources) if src != "constraint"), len(drafts))
                out = self.backend.forward([token, *drafts], last=len(drafts) + 1 - first)
                self.kv.append(token)
                if not drafts:
                    token = self._choose(out)
                    continue
                self.stats.rounds += 1
                accepted: dict[str, int] = {}
                for i, (drafted, source) in enumerate(zip(drafts, sources)):
                    row = self._masked(out[i - first]) if i >= first else None
                    ok, alt = self._verify(row, drafted, source, dists[i])
                    if not ok:
                        self.backend.truncate(len(self.kv))
                        if self.constraint is not None:
                            self.constraint.advance(alt)
                        token = alt
                        break
                    self.kv.append(drafted)
                    if self.constraint is not None:
                        self.constraint.advance(drafted)
                    self.stats.accepted[source] += 1
                    accepted[source] = accepted.get(source, 0) + 1
                    self._emit(drafted)
                    yield drafted
                else:
                    token = self._choose(out[-1])
                self._feedback(sources, accepted, kind)
        finally:
            if self.backend.position > len(self.kv):
                self.backend.truncate(len(self.kv))
            if self.history is not None and self.eos_ids:
                self.history.add(self.context[self.prompt_len :], min(self.eos_ids))

    def _emit(self, token: int) -> None:
        self.context.append(token)
        self.emitted += 1

    def _penalty_context(self):
        return self.context if self.sampling.repetition_penalty != 1.0 else ()

    def _masked(self, logits: np.ndarray) -> np.ndarray:
        return self.constraint.mask(logits) if self.constraint is not None else logits

    def _choose(self, logits: np.ndarray) -> int:
        logits = self._masked(logits)
        token = sample(logits, self.sampling, self.rng, self._penalty_context())
        if self.constraint is not None:
            self.constraint.advance(token)
        return token

    def _verify(self, logits: np.ndarray | None, drafted: int, source: str, q) -> tuple[bool, int]:
        """``logits`` already masked by the constraint."""
        if source == "constraint":
            return True, drafted  # the grammar allows nothing else here
        assert logits is not None, "a drafted token is verified against the model's logits"
        return verify(logits, drafted, self.sampling, self.rng, self._penalty_context(), q)

    # --- drafting ----------------------------------------------------------------------
    def _propose(self) -> tuple[list[int], list[str], list, int]:
        """Drafts to follow the last emitted token: forced by the grammar, then looked up in the
        prompt or the answer history, else from the draft model. Returns (tokens, source of
        each, draft distributions, n-gram length of the lookup match)."""
        limit = min(
            self.spec.max_draft, self.max_tokens - self.emitted, self.backend.max_context - self.backend.position - 1
        )
        if limit <= 0 or self.context[-1] in self.eos_ids:
            return [], [], [], 0
        drafts: list[int] = []
        if self.constraint is not None and self.spec.constraint:
            if self.constraint.done:
                return [], [], [], 0
            drafts = self.constraint.forced()[:limit]
            self.stats.drafted["constraint"] += len(drafts)
        sources = ["constraint"] * len(drafts)
        dists: list = [None] * len(drafts)
        room = limit - len(drafts)
        found, source, kind = self._lookup(room, drafts) if room > 0 and self.indexes else ([], None, 0)
        if found and source is not None:
            self.stats.drafted[source] += len(found)
            drafts, sources, dists = drafts + found, sources + [source] * len(found), dists + [None] * len(found)
            room = 0
        if room > 0 and self.draft is not None and self.policies["draft"].ready():
            k = self.policies["draft"].length(room, draft_cost=self.draft.relative_cost)
            if k:
                try:
                    found, qs = self.draft.propose(self.context + drafts, k, self.sampling, self.rng)
                except Exception as e:  # noqa: BLE001 - a broken draft must never fail the request
                    self.warnings.append(
                        f"draft model {self.draft.name} failed ({type(e).__name__}: {e}); decoding continued without it"
                    )
                    self.draft = None
                    found, qs = [], []
                found = self._admissible(drafts, found)
                if found:
                    self.stats.drafted["draft"] += len(found)
                    drafts, sources = drafts + found, sources + ["draft"] * len(found)
                    dists = dists + qs[: len(found)]
        return drafts, sources, dists, kind

    def _lookup(self, room: int, tail: list[int]) -> tuple[list[int], str | None, int]:
        """The longest n-gram match of the context (+ ``tail``) in the prompt or the answer history
        (the prompt wins ties), cut to its source's draft length: (tokens, source, n)."""
        key = self.context[-self.spec.ngram_max :] + tail
        best: tuple[list[int], str | None, int] = ([], None, 0)
        for source, index in self.indexes:
            if not self.policies[source].ready():
                continue
            found, n = index.continuation(key, room, self.spec.ngram_min, self.spec.ngram_max)
            if found and n > best[2]:
                best = (found, source, n)
        found, best_source, n = best
        if best_source is None:
            return [], None, 0
        return self._admissible(tail, found[: self.policies[best_source].length(len(found), n)]), best_source, n

    def _admissible(self, before: list[int], tokens: list[int]) -> list[int]:
        """``tokens`` cut where the grammar would reject them, and after an end-of-sequence."""
        if tokens and self.constraint is not None:
            tokens = tokens[: max(0, self.constraint.valid_prefix(before + tokens) - len(before))]
        for i, t in enumerate(tokens):
            if t in self.eos_ids:
                return tokens[: i + 1]
        return tokens

    def _feedback(self, sources: list[str], accepted: dict[str, int], kind: int) -> None:
        for source in set(sources) - {"constraint"}:
            self.policies[source].feedback(
                sources.count(source), accepted.get(source, 0), kind if source != "draft" else 0
            )
