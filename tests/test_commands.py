"""Robot command parsing: values grounded in the request, retrieval, validation after decoding."""

import pytest

from edgellm_sdk.commands import (
    Arg,
    Command,
    CommandParser,
    CommandSet,
    CommandSpec,
    ExampleIndex,
    Quantity,
    Refusal,
    numbers_in,
    quantities,
)
from edgellm_sdk.robot_demo import DEMO_COMMANDS


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("move forward 2.5 meters", [2.5]),
        ("turn right a hundred and eighty degrees", [180]),
        ("rotate forty-five degrees", [45]),
        ("back up half a meter", [0.5]),
        ("back up three and a half metres", [3.5]),
        ("go 2 and a half m", [2.5]),
        ("向左转一百八十度", [180]),
        ("把温度设为二十二度", [22]),
        ("向前走两米", [2]),
        ("stop", []),
        ("a dog", []),
    ],
)
def test_numbers_in_requests(text, numbers):
    assert numbers_in(text) == numbers


@pytest.mark.parametrize(
    "text, expected",
    [
        ("drive at 3 meters per second", [Quantity(3, "meters per second", True)]),
        ("go ahead 4 m", [Quantity(4, "m", True)]),
        ("go 2m then 5 mps", [Quantity(2, "m", True), Quantity(5, "mps", True)]),
        ("heat the house to 25 °C", [Quantity(25, "°c", True)]),
        ("后退三米", [Quantity(3, "米")]),
        ("move 3 mice", [Quantity(3, None, True)]),  # "m" must be a whole word
    ],
)
def test_units_written_after_numbers(text, expected):
    assert quantities(text) == expected


def offered(text):
    schema = DEMO_COMMANDS.schema(text, quantities(text))
    return {s["properties"]["command"]["const"]: s["properties"] for s in schema["anyOf"]}


def test_schema_offers_only_stated_values():
    move = offered("move forward 2 m")
    assert move["move"]["distance_m"] == {"enum": [2]} and move["move"]["direction"] == {"enum": ["forward"]}
    speed = offered("drive at 3 meters per second")  # a speed, never a 3 m move
    assert "move" not in speed and speed["set_speed"]["speed_mps"] == {"enum": [3]}
    assert "turn" not in offered("turn 90 degrees")  # no direction stated: not guessed
    assert set(offered("stop")) == {"stop", "report_status", "not_understood"}
    unrestricted = DEMO_COMMANDS.schema()["anyOf"]  # no text: every command, unconstrained values
    assert len(unrestricted) == 9 and unrestricted[0]["properties"]["distance_m"]["type"] == "number"


def test_validation_refuses_out_of_range_and_unknown():
    ok = DEMO_COMMANDS.validate({"command": "move", "direction": "forward", "distance_m": 2})
    assert ok == Command("move", {"direction": "forward", "distance_m": 2})
    far = DEMO_COMMANDS.validate({"command": "move", "direction": "forward", "distance_m": 50})
    assert isinstance(far, Refusal) and "above the maximum 5.0 m" in far.reason
    assert isinstance(DEMO_COMMANDS.validate({"command": "launch"}), Refusal)
    assert isinstance(DEMO_COMMANDS.validate({"command": "grip", "action": "crush"}), Refusal)
    assert isinstance(DEMO_COMMANDS.validate({"command": "stop", "extra": 1}), Refusal)
    assert DEMO_COMMANDS.validate({"command": "not_understood"}).reason == "not understood"
    assert isinstance(DEMO_COMMANDS.validate([1, 2]), Refusal)


def test_bad_declarations():
    with pytest.raises(ValueError, match="enum needs choices"):
        Arg("x", "enum")
    with pytest.raises(ValueError, match="must be unique"):
        CommandSet([CommandSpec("stop", ""), CommandSpec("stop", "")])
    with pytest.raises(ValueError, match="not one of the declared commands"):
        CommandSet([CommandSpec("stop", "")], examples=[("fly", {"command": "fly"})])


def test_lexical_retrieval_without_embedder():
    index = ExampleIndex(DEMO_COMMANDS.examples)
    nearest, semantic = index.nearest("向后退两米", 2)
    assert not semantic and index.examples[nearest[0][0]][0] == "向后退四米"


def test_semantic_retrieval_and_vote(engine, embedder):
    parser = CommandParser(engine, DEMO_COMMANDS, embedder=embedder)
    messages, schema = parser.plan("please rotate to the left by 30 degrees")
    assert messages[-2]["role"] == "assistant" and '"command":"turn"' in messages[-2]["content"]
    assert {s["properties"]["command"]["const"] for s in schema["anyOf"]} <= {
        "turn",
        "set_thermostat",
        "not_understood",
    }


def test_parser_on_the_default_model(engine, embedder):
    for parser in (CommandParser(engine, DEMO_COMMANDS), CommandParser(engine, DEMO_COMMANDS, embedder=embedder)):
        assert parser.parse("turn left 90 degrees") == Command("turn", {"direction": "left", "angle_deg": 90})
        assert parser.parse("向前走三米") == Command("move", {"direction": "forward", "distance_m": 3})
        unsafe = parser.parse("move forward 50 meters")  # decodes 50 (the only number stated), then refused
        assert isinstance(unsafe, Refusal) and "maximum" in unsafe.reason
        assert isinstance(parser.parse("turn left 90 degrees", deadline_s=1e-4), Refusal)
        with pytest.raises(ValueError, match="empty"):
            parser.parse(" ")
    assert parser.parse("halt") == Command("stop", {})
    # a named command is the only one offered: "degrees" does not make it a thermostat request
    turn = Command("turn", {"direction": "left", "angle_deg": 65})
    assert parser.parse("please turn to the left sixty-five degrees") == turn
