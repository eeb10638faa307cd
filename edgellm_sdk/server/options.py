"""Request bodies -> Engine arguments, checked against the server's limits.

Every rejection is a ``BadRequest`` naming the parameter and the allowed range; the API modules
turn it into their own error shape. An omitted temperature means greedy decoding (the SDK's
default, and what makes the answer caches apply), not OpenAI's 1.0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import EdgeLLMError
from ..sampling import Sampling


class BadRequest(EdgeLLMError):
    """A request the server will not run: ``status`` 400 (bad value) or 413 (body too large)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        self.param, self.status = param, status
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_messages: int = 256
    max_tokens: int = 1024  # also capped by the model's context window
    default_max_tokens: int = 256
    max_stops: int = 4


async def read_json(request, limits: Limits) -> dict:
    """The body as a JSON object: 413 past ``max_body_bytes`` (checked while reading), 400 if malformed."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise BadRequest(f"request body is {declared} bytes; the limit is {limits.max_body_bytes}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise BadRequest(f"request body exceeds the limit of {limits.max_body_bytes} bytes", status=413)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(f"malformed JSON body: {e}") from e
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    return body


def number(body: dict, name: str, low: float, high: float, default: float | None = None, *, integer=False) -> Any:
    """``body[name]`` checked to lie in [low, high] (an int when ``integer``); ``default`` when absent."""
    value = body.get(name)
    if value is None:
        return default
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or not low <= value <= high:
        raise BadRequest(f"{name} must be {kind} in [{low}, {high}], got {value!r}", param=name)
    return value


def max_tokens(body: dict, limits: Limits, max_context: int, *names: str) -> int:
    """The first of ``names`` present (e.g. max_completion_tokens, max_tokens), within the limits."""
    high = min(limits.max_tokens, max_context - 1)
    for name in names:
        if body.get(name) is not None:
            return int(number(body, name, 1, high, integer=True))
    return min(limits.default_max_tokens, high)


def stops(value: Any, limits: Limits, param: str = "stop") -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items) or len(items) > limits.max_stops:
        raise BadRequest(
            f"{param} must be a non-empty string or a list of up to {limits.max_stops} of them", param=param
        )
    return items


def sampling(body: dict, prefix: str = "") -> Sampling:
    """temperature [0, 2], top_p (0, 1], top_k, seed, repetition penalty from ``body``."""
    return Sampling(
        temperature=float(number(body, "temperature", 0, 2, 0.0)),
        top_p=float(number(body, "top_p", 1e-6, 1, 1.0)),
        top_k=int(number(body, "top_k", 0, 1_000_000, 0, integer=True)),
        repetition_penalty=float(number(body, "repeat_penalty", 0.5, 2, 1.0)),
        seed=number(body, "seed", -(2**63), 2**63 - 1, None, integer=True),
    )


def text_of(content: Any, param: str) -> str:
    """A message's content: a string, or OpenAI's list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        if any(p.get("type") not in ("text", None) for p in content):
            raise BadRequest("only text content parts are supported (this model reads no images or audio)", param=param)
        return "".join(str(p.get("text", "")) for p in content)
    raise BadRequest(f"{param} must be a string or a list of text parts", param=param)


def messages(body: dict, limits: Limits) -> list[dict]:
    """Chat messages (OpenAI or Ollama) as the Engine's {"role", "content"} dicts.

    An assistant turn that called tools becomes the JSON the tool-calling loop writes
    ({"tool", "arguments"}); a tool result becomes {"result": ...}, as edgellm_sdk.tools sends it."""
    items = body.get("messages")
    if not isinstance(items, list) or not items:
        raise BadRequest("messages must be a non-empty list", param="messages")
    if len(items) > limits.max_messages:
        raise BadRequest(f"messages has {len(items)} items; the limit is [1, {limits.max_messages}]", param="messages")
    out = []
    for i, m in enumerate(items):
        param = f"messages[{i}]"
        if not isinstance(m, dict):
            raise BadRequest(f"{param} must be an object", param=param)
        role = "system" if m.get("role") == "developer" else m.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise BadRequest(f"{param}.role must be system, developer, user, assistant or tool", param=param)
        content = text_of(m.get("content"), f"{param}.content")
        calls = m.get("tool_calls") or []
        if role == "assistant" and calls and isinstance(calls[0], dict):
            fn = calls[0].get("function") or {}
            args = fn.get("arguments", {})
            try:
                args = json.loads(args) if isinstance(args, str) else args
            except json.JSONDecodeError as e:
                raise BadRequest(f"{param}.tool_calls[0].function.arguments is not JSON: {e}", param=param) from e
            content = json.dumps({"tool": fn.get("name"), "arguments": args})
        elif role == "tool":
            content = json.dumps({"result": content})
        out.append({"role": role, "content": content})
    return out
