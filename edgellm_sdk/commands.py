"""Robot command parsing: natural language -> a validated command, or an explicit refusal.

The application declares its command set once (names, typed arguments, units, ranges,
allowed values). The model picks a command and arguments under a JSON-schema constraint
(the output always parses); then ``CommandSet.validate`` checks ranges and allowed values,
so an out-of-range or unknown request comes back as a ``Refusal`` and is never executed.
Ranges are deliberately *not* put into the decoding schema: a request for 50 m must be
refused, not silently turned into the nearest allowed value. Numeric arguments may only take
a number the request states (digits, English words, Chinese numerals), so a small model can
neither invent a value nor copy one from its examples.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

NOT_UNDERSTOOD = "not_understood"

_EN = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
       "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
       "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_ZH = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _zh_number(text: str) -> int | None:
    """一百八十 -> 180, 二十二 -> 22, 十 -> 10 (up to 999)."""
    total, current = 0, 0
    for ch in text:
        if ch in _ZH:
            current = _ZH[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def numbers_in(text: str) -> list[float]:
    """Every number a request states: digits, English words, Chinese numerals, "half"."""
    found: list[float] = [float(m) for m in re.findall(r"-?\d+(?:\.\d+)?", text)]
    lowered = text.lower().replace("a hundred", "one hundred")

    def word_value(w: str) -> int | None:
        parts = w.split("-")
        return sum(_EN[p] for p in parts) if all(p in _EN for p in parts) else None

    def hundreds(m: re.Match) -> str:
        head, tail = word_value(m[1]), word_value(m[2]) if m[2] else 0
        if head is None or tail is None:
            return m[0]
        found.append(float(head * 100 + tail))
        return " "
    lowered = re.sub(r"([a-z]+) hundred(?: and ([a-z]+(?:-[a-z]+)?))?", hundreds, lowered)
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", lowered)
    found += [float(v) for w in words if (v := word_value(w)) is not None]
    if "half" in words:
        found.append(0.5)
    found += [float(n) for run in re.findall(r"[零一二两三四五六七八九十百]+", text) if (n := _zh_number(run)) is not None]
    return sorted(set(found))


@dataclass(frozen=True)
class Arg:
    name: str
    type: str = "number"  # number | integer | string | enum
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (choice, words that name it), e.g. ("backward", ("back", "后退"))

    def __post_init__(self) -> None:
        if self.type not in ("number", "integer", "string", "enum"):
            raise ValueError(f"Arg {self.name}: type must be number, integer, string or enum, got {self.type!r}")
        if self.type == "enum" and not self.choices:
            raise ValueError(f"Arg {self.name}: an enum needs choices")

    def json_schema(self) -> dict:
        if self.type == "enum":
            return {"enum": list(self.choices)}
        if self.type == "string":
            return {"type": "string", "maxLength": 64}
        if self.type == "integer":
            return {"type": "integer"}
        return {"type": "number", "multipleOf": 0.01}  # bounded precision, no range (see module doc)

    def check(self, value: Any) -> str | None:
        """None if ``value`` is allowed, else why not."""
        if self.type == "enum":
            return None if value in self.choices else f"{self.name}={value!r} is not one of {list(self.choices)}"
        if self.type == "string":
            return None if isinstance(value, str) else f"{self.name} must be text"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{self.name} must be a number"
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and value < self.minimum:
            return f"{self.name}={value}{unit} is below the minimum {self.minimum}{unit}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name}={value}{unit} is above the maximum {self.maximum}{unit}"
        return None

    def mentioned(self, text: str) -> list[str]:
        """Choices the request names (by the choice itself or an alias); [] when it names none."""
        lowered, words = text.lower(), set(re.findall(r"[a-z_]+", text.lower()))
        aliases = dict(self.aliases)
        found = []
        for choice in self.choices:
            names = (choice, choice.replace("_", " "), *aliases.get(choice, ()))
            if any((n in words) if n.isascii() and " " not in n else (n in lowered) for n in names):
                found.append(choice)
        return found

    def describe(self) -> str:
        parts = [self.type if self.type != "enum" else "one of " + "/".join(self.choices)]
        if self.unit:
            parts.append(f"in {self.unit}")
        return f"{self.name} ({', '.join(parts)})"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    args: tuple[Arg, ...] = ()

    def json_schema(self) -> dict:
        props = {"command": {"const": self.name}, **{a.name: a.json_schema() for a in self.args}}
        return {"type": "object", "properties": props, "required": ["command", *[a.name for a in self.args]],
                "additionalProperties": False}


@dataclass(frozen=True)
class Command:
    name: str
    args: dict[str, Any]

    def as_dict(self) -> dict:
        return {"command": self.name, **self.args}


@dataclass(frozen=True)
class Refusal:
    reason: str
    raw: dict | None = None  # what the model produced, for logs


@dataclass
class CommandSet:
    commands: Sequence[CommandSpec]
    examples: Sequence[tuple[str, dict]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [c.name for c in self.commands]
        if len(set(names)) != len(names) or NOT_UNDERSTOOD in names:
            raise ValueError(f"command names must be unique and not {NOT_UNDERSTOOD!r}: {names}")
        self._by_name = {c.name: c for c in self.commands}

    def schema(self, stated_numbers: Sequence[float] | None = None, text: str | None = None) -> dict:
        """The decoding schema. With ``stated_numbers``, numeric arguments may only take a
        value the request states, so the model cannot invent or clip one; with ``text``, an
        enum argument whose choices the request names is limited to those."""
        commands = []
        for c in self.commands:
            schema = c.json_schema()
            if text is not None:
                for arg in c.args:
                    if arg.type == "enum" and (named := arg.mentioned(text)):
                        schema["properties"][arg.name] = {"enum": named}
            if stated_numbers is not None:
                numeric = [a.name for a in c.args if a.type in ("number", "integer")]
                if numeric and not stated_numbers:
                    continue  # needs a number the request does not give
                for name in numeric:
                    schema["properties"][name] = {"enum": [int(n) if n == int(n) else n for n in stated_numbers]}
            commands.append(schema)
        fallback = {"type": "object", "properties": {"command": {"const": NOT_UNDERSTOOD}}, "required": ["command"],
                    "additionalProperties": False}
        return {"anyOf": commands + [fallback]}

    def instructions(self) -> str:
        lines = ["You turn a person's request to a robot into one JSON command. Commands:"]
        for c in self.commands:
            args = ", ".join(a.describe() for a in c.args) or "no arguments"
            lines.append(f"- {c.name}: {c.description}; {args}")
        lines.append(f'- {NOT_UNDERSTOOD}: anything else. Use numbers, not words, for values.')
        for text, expected in self.examples:
            lines.append(f"Request: {text}\nJSON: {json.dumps(expected, ensure_ascii=False)}")
        return "\n".join(lines)

    def validate(self, obj: Any) -> Command | Refusal:
        if not isinstance(obj, dict) or not isinstance(obj.get("command"), str):
            return Refusal("not a command object", obj if isinstance(obj, dict) else None)
        name = obj["command"]
        if name == NOT_UNDERSTOOD:
            return Refusal("not understood", obj)
        spec = self._by_name.get(name)
        if spec is None:
            return Refusal(f"unknown command {name!r}", obj)
        args = {k: v for k, v in obj.items() if k != "command"}
        if set(args) != {a.name for a in spec.args}:
            return Refusal(f"{name} needs exactly {[a.name for a in spec.args]}", obj)
        for arg in spec.args:
            if (problem := arg.check(args[arg.name])) is not None:
                return Refusal(f"not allowed: {problem}", obj)
        return Command(name, args)


class CommandParser:
    """``parse(text)`` -> Command | Refusal, using an Engine with constrained decoding."""

    def __init__(self, engine, commands: CommandSet, *, max_tokens: int = 64):
        self.engine, self.commands, self.max_tokens = engine, commands, max_tokens
        self._system = {"role": "system", "content": commands.instructions()}
        if engine.prefix_cache is not None:
            engine.warm([self._system])  # instructions + few-shot examples are prefilled once

    def parse(self, text: str, *, deadline_s: float | None = None, cancel=None) -> Command | Refusal:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("command text is empty")
        schema = self.commands.schema(numbers_in(text), text)
        c = self.engine.chat([self._system, {"role": "user", "content": text}], schema=schema,
                             max_tokens=self.max_tokens, deadline_s=deadline_s, cancel=cancel)
        if c.finish_reason != "stop":
            return Refusal(f"no complete command ({c.finish_reason})")
        return self.commands.validate(json.loads(c.text))
