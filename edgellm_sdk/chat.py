"""Chat templates (jinja2, from tokenizer_config.json) and ChatSession (multi-turn history)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from .types import Completion, Message, Token

if TYPE_CHECKING:
    from .engine import Engine

MessageLike = Message | dict


def as_messages(messages: Iterable[MessageLike]) -> list[Message]:
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str):
            out.append(Message(m["role"], m["content"]))
        else:
            raise ValueError(f"a message must be Message(role, content) or {{'role': str, 'content': str}}, got {m!r}")  # noqa: TRY004  (documented ValueError)
    if not out:
        raise ValueError("messages is empty; pass at least one {'role': 'user', 'content': ...}")
    return out


class ChatTemplate:
    def __init__(self, source: str, special_tokens: dict[str, str] | None = None):
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
        env.globals["raise_exception"] = raise_exception
        self._template = env.from_string(source)
        self._specials = special_tokens or {}

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        return self._template.render(messages=[m.as_dict() for m in messages],
                                     add_generation_prompt=add_generation_prompt, **self._specials)


CHATML = (  # used when a model ships no template
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatSession:
    """Multi-turn chat that keeps its history inside the context budget.

    When a new turn would not fit (prompt + max_tokens > context), the oldest
    user/assistant turns are dropped; the system prompt is always kept. The Engine
    reuses the KV of everything already computed (``kv_reuse="full"``, including the
    previous replies), so a turn prefills only its new tokens.
    """

    def __init__(self, engine: Engine, system: str | None = None, **defaults):
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
        return self.engine._collect(self.stream(text, **kwargs))
