"""Goal and request messages -> Engine.generate arguments (ValueError says what is wrong)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Defaults:
    system_prompt: str
    max_tokens: int
    deadline_s: float  # 0 = none


def chat_messages(prompt: str, messages, system_prompt: str, default_system: str) -> list[dict]:
    """A chat from ``prompt`` (one user turn) or ``messages``; the system prompt goes first unless
    the messages bring their own."""
    if prompt and messages:
        raise ValueError("give either prompt or messages, not both")
    if not prompt and not messages:
        raise ValueError("the request is empty: set prompt (one user turn) or messages (a chat)")
    if prompt:
        turns = [{"role": "user", "content": prompt}]
    else:
        turns = [{"role": m.role, "content": m.content} for m in messages]
        bad = [t["role"] for t in turns if t["role"] not in ("system", "user", "assistant", "tool")]
        if bad:
            raise ValueError(f"message role {bad[0]!r} is not one of system, user, assistant, tool")
    system = system_prompt or default_system
    if system and turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": system})
    return turns


def generate_kwargs(goal, defaults: Defaults) -> tuple[list[dict], dict]:
    """(messages, keyword arguments of Engine.generate) for a Generate goal."""
    from edgellm_sdk import Sampling

    messages = chat_messages(goal.prompt, goal.messages, goal.system_prompt, defaults.system_prompt)
    sampling = Sampling(
        temperature=float(goal.temperature),
        top_k=int(goal.top_k),
        top_p=float(goal.top_p),
        repetition_penalty=float(goal.repetition_penalty),
        seed=int(goal.seed) if goal.seed >= 0 else None,
    )
    schema = None
    if goal.json_schema:
        try:
            schema = json.loads(goal.json_schema)
        except json.JSONDecodeError as exc:
            raise ValueError(f"json_schema is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if goal.deadline_s < 0:
        raise ValueError(f"deadline_s must be >= 0 (0 = the node's default), got {goal.deadline_s:g}")
    deadline = goal.deadline_s or defaults.deadline_s or None
    return messages, {
        "max_tokens": int(goal.max_tokens) or defaults.max_tokens,
        "sampling": sampling,
        "stop": list(goal.stop),
        "schema": schema,
        "deadline_s": deadline,
    }
