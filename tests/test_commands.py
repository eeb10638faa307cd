"""Robot command parsing: numbers grounded in the request, validation after decoding."""

import pytest

from edgellm_sdk.commands import Arg, Command, CommandParser, CommandSet, CommandSpec, Refusal, numbers_in
from edgellm_sdk.robot_demo import DEMO_COMMANDS


@pytest.mark.parametrize("text, numbers", [
    ("move forward 2.5 meters", [2.5]),
    ("turn right a hundred and eighty degrees", [180]),
    ("rotate forty-five degrees", [45]),
    ("back up half a meter", [0.5]),
    ("向左转一百八十度", [180]),
    ("把温度设为二十二度", [22]),
    ("向前走两米", [2]),
    ("stop", []),
])
def test_numbers_in_requests(text, numbers):
    assert numbers_in(text) == numbers


def test_validation_refuses_out_of_range_and_unknown():
    ok = DEMO_COMMANDS.validate({"command": "move", "direction": "forward", "distance_m": 2})
    assert ok == Command("move", {"direction": "forward", "distance_m": 2})
    far = DEMO_COMMANDS.validate({"command": "move", "direction": "forward", "distance_m": 50})
    assert isinstance(far, Refusal) and "above the maximum 5.0 m" in far.reason
    assert isinstance(DEMO_COMMANDS.validate({"command": "launch"}), Refusal)
    assert isinstance(DEMO_COMMANDS.validate({"command": "grip", "action": "crush"}), Refusal)
    assert isinstance(DEMO_COMMANDS.validate({"command": "stop", "extra": 1}), Refusal)
    assert DEMO_COMMANDS.validate({"command": "not_understood"}).reason == "not understood"


def test_schema_only_offers_stated_numbers():
    schema = DEMO_COMMANDS.schema([2.0])
    move = next(s for s in schema["anyOf"] if s["properties"]["command"].get("const") == "move")
    assert move["properties"]["distance_m"] == {"enum": [2]}
    names = [s["properties"]["command"]["const"] for s in DEMO_COMMANDS.schema([])["anyOf"]]
    assert "move" not in names and "stop" in names and "not_understood" in names


def test_bad_declarations():
    with pytest.raises(ValueError, match="enum needs choices"):
        Arg("x", "enum")
    with pytest.raises(ValueError, match="must be unique"):
        CommandSet([CommandSpec("stop", ""), CommandSpec("stop", "")])


def test_parser_on_the_default_model(engine):
    parser = CommandParser(engine, DEMO_COMMANDS)
    assert parser.parse("turn left 90 degrees") == Command("turn", {"direction": "left", "angle_deg": 90})
    assert parser.parse("stop") == Command("stop", {})
    unsafe = parser.parse("move forward 50 meters")  # decodes 50 (the only number stated), then refused
    assert isinstance(unsafe, Refusal) and "maximum" in unsafe.reason
    assert isinstance(parser.parse("turn left 90 degrees", deadline_s=1e-4), Refusal)
    with pytest.raises(ValueError, match="empty"):
        parser.parse(" ")
