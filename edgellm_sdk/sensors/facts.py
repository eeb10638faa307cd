"""Facts: every number the narration may state, computed here from rolling windows, never by the model.

``FactBook.add(reading)`` keeps a time window per channel ("source/channel") and returns the
events the reading raised (threshold crossed or cleared with hysteresis, anomaly by robust
z-score); ``FactBook.check(now)`` returns time-based events (sensor silent, value stuck);
``FactBook.facts()`` is an immutable snapshot whose compact text goes into the prompt.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .reading import Reading
from .rules import Rule, RuleSet

MIN_SAMPLES_FOR_ANOMALY = 8


def fmt(value: float) -> str:
    """How a number is written in facts (and so how the narration may write it)."""
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 1:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True)
class Event:
    kind: str  # above | below | normal | anomaly | silent | stuck
    channel: str
    timestamp: float
    value: float | None = None
    threshold: float | None = None
    severity: str = "warning"

    def describe(self, unit: str = "", name: str | None = None) -> str:
        u, name = (f" {unit}" if unit else ""), name or self.channel
        limit = fmt(self.threshold) if self.threshold is not None else "?"
        value = fmt(self.value) if self.value is not None else "?"
        if self.kind in ("above", "below"):
            return f"{name} is {self.kind} the {limit}{u} limit"
        if self.kind == "normal":
            return f"{name} is back to normal"
        if self.kind == "anomaly":
            return f"{name} shows an unusual value of {value}{u}"
        if self.kind == "silent":
            return f"{name} has stopped reporting"
        return f"{name} is stuck at {value}{u}"


@dataclass(frozen=True)
class ChannelFacts:
    channel: str
    unit: str
    samples: int
    last: float
    minimum: float
    maximum: float
    mean: float
    slope_per_min: float
    trend: str  # rising | falling | steady
    age_s: float
    label: str | None = None
    target: float | None = None

    @property
    def name(self) -> str:
        return self.label or self.channel

    def line(self) -> str:
        """One sentence of plain facts, e.g. "greenhouse 2 temperature is 27.9 °C, rising 0.5 °C/min
        (range 23.4 to 27.9 °C), 3.9 °C above the 24 °C target." """
        u = f" {self.unit}" if self.unit else ""
        trend = "steady" if self.trend == "steady" else f"{self.trend} {fmt(abs(self.slope_per_min))}{u}/min"
        text = f"{self.name} is {fmt(self.last)}{u}, {trend}"
        if fmt(self.minimum) != fmt(self.maximum):
            text += f" (range {fmt(self.minimum)} to {fmt(self.maximum)}{u})"
        if self.target is not None:
            diff = self.last - self.target
            if fmt(abs(diff)) == "0":
                text += f", at the {fmt(self.target)}{u} target"
            else:
                text += f", {fmt(abs(diff))}{u} {'above' if diff > 0 else 'below'} the {fmt(self.target)}{u} target"
        return text + "."


@dataclass(frozen=True)
class Facts:
    timestamp: float
    channels: tuple[ChannelFacts, ...]
    events: tuple[Event, ...] = ()  # recent events, newest last
    active: tuple[Event, ...] = ()  # conditions still in force (threshold crossed, silent, stuck)

    def describe(self, event: Event) -> str:
        c = self.channel(event.channel)
        return event.describe(c.unit if c else "", c.name if c else None)

    def text(self) -> str:
        lines = [c.line() for c in self.channels]
        if self.active:
            lines.append("Active: " + "; ".join(self.describe(e) for e in self.active) + ".")
        return "\n".join(lines) if lines else "No readings yet."

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:16]

    def channel(self, key: str) -> ChannelFacts | None:
        return next((c for c in self.channels if c.channel == key), None)


@dataclass
class _Window:
    unit: str
    points: deque = field(default_factory=deque)  # (timestamp, value)
    stuck_since: float | None = None
    flags: set = field(default_factory=set)  # active conditions: rule ids, "silent", "stuck", "anomaly"


