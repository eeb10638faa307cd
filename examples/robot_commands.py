"""Natural language -> validated robot commands (refused when unsafe or not understood).

    python examples/robot_commands.py "turn left 90 degrees" "move forward 50 meters" "向前走两米"
"""

import sys

from edgellm_sdk import Engine
from edgellm_sdk.commands import Command, CommandParser
from edgellm_sdk.robot_demo import DEMO_COMMANDS

requests = sys.argv[1:] or ["turn left 90 degrees", "stop", "move forward 50 meters", "sing me a song"]
with Engine.load("smollm2-135m") as engine:
    parser = CommandParser(engine, DEMO_COMMANDS)  # instructions + examples prefilled once
    for text in requests:
        result = parser.parse(text, deadline_s=2.0)
        if isinstance(result, Command):
            print(f"{text!r:35} -> EXECUTE {result.as_dict()}")
        else:
            print(f"{text!r:35} -> REFUSED ({result.reason})")
