"""Tool calling for the HTTP APIs: ``tool_choice`` on top of edgellm_sdk.tools, and the wire shapes."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ..chat import as_messages
from ..tools import ToolCall, as_tool, choice_schema, tools_prompt
from ..types import Completion, Message
from .options import BadRequest


def parse_tools(tools: Any, tool_choice: Any) -> list | None:
    """The tool descriptions the model may call (None: answer without tools), checked."""
    if not tools or tool_choice == "none":
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools must be a list of {'type': 'function', 'function': {...}}", param="tools")
    try:
        specs = [as_tool(t) for t in tools]
    except ValueError as e:
        raise BadRequest(str(e), param="tools") from e
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        specs = [t for t in specs if t.name == name]
        if not specs:
            raise BadRequest(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
    elif tool_choice not in (None, "auto", "required"):
        raise BadRequest(
            "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', ...}", param="tool_choice"
        )
    return specs


def run_chat(engine, messages: list[dict], tools: list | None, forced: bool, **options) -> Completion:
    """One chat turn: plain, with tools the model may call, or (``forced``) must call.

    The server has no callables: a call ends the turn and is returned for the client to run."""
    if not tools:
        return engine.chat(messages, **options)
    if not forced:
        return engine.chat(messages, tools=tools, max_tool_rounds=1, **options)
    convo = as_messages(messages)
    system = (convo[0].content + "\n\n") if convo[0].role == "system" else ""
    convo = [Message("system", system + tools_prompt(tools)), *(convo[1:] if convo[0].role == "system" else convo)]
    c = engine.complete(convo, schema=choice_schema(tools, allow_answer=False), **options)
    if c.finish_reason != "stop":
        return c
    reply = json.loads(c.text)
    return replace(c, text="", tool_calls=(ToolCall(reply["tool"], reply["arguments"]),))


def is_forced(tool_choice: Any) -> bool:
    return tool_choice == "required" or isinstance(tool_choice, dict)


def openai_calls(calls: tuple, request_id: str) -> list[dict]:
    return [
        {
            "index": i,
            "id": f"call_{request_id}_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for i, c in enumerate(calls)
    ]


def ollama_calls(calls: tuple) -> list[dict]:
    return [{"function": {"name": c.name, "arguments": c.arguments}} for c in calls]
