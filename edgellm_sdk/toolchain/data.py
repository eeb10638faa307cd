"""Toolchain data files: task / prompt JSONL and plain text, with errors that name the line.

A task line (eval, finetune) is a prompt and its expected answer::

    {"prompt": "turn left 90 degrees", "target": "{\"command\": \"turn\", ...}", "system": "...", "match": "json"}
    {"messages": [{"role": "system", ...}, {"role": "user", ...}], "target": "..."}

``match`` is "exact" (default: whitespace-trimmed string equality) or "json" (parsed JSON
equality), or one of the graders for free-form answers, which compare lower-cased text with
punctuation turned into spaces (``normalize``) and whole words (CJK text needs no spaces):

- "contains": the answer holds the target or one of ``"accept": [...]``, and none of
  ``"reject": [...]``;
- "number": the answer's first number (digits, "1,024", or an English word up to twenty; after
  the last "=" when it has one: "7 + 5 = 12") is the target within ``"tolerance"`` (relative,
  default 1e-6);
- "yesno": the answer's first yes/no word ("yes", "no", 是, 否, 不是) is the target ("yes" | "no");
- "refusal": the answer refuses (``REFUSALS``: "can't", "sorry", "unsafe", 不能, ...); target "refuse".

A line may name its ``"category"``; ``edgellm eval`` reports the accuracy of each. A prompt line
(distill) has no target. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolchainError

MATCHES = ("exact", "json", "contains", "number", "yesno", "refusal")
NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
# digits not glued to a word ("CO2"), a minus only before them, "1,024" as thousands
_NUMBER = re.compile(
    r"(?:(?<![\w.])-)?(?<![a-z])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\b(" + "|".join(NUMBER_WORDS) + r")\b"
)
_YESNO = re.compile(r"(?<![a-z0-9])(yes|yeah|yep|no|nope)(?![a-z0-9])|不是|是|否")
REFUSALS = (
    "can't", "cannot", "can not", "won't", "will not", "not able", "unable", "sorry", "unsafe", "not safe",
    "decline", "refuse", "not allowed", "not permitted", "shouldn't", "should not", "not going to",
    "不能", "无法", "不可以", "不会", "抱歉", "对不起", "拒绝", "不安全",
)  # fmt: skip


@dataclass(frozen=True)
class Example:
    messages: tuple[dict, ...]  # chat messages ending with the user turn
    target: str | None
    match: str = "exact"
    line: int = 0
    accept: tuple[str, ...] = ()  # "contains": alternatives to the target
    reject: tuple[str, ...] = ()  # "contains": words that make the answer wrong
    tolerance: float = 1e-6  # "number": relative
    category: str | None = None


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
    if target is not None:
        _check_target(match, target)
    accept, reject = _strings(obj, "accept"), _strings(obj, "reject")
    tolerance = obj.get("tolerance", 1e-6)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise ValueError(f'"tolerance" must be a number in [0, 1) (relative), got {tolerance!r}')
    category = obj.get("category")
    if category is not None and not (isinstance(category, str) and category):
        raise ValueError(f'"category" must be a non-empty string, got {category!r}')
    return Example(tuple(messages), target, match, line, accept, reject, float(tolerance), category)


def _check_target(match: str, target: str) -> None:
    if match == "number" and _first_number(target) is None:
        raise ValueError(f'"target" must be a number when "match" is "number", got {target!r}')
    if match == "yesno" and target.strip().lower() not in ("yes", "no"):
        raise ValueError(f'"target" must be "yes" or "no" when "match" is "yesno", got {target!r}')
    if match == "refusal" and target.strip().lower() != "refuse":
        raise ValueError(f'"target" must be "refuse" when "match" is "refusal", got {target!r}')


def _strings(obj: dict, key: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and normalize(v) for v in value):
        raise ValueError(f'"{key}" must be a list of non-empty strings')
    return tuple(value)


def answers_match(answer: str, example: Example) -> bool:
    if example.target is None:
        raise ValueError("example has no target")
    if example.match == "json":
        try:
            return json.loads(answer) == json.loads(example.target)
        except json.JSONDecodeError:
            return False
    if example.match == "contains":
        return any(says(answer, s) for s in (example.target, *example.accept)) and not any(
            says(answer, s) for s in example.reject
        )
    if example.match == "number":
        got, want = _first_number(answer.rpartition("=")[2]), _first_number(example.target)
        return got is not None and want is not None and math.isclose(got, want, rel_tol=example.tolerance)
    if example.match == "yesno":
        return first_yesno(answer) == example.target.strip().lower()
    if example.match == "refusal":
        return refuses(answer)
    return answer.strip() == example.target.strip()


def normalize(text: str) -> str:
    """Lower-cased (NFKC), every punctuation mark a space, runs of spaces one space."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join("".join(" " if unicodedata.category(c).startswith("P") else c for c in text).split())


def says(answer: str, phrase: str) -> bool:
    """Whether ``answer`` holds ``phrase`` as whole words (both normalized)."""
    pattern = r"(?<![a-z0-9])" + re.escape(normalize(phrase)) + r"(?![a-z0-9])"
    return re.search(pattern, normalize(answer)) is not None


def _first_number(text: str) -> float | None:
    m = _NUMBER.search(unicodedata.normalize("NFKC", text).lower())
    if m is None:
        return None
    return float(NUMBER_WORDS.index(m[1]) if m[1] else m[0].replace(",", ""))


def first_yesno(answer: str) -> str | None:
    m = _YESNO.search(normalize(answer))
    if m is None:
        return None
    return "yes" if m[0] in ("yes", "yeah", "yep", "是") else "no"


def refuses(answer: str) -> bool:
    return any(says(answer, marker) for marker in REFUSALS)
