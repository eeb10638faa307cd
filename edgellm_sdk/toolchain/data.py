"""Toolchain data files: task / prompt JSONL and plain text, with errors that name the line.

A task line (eval, finetune) is a prompt and its expected answer::

    {"prompt": "turn left 90 degrees", "target": "{\"command\": \"turn\", ...}", "system": "...", "match": "json"}
    {"messages": [{"role": "system", ...}, {"role": "user", ...}], "target": "..."}

``match`` is "exact" (default: whitespace-trimmed string equality) or "json" (parsed JSON
equality). A prompt line (distill) has no target. Blank lines and lines starting with ``#``
are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolchainError

MATCHES = ("exact", "json")


@dataclass(frozen=True)
class Example:
    messages: tuple[dict, ...]  # chat messages ending with the user turn
    target: str | None
    match: str = "exact"
    line: int = 0


def read_text(path: str | Path, *, what: str = "text file") -> str:
    p = Path(path)
    if not p.is_file():
        raise ToolchainError(f"{what} {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ToolchainError(f"{p} is not UTF-8 text (byte {e.start}); convert it with iconv") from e
    if not text.strip():
        raise ToolchainError(f"{what} {p} is empty")
    return text


def read_examples(path: str | Path, *, need_target: bool) -> list[Example]:
    """Parse a JSONL file of examples; every problem is reported with its line number."""
    p = Path(path)
    text = read_text(p, what="data file")
    examples, errors = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            examples.append(_example(json.loads(raw), n, need_target))
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: not valid JSON ({e.msg} at column {e.colno})")
        except ValueError as e:
            errors.append(f"line {n}: {e}")
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ToolchainError(f"{p}: {len(errors)} bad line(s){more}:\n  " + "\n  ".join(errors[:10]))
    if not examples:
        raise ToolchainError(f"{p} has no examples")
    return examples


def _example(obj, line: int, need_target: bool) -> Example:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")  # noqa: TRY004  (reported per line)
    if "messages" in obj:
        messages = obj["messages"]
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            raise ValueError('"messages" must be a non-empty list of {"role": str, "content": str}')
    elif isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
        messages = [{"role": "user", "content": obj["prompt"]}]
    else:
        raise ValueError('needs "prompt" (a non-empty string) or "messages"')
    if isinstance(obj.get("system"), str):
        messages = [{"role": "system", "content": obj["system"]}] + [m for m in messages if m["role"] != "system"]
    target = obj.get("target")
    if target is not None and not isinstance(target, str):
        target = json.dumps(target, ensure_ascii=False)  # a JSON value given inline
    if need_target and target is None:
        raise ValueError('needs "target" (the expected answer)')
    match = obj.get("match", "exact")
    if match not in MATCHES:
        raise ValueError(f'"match" must be one of {MATCHES}, got {match!r}')
    if match == "json" and target is not None:
        try:
            json.loads(target)
        except json.JSONDecodeError as e:
            raise ValueError(f'"target" is not valid JSON but "match" is "json" ({e.msg})') from e
    return Example(tuple(messages), target, match, line)


def answers_match(answer: str, example: Example) -> bool:
    if example.target is None:
        raise ValueError("example has no target")
    if example.match == "json":
        try:
            return json.loads(answer) == json.loads(example.target)
        except json.JSONDecodeError:
            return False
    return answer.strip() == example.target.strip()
