"""Thresholds and rules for sensor channels, declared in TOML (or YAML when PyYAML is installed).

[[rule]]                      # one per threshold; channel is "source/channel", globs allowed
channel = "greenhouse*/temp_c"
above = 30.0                  # and/or below = ...
hysteresis = 0.5              # back to normal only below 30.0 - 0.5
severity = "alert"            # alert (narrated at once) | warning (in the next summary)

[channels."greenhouse2/temp_c"]
target = 24.0                 # the narration states the deviation from it
label = "greenhouse 2 temperature"
unit = "°C"

[monitor]
window_s = 300                # rolling window for min/max/mean/slope
silent_after_s = 60           # no reading for this long -> "silent" event
stuck_after_s = 600           # the same value for this long -> "stuck" event
anomaly_z = 4.0               # robust z-score of the last value -> "anomaly" event
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SensorError

SEVERITIES = ("alert", "warning")


@dataclass(frozen=True)
class Rule:
    channel: str  # "source/channel" glob
    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0
    severity: str = "alert"

    def __post_init__(self) -> None:
        if self.above is None and self.below is None:
            raise SensorError(f"rule for {self.channel!r} needs 'above' or 'below'")
        if self.severity not in SEVERITIES:
            raise SensorError(f"rule for {self.channel!r}: severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.hysteresis < 0:
            raise SensorError(f"rule for {self.channel!r}: hysteresis must be >= 0")

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.channel)


@dataclass(frozen=True)
class ChannelInfo:
    target: float | None = None
    label: str | None = None
    unit: str | None = None  # when the source does not say


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    channels: dict[str, ChannelInfo] = field(default_factory=dict)
    window_s: float = 300.0
    silent_after_s: float | None = 60.0
    stuck_after_s: float | None = None
    anomaly_z: float | None = 4.0

    def for_channel(self, key: str) -> list[Rule]:
        return [r for r in self.rules if r.matches(key)]

    def info(self, key: str) -> ChannelInfo:
        for pattern, info in self.channels.items():
            if fnmatch.fnmatchcase(key, pattern):
                return info
        return ChannelInfo()

    @classmethod
    def from_dict(cls, data: dict) -> RuleSet:
        unknown = set(data) - {"rule", "channels", "monitor"}
        if unknown:
            raise SensorError(f"unknown rules section(s) {sorted(unknown)}; expected [[rule]], [channels.*], [monitor]")
        try:
            rules = [Rule(**r) for r in data.get("rule", [])]
            channels = {k: ChannelInfo(**v) for k, v in data.get("channels", {}).items()}
            return cls(rules, channels, **data.get("monitor", {}))
        except TypeError as e:
            raise SensorError(f"bad rules file: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        path = Path(path)
        if not path.is_file():
            raise SensorError(f"rules file {path} not found")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise SensorError(
                    f"{path} is YAML but PyYAML is not installed: pip install pyyaml, or write the rules as TOML"
                ) from None
            data = yaml.safe_load(text) or {}
        else:
            import tomllib

            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                raise SensorError(f"{path} is not valid TOML: {e}") from None
        return cls.from_dict(data)
