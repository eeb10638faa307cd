"""Declaring a command set: typed arguments with units, ranges and allowed values; validation."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .quantities import Quantity

NOT_UNDERSTOOD = "not_understood"


@dataclass(frozen=True)
class Arg:
    name: str
    type: str = "number"  # number | integer | string | enum
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""
    aliases: tuple[
        tuple[str, tuple[str, ...]], ...
    ] = ()  # (choice, words that name it), e.g. ("backward", ("back", "后退"))
    stated: bool = True  # the request must state the value (a number, or a choice by name or alias)

    def __post_init__(self) -> None:
        if self.type not in ("number", "integer", "string", "enum"):
            raise ValueError(f"Arg {self.name}: type must be number, integer, string or enum, got {self.type!r}")
        if self.type == "enum" and not self.choices:
            raise ValueError(f"Arg {self.name}: an enum needs choices")

    @property
    def numeric(self) -> bool:
        return self.type in ("number", "integer")

    def json_schema(self) -> dict:
        if self.type == "enum":
            return {"enum": list(self.choices)}
        if self.type == "string":
            return {"type": "string", "maxLength": 64}
        if self.type == "integer":
            return {"type": "integer"}
        return {"type": "number", "multipleOf": 0.01}  # bounded precision, no range (see CommandSet.schema)

    def check(self, value: Any) -> str | None:
        """None if ``value`` is allowed, else why not."""
        if self.type == "enum":
            return None if value in self.choices else f"{self.name}={value!r} is not one of {list(self.choices)}"
        if self.type == "string":
            return None if isinstance(value, str) else f"{self.name} must be text"
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{self.name} must be a number"
        if self.type == "integer" and value != int(value):
            return f"{self.name} must be a whole number"
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and value < self.minimum:
            return f"{self.name}={value}{unit} is below the minimum {self.minimum}{unit}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name}={value}{unit} is above the maximum {self.maximum}{unit}"
        return None

    def mentioned(self, text: str) -> list[str]:
        """Choices the request names (by the choice itself or an alias); [] when it names none."""
        aliases = dict(self.aliases)
        return [c for c in self.choices if names_in(text, (c, c.replace("_", " "), *aliases.get(c, ())))]

    def describe(self) -> str:
        parts = [self.type if self.type != "enum" else "one of " + "/".join(self.choices)]
        if self.unit:
            parts.append(f"in {self.unit}")
        return f"{self.name} ({', '.join(parts)})"


def stem(word: str) -> str:
    """A plural's singular, enough to match "lights" to "light" ("glasses" stays)."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def names_in(text: str, names) -> bool:
    """True if ``text`` contains one of ``names``: whole words (plurals too) for ASCII, substrings otherwise."""
    lowered = text.lower()
    words = {stem(w) for w in re.findall(r"[a-z_]+", lowered)}
    return any((stem(n) in words) if n.isascii() and " " not in n else (n in lowered) for n in names)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    args: tuple[Arg, ...] = ()
    keywords: tuple[str, ...] = ()  # words that name the command, e.g. ("halt", "freeze", "停") for stop

    def named_in(self, text: str) -> bool:
        return names_in(text, (self.name, self.name.replace("_", " "), *self.keywords))

    def json_schema(self) -> dict:
        props = {"command": {"const": self.name}, **{a.name: a.json_schema() for a in self.args}}
        return {
            "type": "object",
            "properties": props,
            "required": ["command", *[a.name for a in self.args]],
            "additionalProperties": False,
        }

    def grounded_schema(self, text: str, stated: Sequence[Quantity]) -> dict | None:
        """The schema limited to values ``text`` states; None if a required value is not stated."""
        schema = self.json_schema()
        for arg in self.args:
            if arg.numeric:
                values = sorted({v for q in stated if (v := q.in_unit(arg.unit)) is not None})
                if arg.type == "integer":
                    values = [v for v in values if v == int(v)]
                if not values:
                    if arg.stated:
                        return None
                    continue
                schema["properties"][arg.name] = {"enum": [int(v) if v == int(v) else v for v in values]}
            elif arg.type == "enum":
                named = arg.mentioned(text)
                if named:
                    schema["properties"][arg.name] = {"enum": named}
                elif arg.stated:
                    return None
        return schema


