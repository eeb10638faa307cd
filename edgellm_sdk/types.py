"""Plain data types shared by every layer (stdlib only)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled", "deadline"]
Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Token:
    """One generated token and the text it made printable (may be "" while UTF-8 is incomplete)."""

    id: int  # -1 on an end marker that carries no token (cancelled before a new token)
    text: str
    finish_reason: FinishReason | None = None  # set on the last item of a generation
    usage: Usage | None = None  # set on the last item of a generation
    cached: bool = False  # on the last item: the answer came from the ResponseCache


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # time to first token (prefill + first sample)
    total_s: float
    drafted_tokens: int = 0  # speculative decoding: tokens drafted for verification
    accepted_tokens: int = 0  # ... of which the model accepted (each saved a forward)
    warnings: tuple[str, ...] = ()  # e.g. a draft model that failed (decoding went on without it)

    @property
    def acceptance_rate(self) -> float:
        """Accepted / drafted tokens (0 when nothing was drafted)."""
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens/s after the first token (the steady decode rate)."""
        decode_s = self.total_s - self.ttft_s
        return (self.completion_tokens - 1) / decode_s if self.completion_tokens > 1 and decode_s > 0 else 0.0


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    usage: Usage
    cached: bool = False
    tool_calls: tuple = ()  # ToolCall records when chat(tools=...) was used

    @classmethod
    def from_tokens(cls, tokens: Iterable[Token], eos_ids: Collection[int] = ()) -> Completion:
        """Collect a token stream (as ``Engine.generate`` yields it) into one Completion."""
        text, ids, last = [], [], None
        for tok in tokens:
            text.append(tok.text)
            if tok.id >= 0 and tok.id not in eos_ids:
                ids.append(tok.id)
            last = tok
        if last is None or last.finish_reason is None or last.usage is None:
            raise ValueError("the token stream ended without a final token carrying finish_reason and usage")
        return cls("".join(text), tuple(ids), last.finish_reason, last.usage, cached=last.cached)
