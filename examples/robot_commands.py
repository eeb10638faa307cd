"""Natural language -> validated robot commands (refused when unsafe or not understood).

python examples/robot_commands.py "turn left 90 degrees" "move forward 50 meters" "向前走两米"
python examples/robot_commands.py --ask "stop the download"   # low-confidence commands ask first
"""

import sys

from edgellm_sdk import Engine
from edgellm_sdk.commands import Command, CommandParser
from edgellm_sdk.embed import Embedder
from edgellm_sdk.errors import ModelError
from edgellm_sdk.robot_demo import DEMO_COMMANDS

ask = "--ask" in sys.argv
requests = [a for a in sys.argv[1:] if a != "--ask"] or [
    "turn left 90 degrees",
    "stop",
    "move forward 50 meters",
    "sing me a song",
]
try:
    embedder = Embedder.load()  # picks few-shot examples by meaning (`edgellm pull minilm-l6`)
except ModelError:
    embedder = None  # falls back to lexical example retrieval
with Engine.load("smollm2-135m") as engine:
    parser = CommandParser(engine, DEMO_COMMANDS, embedder=embedder)  # instructions prefilled once
    for text in requests:
        confirm = (lambda c: input(f"Did you mean: {c.describe()}? [y/N] ").strip().lower() == "y") if ask else None
        result = parser.parse(text, deadline_s=5.0, confirm=confirm)
        if isinstance(result, Command):
            print(f"{text!r:35} -> EXECUTE {result.as_dict()}")
        elif result.needs_confirmation:
            print(f"{text!r:35} -> ASK: did you mean {result.suggestion.describe()}? ({result.reason})")
        else:
            print(f"{text!r:35} -> REFUSED ({result.reason})")