@dataclass(frozen=True)
class Command:
    name: str
    args: dict[str, Any]

    def as_dict(self) -> dict:
        return {"command": self.name, **self.args}

    def describe(self) -> str:
        """Words to read back for a confirmation: "grip open", "move forward 2"."""
        values = [str(v).replace("_", " ") if not isinstance(v, float) else f"{v:g}" for v in self.args.values()]
        return " ".join([self.name.replace("_", " "), *values])


@dataclass(frozen=True)
class Refusal:
    reason: str
    raw: dict | None = None  # what the model produced, for logs
    suggestion: Command | None = None  # a low-confidence reading, to be confirmed before it runs

    @property
    def needs_confirmation(self) -> bool:
        return self.suggestion is not None


def as_json(obj: dict) -> str:
    """The compact form the constrained decoder writes, so few-shot examples match it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@dataclass
class CommandSet:
    """The commands a robot accepts, and labelled example requests (the few-shot pool)."""

    commands: Sequence[CommandSpec]
    examples: Sequence[tuple[str, dict]] = field(default_factory=tuple)
    out_of_domain: Sequence[str] = ()  # requests to refuse, added to the SDK's generic pool

    def __post_init__(self) -> None:
        names = [c.name for c in self.commands]
        if len(set(names)) != len(names) or NOT_UNDERSTOOD in names:
            raise ValueError(f"command names must be unique and not {NOT_UNDERSTOOD!r}: {names}")
        self._by_name = {c.name: c for c in self.commands}
        for text, expected in self.examples:
            if not isinstance(expected, dict) or expected.get("command") not in (*names, NOT_UNDERSTOOD):
                raise ValueError(f"example {text!r}: {expected!r} is not one of the declared commands")

    def schema(
        self,
        text: str | None = None,
        stated: Sequence[Quantity] | None = None,
        allowed: set[str] | None = None,
        refusable: bool = True,
    ) -> dict:
        """The decoding schema. With ``text`` every argument must be stated by it: numeric
        arguments may only take a number the request gives in a fitting unit (``stated``),
        enum arguments only a choice it names; a command whose values are not all stated is
        not offered. Ranges are deliberately *not* in the schema: a request for 50 m must be
        refused by ``validate``, not silently clipped to the nearest allowed value.
        ``allowed`` limits the commands offered; "not understood" is offered when
        ``refusable`` or when no command is left."""
        commands = []
        for c in self.commands:
            if allowed is not None and c.name not in allowed:
                continue
            schema = c.json_schema() if text is None else c.grounded_schema(text, stated or ())
            if schema is not None:
                commands.append(schema)
        fallback = {
            "type": "object",
            "properties": {"command": {"const": NOT_UNDERSTOOD}},
            "required": ["command"],
            "additionalProperties": False,
        }
        return {"anyOf": commands + [fallback] if refusable or not commands else commands}

    def instructions(self) -> str:
        """The fixed system prompt: the commands and one example of each (a cacheable prefix)."""
        lines = ["You turn a person's request to a robot into one JSON command. Commands:"]
        for c in self.commands:
            args = ", ".join(a.describe() for a in c.args) or "no arguments"
            lines.append(f"- {c.name}: {c.description}; {args}")
        lines.append(f"- {NOT_UNDERSTOOD}: anything else. Use numbers, not words, for values.")
        seen = set()
        for text, expected in self.examples:
            if expected["command"] not in seen:
                seen.add(expected["command"])
                lines.append(f"Request: {text}\nJSON: {as_json(expected)}")
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
