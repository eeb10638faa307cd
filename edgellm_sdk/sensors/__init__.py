"""Sensors: Readings from serial ports, MQTT brokers and recorded logs, turned into facts
(rolling windows, rules, events) and short narrations that state no number the facts lack.

    from edgellm_sdk.sensors import open_source
    with open_source("serial:///dev/ttyUSB0?baud=115200&format=csv") as source:
        for reading in source:            # Reading(source, values, timestamp, unit)
            print(reading.values)

Importing this package loads only the standard library; pyserial and paho-mqtt are imported
when a source of their kind is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SensorError
from .reading import Reading

_LAZY = {
    "Source": "sources.base",
    "SourceStats": "sources.base",
    "open_source": "sources",
    "FactBook": "facts",
    "Facts": "facts",
    "Event": "facts",
    "RuleSet": "rules",
    "Rule": "rules",
    "Narrator": "narrator",
    "Narration": "narrator",
    "SensorPipeline": "pipeline",
    "SensorAssistant": "assistant",
}

__all__ = [
    "Event",
    "FactBook",
    "Facts",
    "Narration",
    "Narrator",
    "Reading",
    "Rule",
    "RuleSet",
    "SensorAssistant",
    "SensorError",
    "SensorPipeline",
    "Source",
    "SourceStats",
    "open_source",
]

if TYPE_CHECKING:
    from .assistant import SensorAssistant
    from .facts import Event, FactBook, Facts
    from .narrator import Narration, Narrator
    from .pipeline import SensorPipeline
    from .rules import Rule, RuleSet
    from .sources import open_source
    from .sources.base import Source, SourceStats


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgellm_sdk.sensors' has no attribute {name!r}")
