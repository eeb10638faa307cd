"""Test seams, in one place. Each one implements ``EngineAPI``: mypy checks it (`make lint` types this
file) and tests/test_fakes.py checks it at run time. A seam tests logic around the model; the
features themselves are also tested on the real Engine."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from edgellm_sdk.cache.prefix import PrefixCache
from edgellm_sdk.chat import CHATML, ChatTemplate, MessageLike, as_messages
from edgellm_sdk.engine_api import EngineAPI
from edgellm_sdk.sampling import Sampling
from edgellm_sdk.tokenizer import Tokenizer
from edgellm_sdk.types import Completion, FinishReason, Token, Usage


class ScriptedEngine:
    """Answers with scripted replies, in order (the last one repeats), and records each conversation.

    ``finish`` is the finish reason every reply reports (e.g. "deadline" for a late model).
    """

    model_id = "scripted:test"
    max_context = 2048
    prefix_cache: PrefixCache | None = None

    def __init__(
        self, replies: Sequence[str] = ("",), *, finish: FinishReason = "stop", tokenizer: Tokenizer | None = None
    ):
        self.replies = list(replies) or [""]
        self.finish: FinishReason = finish
        self.seen: list[list[dict[str, str]]] = []
        self._tokenizer = tokenizer
        self._template = ChatTemplate(CHATML)

    @property
    def text(self) -> str:
        """The next reply."""
        return self.replies[0]

    @text.setter
    def text(self, value: str) -> None:
        self.replies = [value]

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            raise AttributeError("this ScriptedEngine has no tokenizer; pass tokenizer=")
        return self._tokenizer

    def render(self, messages: Iterable[MessageLike], *, add_generation_prompt: bool = True) -> str:
        return self._template.render(as_messages(messages), add_generation_prompt=add_generation_prompt)

    def prompt_ids(self, prompt: str | Sequence[MessageLike] | Sequence[int]) -> list[int]:
        text = prompt if isinstance(prompt, str) else self.render(prompt)  # type: ignore[arg-type]
        return self.tokenizer.encode(text)

    def warm(self, prompt: Any) -> int:
        raise ValueError("this engine has no prefix cache; load it with prefix_cache=True")

    def _next_reply(self, prompt: Any) -> str:
        if not isinstance(prompt, str):
            self.seen.append([m.as_dict() for m in as_messages(prompt)])
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def generate(
        self,
        prompt: Any,
        *,
        max_tokens: int = 256,
        stop: str | Sequence[str] = (),
        sampling: Sampling | None = None,
        deadline_s: float | None = None,
        cancel: threading.Event | None = None,
        context: str | bytes | None = None,
        kv_reuse: str = "exact",
        schema: Any = None,
        regex: str | None = None,
        grammar: str | None = None,
        speculative: Any = None,
    ) -> Iterator[Token]:
        words = self._next_reply(prompt).split(" ")
        for i, word in enumerate(words):
            text = word if i == 0 else " " + word
            last = i == len(words) - 1
            yield Token(i, text, self.finish if last else None, Usage(1, len(words), 0.0, 0.0) if last else None)

    def complete(self, prompt: Any, **options: Any) -> Completion:
        return Completion(self._next_reply(prompt), (), self.finish, Usage(1, 1, 0.0, 0.0))

    def chat(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence | None = None,
        max_tool_rounds: int = 3,
        **options: Any,
    ) -> Completion:
        return self.complete(as_messages(messages), **options)


_checked: EngineAPI = ScriptedEngine()  # mypy: the seam has the Engine's shape
