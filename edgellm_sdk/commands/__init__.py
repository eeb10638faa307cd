"""Robot command parsing: natural language -> a validated command, or an explicit refusal.

The application declares its command set once (names, typed arguments, units, ranges,
allowed values, labelled example requests); ``CommandParser(engine, commands).parse(text)``
returns a ``Command`` to execute or a ``Refusal`` (see parser.py for how).
"""

from .parser import CommandParser
from .quantities import Quantity, numbers_in, quantities
from .retrieval import ExampleIndex
from .spec import NOT_UNDERSTOOD, Arg, Command, CommandSet, CommandSpec, Refusal

__all__ = [
    "NOT_UNDERSTOOD",
    "Arg",
    "Command",
    "CommandParser",
    "CommandSet",
    "CommandSpec",
    "ExampleIndex",
    "Quantity",
    "Refusal",
    "numbers_in",
    "quantities",
]
