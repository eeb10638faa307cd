"""ChatSession: a multi-turn chat on any engine (``EngineAPI``) that keeps its history in the context."""

from __future__ import annotations

from collections.abc import Iterator

from .engine_api import EngineAPI
from .types import Completion, Message, Token


class ChatSession:
    """Multi-turn chat that keeps its history inside the context budget.

    When a new turn would not fit (prompt + max_tokens > context), the oldest
    user/assistant turns are dropped; the system prompt is always kept. The Engine
    reuses the KV of everything already computed (``kv_reuse="full"``, including the
    previous replies), so a turn prefills only its new tokens.
    """

    def __init__(self, engine: EngineAPI, system: str | None = None, **defaults):
        self.engine = engine
        self.system = system
        self.history: list[Message] = []
        self.defaults = defaults

    def _fit(self, messages: list[Message], max_tokens: int) -> list[Message]:
        head = [Message("system", self.system)] if self.system else []
        turns = list(messages)
        budget = self.engine.max_context - max_tokens
        while True:
            candidate = head + turns
            if len(self.engine.prompt_ids(candidate)) <= budget or len(turns) <= 1:
                return candidate
            turns = turns[2:] if len(turns) > 2 else turns[1:]  # drop the oldest exchange

    def stream(self, text: str, **kwargs) -> Iterator[Token]:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("chat message is empty; pass some text")
        options = {"kv_reuse": "full", **self.defaults, **kwargs}
        max_tokens = options.setdefault("max_tokens", 256)
        messages = self._fit(self.history + [Message("user", text)], max_tokens)
        pieces: list[str] = []
        for token in self.engine.generate(messages, **options):
            pieces.append(token.text)
            yield token
        start = 1 if self.system else 0
        self.history = messages[start:] + [Message("assistant", "".join(pieces))]

    def send(self, text: str, **kwargs) -> Completion:
        return Completion.from_tokens(self.stream(text, **kwargs), self.engine.tokenizer.eos_ids)
