"""Answer caches in front of generation: exact (ResponseCache), then by meaning (SemanticCache)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..chat import as_messages
from ..types import Message
from .response import CachedResponse, ResponseCache, response_key
from .semantic import SemanticCache


@dataclass(frozen=True)
class AnswerKey:
    exact: str
    scope: str | None = None  # semantic: everything but the wording of the last user question
    question: str | None = None
    prompt_text: str | None = None  # what was asked (text or message contents): kept off disk if it has PII


class AnswerCaches:
    def __init__(self, response: ResponseCache | None, semantic: SemanticCache | None):
        self.response, self.semantic = response, semantic

    @property
    def enabled(self) -> bool:
        return self.response is not None or self.semantic is not None

    def key(
        self,
        model_id: str,
        head_ids: Callable[[Sequence[Message]], list[int]],
        prompt,
        ids,
        *,
        sampling,
        stop,
        max_tokens,
        context,
        grammar,
    ) -> AnswerKey:
        """``head_ids`` renders and encodes the conversation before the last question (the scope)."""
        common = {"sampling": sampling, "stop": stop, "max_tokens": max_tokens, "context": context, "grammar": grammar}
        exact = response_key(model_id=model_id, prompt_ids=ids, **common)
        if isinstance(prompt, str):
            return AnswerKey(exact, prompt_text=prompt)
        try:
            messages = as_messages(prompt)
        except ValueError:
            return AnswerKey(exact)  # token ids, not messages
        text = "\n".join(m.content for m in messages)
        if self.semantic is None or messages[-1].role != "user":
            return AnswerKey(exact, prompt_text=text)
        head = head_ids(messages[:-1]) if len(messages) > 1 else []
        scope = response_key(model_id=model_id, prompt_ids=head, **common)
        return AnswerKey(exact, scope, messages[-1].content, text)

    def get(self, key: AnswerKey) -> CachedResponse | None:
        hit = self.response.get(key.exact) if self.response is not None else None
        if hit is None and self.semantic is not None and key.scope is not None and key.question is not None:
            semantic = self.semantic.lookup(key.scope, key.question)
            hit = semantic.response if semantic is not None else None
        return hit

    def record(self, run: Iterator, key: AnswerKey) -> Iterator:
        """Pass tokens through; store the answer once it ended normally (not cancelled or late)."""
        pieces = []
        for token in run:
            pieces.append((token.id, token.text))
            yield token
            if token.finish_reason in ("stop", "length"):
                answer = CachedResponse(pieces, token.finish_reason)
                if self.response is not None:
                    self.response.put(key.exact, answer, prompt=key.prompt_text)
                if self.semantic is not None and key.scope is not None and key.question is not None:
                    self.semantic.put(key.scope, key.question, answer)