class FactBook:
    """Rolling per-channel windows, rules and events. Thread-safe (a source thread may add).

    ``clock`` gives "now" for silence and ages: wall time for live sources; ``None`` for a
    replayed log, where now is the newest recorded timestamp."""

    def __init__(self, rules: RuleSet | None = None, *, max_events: int = 50, clock=time.time):
        self.rules = rules or RuleSet()
        self.clock = clock
        self._latest = 0.0
        self._windows: dict[str, _Window] = {}
        self._events: deque[Event] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.clock() if self.clock is not None else self._latest

    def add(self, reading: Reading) -> list[Event]:
        events = []
        with self._lock:
            self._latest = max(self._latest, reading.timestamp)
            for name, value in reading.values.items():
                if not isinstance(value, (int, float)) or not math.isfinite(value):
                    continue  # sources already drop these; never let one poison a window
                key = f"{reading.source}/{name}"
                w = self._windows.get(key)
                if w is None:
                    unit = reading.unit.get(name) or self.rules.info(key).unit or ""
                    w = self._windows[key] = _Window(unit)
                events += self._update(key, w, reading.timestamp, float(value))
            self._events.extend(events)
        return events

    def _update(self, key: str, w: _Window, t: float, v: float) -> list[Event]:
        events = []
        w.flags.discard("silent")
        history = [p[1] for p in w.points]
        if not w.points or w.points[-1][1] != v:
            w.stuck_since = t
            w.flags.discard("stuck")
        w.points.append((t, v))
        while w.points and w.points[0][0] < t - self.rules.window_s:
            w.points.popleft()
        for i, rule in enumerate(self.rules.for_channel(key)):
            events += self._threshold(key, w, rule, f"rule{i}", t, v)
        z = robust_z(v, history)
        limit = self.rules.anomaly_z
        if limit is not None and z is not None and abs(z) >= limit and "anomaly" not in w.flags:
            w.flags.add("anomaly")
            events.append(Event("anomaly", key, t, v, severity="warning"))
        elif z is not None and abs(z) < (limit or math.inf) / 2:
            w.flags.discard("anomaly")
        return events

    def _threshold(self, key, w: _Window, rule: Rule, flag: str, t: float, v: float) -> list[Event]:
        for side, limit in (("above", rule.above), ("below", rule.below)):
            if limit is None:
                continue
            tag = f"{flag}:{side}"
            crossed = v > limit if side == "above" else v < limit
            cleared = v < limit - rule.hysteresis if side == "above" else v > limit + rule.hysteresis
            if crossed and tag not in w.flags:
                w.flags.add(tag)
                return [Event(side, key, t, v, limit, rule.severity)]
            if tag in w.flags and cleared:
                w.flags.discard(tag)
                return [Event("normal", key, t, v, limit, rule.severity)]
        return []

    def check(self, now: float | None = None) -> list[Event]:
        """Time-based events: a channel silent for ``silent_after_s``, a value stuck for ``stuck_after_s``."""
        now = self.now() if now is None else now
        events = []
        with self._lock:
            for key, w in self._windows.items():
                if not w.points:
                    continue
                last_t, last_v = w.points[-1]
                silent = self.rules.silent_after_s
                if silent is not None and now - last_t > silent and "silent" not in w.flags:
                    w.flags.add("silent")
                    events.append(Event("silent", key, now, last_v, severity="alert"))
                stuck = self.rules.stuck_after_s
                if (
                    stuck is not None
                    and w.stuck_since is not None
                    and last_t - w.stuck_since >= stuck
                    and "stuck" not in w.flags
                ):
                    w.flags.add("stuck")
                    events.append(Event("stuck", key, now, last_v, severity="warning"))
            self._events.extend(events)
        return events

    def facts(self, now: float | None = None) -> Facts:
        now = self.now() if now is None else now
        with self._lock:
            channels = tuple(self._channel_facts(k, w, now) for k, w in sorted(self._windows.items()) if w.points)
            active = tuple(self._active(k, w, now) for k, w in sorted(self._windows.items()))
            return Facts(now, channels, tuple(self._events), tuple(e for group in active for e in group))

    def history(self, key: str) -> list[tuple[float, float]]:
        with self._lock:
            w = self._windows.get(key)
            return list(w.points) if w else []

    def _channel_facts(self, key: str, w: _Window, now: float) -> ChannelFacts:
        times, values = [p[0] for p in w.points], [p[1] for p in w.points]
        slope_s = _slope(times, values)
        slope = slope_s * 60
        change = slope_s * (times[-1] - times[0])
        # a trend is a change over the window larger than twice the noise around the fitted line
        mt, mv = sum(times) / len(times), sum(values) / len(values)
        noise = math.sqrt(sum((v - mv - slope_s * (t - mt)) ** 2 for t, v in zip(times, values)) / len(values))
        steady = len(values) < 3 or abs(change) <= 2 * noise or fmt(abs(slope)) == "0"
        trend = "steady" if steady else ("rising" if slope > 0 else "falling")
        info = self.rules.info(key)
        return ChannelFacts(
            key,
            w.unit,
            len(values),
            values[-1],
            min(values),
            max(values),
            sum(values) / len(values),
            slope,
            trend,
            now - times[-1],
            info.label,
            info.target,
        )

    def _active(self, key: str, w: _Window, now: float) -> list[Event]:
        last_t, last_v = w.points[-1] if w.points else (now, None)
        out = []
        for i, rule in enumerate(self.rules.for_channel(key)):
            for side, limit in (("above", rule.above), ("below", rule.below)):
                if f"rule{i}:{side}" in w.flags:
                    out.append(Event(side, key, last_t, last_v, limit, rule.severity))
        out += [Event(kind, key, last_t, last_v) for kind in ("silent", "stuck") if kind in w.flags]
        return out


def robust_z(value: float, history: list[float]) -> float | None:
    """(value - median) / (1.4826 * MAD) of the history; None with too few samples or no spread."""
    if len(history) < MIN_SAMPLES_FOR_ANOMALY:
        return None
    ordered = sorted(history)
    median = ordered[len(ordered) // 2] if len(ordered) % 2 else sum(ordered[len(ordered) // 2 - 1 :][:2]) / 2
    deviations = sorted(abs(x - median) for x in history)
    n = len(deviations)
    mad = deviations[n // 2] if n % 2 else (deviations[n // 2 - 1] + deviations[n // 2]) / 2
    if mad == 0:
        return None
    return (value - median) / (1.4826 * mad)


def _slope(times: list[float], values: list[float]) -> float:
    """Least-squares slope in units per second (0 with fewer than two distinct times)."""
    n = len(times)
    if n < 2:
        return 0.0
    mt, mv = sum(times) / n, sum(values) / n
    var = sum((t - mt) ** 2 for t in times)
    return 0.0 if var == 0 else sum((t - mt) * (v - mv) for t, v in zip(times, values)) / var
