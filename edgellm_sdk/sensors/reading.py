"""Reading: one sample from a sensor source (the unit of everything in edgellm_sdk.sensors)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reading:
    source: str  # e.g. "greenhouse2" (an MQTT topic or serial port mapped to a name)
    values: dict[str, float]  # channel -> value, e.g. {"temp_c": 24.1, "humidity": 61.0}
    timestamp: float  # seconds since the epoch (time.time()) when read, or as recorded in a log
    unit: dict[str, str] = field(default_factory=dict)  # channel -> unit, e.g. {"temp_c": "°C"}
