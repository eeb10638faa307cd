"""Tool calling: schemas from callables, the constrained call/answer loop, results fed back."""

from typing import Literal

import pytest
from fakes import ScriptedEngine

from edgellm_sdk.tools import Tool, as_tool, choice_schema

READINGS = {"kitchen": 21.5, "bedroom": 19.0, "garage": 12.0}


def get_temperature(room: Literal["kitchen", "bedroom", "garage"]) -> float:
    """Read the temperature sensor of a room, in °C."""
    return READINGS[room]


def broken_sensor(channel: int) -> float:
    """A sensor that is unplugged."""
    raise OSError("sensor unplugged")


def test_schema_from_callable_and_descriptions():
    tool = as_tool(get_temperature)
    assert tool.name == "get_temperature" and tool.description.startswith("Read the temperature")
    assert tool.parameters["properties"]["room"] == {"enum": ["kitchen", "bedroom", "garage"]}
    assert tool.parameters["required"] == ["room"]
    openai_style = as_tool({"type": "function", "function": {"name": "lights", "parameters": {"type": "object"}}})
    assert openai_style == Tool("lights", "", {"type": "object"})
    assert len(choice_schema([tool])["anyOf"]) == 2

    def takes_a_list(items: list) -> int:
        return len(items)

    with pytest.raises(ValueError, match="use int, float, str, bool or Literal"):
        as_tool(takes_a_list)
    with pytest.raises(ValueError, match="needs a name"):
        as_tool({"description": "nameless"})


@pytest.mark.parametrize("seed", range(4))
def test_loop_invariants_under_sampling(engine, seed):
    """Whatever the model chooses, calls are valid, run, and fed back; it ends with an answer."""
    from edgellm_sdk import Sampling

    c = engine.chat(
        [{"role": "user", "content": "hello"}],
        tools=[get_temperature, broken_sensor],
        max_tool_rounds=2,
        max_tokens=60,
        sampling=Sampling(temperature=1.0, seed=seed),
    )
    assert c.finish_reason in ("stop", "length")
    assert len(c.tool_calls) <= 2
    for call in c.tool_calls:
        if call.name == "get_temperature":
            assert call.result == READINGS[call.arguments["room"]]
        else:
            assert call.name == "broken_sensor" and call.result.startswith("error: OSError")


def test_tool_without_callable_is_returned_to_the_caller(engine):
    from edgellm_sdk import Sampling

    spec = {
        "name": "lights",
        "description": "switch lights",
        "parameters": {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]},
    }
    outcomes = set()
    for seed in range(4):
        c = engine.chat(
            [{"role": "user", "content": "switch the lights on"}],
            tools=[spec],
            max_tokens=60,
            sampling=Sampling(temperature=1.0, seed=seed),
        )
        if c.tool_calls:
            (call,) = c.tool_calls
            assert call.name == "lights" and isinstance(call.arguments["on"], bool) and call.result is None
            assert c.text == ""
            outcomes.add("call")
        else:
            outcomes.add("answer")
    assert outcomes  # both paths are valid; each run took one


def test_default_model_can_use_a_tool(engine):
    c = engine.chat([{"role": "user", "content": "Hello!"}], tools=[get_temperature], max_tokens=80)
    assert c.finish_reason == "stop" and c.text
    assert all(call.result == READINGS[call.arguments["room"]] for call in c.tool_calls)


def test_tool_errors_and_results_are_fed_back():
    from edgellm_sdk.tools import chat_with_tools

    engine = ScriptedEngine(
        [
            '{"tool":"broken_sensor","arguments":{"channel":3}}',
            '{"tool":"get_temperature","arguments":{"room":"garage"}}',
            '{"answer":"It is 12 °C in the garage."}',
        ]
    )
    c = chat_with_tools(engine, [{"role": "user", "content": "garage?"}], [get_temperature, broken_sensor])
    assert c.text == "It is 12 °C in the garage."
    assert [call.result for call in c.tool_calls] == ["error: OSError: sensor unplugged", 12.0]
    last = engine.seen[-1]
    assert last[0]["role"] == "system" and "get_temperature" in last[0]["content"]
    assert [m["role"] for m in last[1:]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last[-1]["content"] == '{"result": 12.0}'
