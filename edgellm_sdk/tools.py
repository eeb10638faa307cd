"""Tool calling: the model picks a tool and its arguments under a JSON-schema constraint.

Tools are Python callables (their signature and docstring become the schema), ``Tool``
objects, or JSON descriptions ({"name", "description", "parameters"}, also inside an
OpenAI-style {"type": "function", "function": {...}}). Each round the model answers with
exactly one of: a call ``{"tool": name, "arguments": {...}}`` or ``{"answer": "..."}``.
Callables are run and their result goes back into the conversation as a "tool" message;
a tool without a callable ends the loop and is returned to the caller to execute.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .chat import as_messages
from .types import Completion, Message

if TYPE_CHECKING:
    from .engine_api import EngineAPI

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    fn: Callable | None = None

    @classmethod
    def from_callable(cls, fn: Callable) -> Tool:
        hints = typing.get_type_hints(fn)
        props: dict[str, dict[str, Any]] = {}
        required: list[str] = []
        for name, param in inspect.signature(fn).parameters.items():
            hint = hints.get(name, str)
            if typing.get_origin(hint) is typing.Literal:
                props[name] = {"enum": list(typing.get_args(hint))}
            elif hint in _JSON_TYPES:
                props[name] = {"type": _JSON_TYPES[hint]}
                if hint is float:
                    props[name]["multipleOf"] = 0.01
            else:
                raise ValueError(
                    f"tool {fn.__name__}: parameter {name} has type {hint!r}; use int, float, str, bool or Literal[...]"
                )
            if param.default is inspect.Parameter.empty:
                required.append(name)
        doc = (inspect.getdoc(fn) or fn.__name__).splitlines()[0]
        return cls(
            fn.__name__,
            doc,
            {"type": "object", "properties": props, "required": required, "additionalProperties": False},
            fn,
        )


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict
    result: Any = None  # None when the caller has to run it


def as_tool(spec) -> Tool:
    if isinstance(spec, Tool):
        return spec
    if callable(spec):
        return Tool.from_callable(spec)
    if isinstance(spec, dict):
        spec = spec.get("function", spec)
        try:
            return Tool(spec["name"], spec.get("description", ""), spec.get("parameters", {"type": "object"}))
        except KeyError as e:
            raise ValueError(f"a tool description needs a name: {spec!r}") from e
    raise ValueError(f"a tool must be a callable, a Tool or a JSON description, got {spec!r}")


def choice_schema(tools: Sequence[Tool], allow_answer: bool = True) -> dict:
    options = [
        {
            "type": "object",
            "properties": {"tool": {"const": t.name}, "arguments": t.parameters},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    if allow_answer:
        options.append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string", "maxLength": 600}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": options}


def tools_prompt(tools: Sequence[Tool]) -> str:
    lines = [
        (
            'You can call tools. Reply with JSON: {"tool": name, "arguments": {...}} to call one, '
            'or {"answer": text} when you can answer. Tools:'
        )
    ]
    lines += [
        f"- {t.name}: {t.description}; arguments: {json.dumps(t.parameters.get('properties', {}))}" for t in tools
    ]
    return "\n".join(lines)


def chat_with_tools(
    engine: EngineAPI, messages: Sequence, tools: Sequence, *, max_rounds: int = 3, **options
) -> Completion:
    """Run the call/answer loop; the Completion's ``tool_calls`` lists what was called."""
    specs = [as_tool(t) for t in tools]
    if not specs:
        raise ValueError("tools is empty")
    by_name = {t.name: t for t in specs}
    convo = as_messages(messages)
    head = Message("system", ((convo[0].content + "\n\n") if convo[0].role == "system" else "") + tools_prompt(specs))
    convo = [head] + (convo[1:] if convo[0].role == "system" else convo)
    calls: list[ToolCall] = []
    for round_ in range(max_rounds + 1):
        c = engine.complete(
            convo,
            schema=choice_schema(specs, allow_answer=True)
            if round_ < max_rounds
            else {
                "type": "object",
                "properties": {"answer": {"type": "string", "maxLength": 600}},
                "required": ["answer"],
                "additionalProperties": False,
            },
            **options,
        )
        if c.finish_reason != "stop":
            return replace(c, tool_calls=tuple(calls))
        reply = json.loads(c.text)
        if "answer" in reply:
            return replace(c, text=reply["answer"], tool_calls=tuple(calls))
        tool = by_name[reply["tool"]]
        if tool.fn is None:
            calls.append(ToolCall(tool.name, reply["arguments"]))
            return replace(c, text="", tool_calls=tuple(calls))
        try:
            result = tool.fn(**reply["arguments"])
        except Exception as e:  # noqa: BLE001 - the model sees the error and may try again
            result = f"error: {type(e).__name__}: {e}"
        calls.append(ToolCall(tool.name, reply["arguments"], result))
        convo += [Message("assistant", c.text), Message("tool", json.dumps({"result": result}, default=str))]
    raise AssertionError("unreachable")  # the last round only allows an answer
