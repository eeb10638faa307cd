"""Standard sensor_msgs messages -> channel values and units for the SDK's sensor pipeline.

    Temperature        temperature (°C)
    RelativeHumidity   humidity (%; ROS stores 0..1)
    BatteryState       battery (%; ROS stores 0..1), voltage (V), current (A, negative = discharging),
                       battery_temp (°C), charging (1 charging or full, 0 discharging / not charging);
                       nothing when present is false and no voltage is measured
    Range              range (m; readings outside [min_range, max_range] are skipped, as REP 117 says)
    Imu                roll, pitch, tilt (degrees from level) from the orientation, angular_speed (°/s),
                       acceleration (m/s², magnitude including gravity); parts flagged unavailable
                       (covariance[0] == -1) are skipped
    NavSatFix          fix (1 fix, 0 no fix), lat, lon (°), alt (m); no position without a fix
    FluidPressure      pressure (hPa; ROS stores Pa)
    Illuminance        illuminance (lx)

NaN / inf values (ROS's "not measured") are never returned: they are listed in `skipped` with
the reason, for the node to count. A subscription is written "topic:Type[:name]"
(parse_topics), e.g. "/greenhouse/temp:Temperature:greenhouse" -> channel "greenhouse/temperature".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sensor_msgs import msg as sensor_msgs


@dataclass(frozen=True)
class Channels:
    values: dict[str, float] = field(default_factory=dict)
    unit: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # channel -> reason: not_finite | out_of_range | no_fix...


class _Builder:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.unit: dict[str, str] = {}
        self.skipped: dict[str, str] = {}

    def add(self, channel: str, value: float, unit: str = "", scale: float = 1.0) -> None:
        if not math.isfinite(value):
            self.skipped[channel] = "not_finite"
            return
        self.values[channel] = value * scale
        if unit:
            self.unit[channel] = unit

    def skip(self, reason: str, *channels: str) -> None:
        self.skipped.update(dict.fromkeys(channels, reason))

    def done(self) -> Channels:
        return Channels(self.values, self.unit, self.skipped)


def temperature(m: sensor_msgs.Temperature) -> Channels:
    out = _Builder()
    out.add("temperature", m.temperature, "°C")
    return out.done()


def relative_humidity(m: sensor_msgs.RelativeHumidity) -> Channels:
    out = _Builder()
    out.add("humidity", m.relative_humidity, "%", 100.0)
    return out.done()


_CHARGING = {
    sensor_msgs.BatteryState.POWER_SUPPLY_STATUS_CHARGING: 1.0,
    sensor_msgs.BatteryState.POWER_SUPPLY_STATUS_FULL: 1.0,
    sensor_msgs.BatteryState.POWER_SUPPLY_STATUS_DISCHARGING: 0.0,
    sensor_msgs.BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING: 0.0,
}


def battery_state(m: sensor_msgs.BatteryState) -> Channels:
    out = _Builder()
    if not m.present and not m.voltage > 0:  # many drivers never set present: trust a measured voltage
        out.skip("not_present", "battery", "voltage", "current", "battery_temp", "charging")
        return out.done()
    out.add("battery", m.percentage, "%", 100.0)
    out.add("voltage", m.voltage, "V")
    out.add("current", m.current, "A")
    out.add("battery_temp", m.temperature, "°C")
    if m.power_supply_status in _CHARGING:
        out.add("charging", _CHARGING[m.power_supply_status])
    else:
        out.skip("unknown", "charging")
    return out.done()


def range_(m: sensor_msgs.Range) -> Channels:
    out = _Builder()
    if math.isfinite(m.range) and not m.min_range <= m.range <= m.max_range:
        out.skip("out_of_range", "range")
    else:
        out.add("range", m.range, "m")
    return out.done()


def imu(m: sensor_msgs.Imu) -> Channels:
    out = _Builder()
    q = m.orientation
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if m.orientation_covariance[0] == -1:
        out.skip("unavailable", "roll", "pitch", "tilt")
    elif not math.isfinite(norm):
        out.skip("not_finite", "roll", "pitch", "tilt")
    elif norm < 1e-6:
        out.skip("invalid", "roll", "pitch", "tilt")
    else:
        x, y, z, w = q.x / norm, q.y / norm, q.z / norm, q.w / norm
        out.add("roll", math.degrees(math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))), "°")
        out.add("pitch", math.degrees(math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))), "°")
        out.add("tilt", math.degrees(math.acos(max(-1.0, min(1.0, 1 - 2 * (x * x + y * y))))), "°")
    for channel, vector, covariance, unit, scale in (
        ("angular_speed", m.angular_velocity, m.angular_velocity_covariance, "°/s", math.degrees(1.0)),
        ("acceleration", m.linear_acceleration, m.linear_acceleration_covariance, "m/s²", 1.0),
    ):
        if covariance[0] == -1:
            out.skip("unavailable", channel)
        else:
            out.add(channel, math.sqrt(vector.x**2 + vector.y**2 + vector.z**2), unit, scale)
    return out.done()


def nav_sat_fix(m: sensor_msgs.NavSatFix) -> Channels:
    out = _Builder()
    status = m.status.status
    if status >= sensor_msgs.NavSatStatus.STATUS_FIX:
        out.add("fix", 1.0)
    elif status == sensor_msgs.NavSatStatus.STATUS_NO_FIX:
        out.add("fix", 0.0)
    if status < sensor_msgs.NavSatStatus.STATUS_FIX:  # no fix, or unknown (the message's default)
        out.skip("no_fix", "lat", "lon", "alt")
        return out.done()
    for channel, value, limit in (("lat", m.latitude, 90.0), ("lon", m.longitude, 180.0)):
        if math.isfinite(value) and abs(value) > limit:
            out.skip("out_of_range", channel)
        else:
            out.add(channel, value, "°")
    out.add("alt", m.altitude, "m")
    return out.done()


def fluid_pressure(m: sensor_msgs.FluidPressure) -> Channels:
    out = _Builder()
    out.add("pressure", m.fluid_pressure, "hPa", 0.01)
    return out.done()


def illuminance(m: sensor_msgs.Illuminance) -> Channels:
    out = _Builder()
    out.add("illuminance", m.illuminance, "lx")
    return out.done()


# type name -> (message class, converter)
CONVERTERS = {
    "Temperature": (sensor_msgs.Temperature, temperature),
    "RelativeHumidity": (sensor_msgs.RelativeHumidity, relative_humidity),
    "BatteryState": (sensor_msgs.BatteryState, battery_state),
    "Range": (sensor_msgs.Range, range_),
    "Imu": (sensor_msgs.Imu, imu),
    "NavSatFix": (sensor_msgs.NavSatFix, nav_sat_fix),
    "FluidPressure": (sensor_msgs.FluidPressure, fluid_pressure),
    "Illuminance": (sensor_msgs.Illuminance, illuminance),
}


def convert(message) -> Channels:
    """The channels of any supported sensor_msgs message."""
    for cls, converter in CONVERTERS.values():
        if isinstance(message, cls):
            return converter(message)
    raise TypeError(f"no conversion for {type(message).__name__}; supported: {', '.join(CONVERTERS)}")


# ---- the `topics` parameter -------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
TOPIC_FORMAT = "'topic:Type[:name]', e.g. '/greenhouse/temp:Temperature:greenhouse'"


@dataclass(frozen=True)
class Subscription:
    topic: str  # as given (relative names resolve in the node's namespace)
    type_name: str  # a key of CONVERTERS
    name: str  # the readings' source: channels are "name/channel"

    @property
    def message_type(self):
        return CONVERTERS[self.type_name][0]


def parse_topic(entry: str) -> Subscription:
    """One "topic:Type[:name]" entry; ValueError naming the entry and what is wrong with it.
    Type may be written sensor_msgs/msg/Type; name defaults to the topic's last part."""
    from rclpy.exceptions import InvalidTopicNameException
    from rclpy.expand_topic_name import expand_topic_name
    from rclpy.validate_full_topic_name import validate_full_topic_name
    from rclpy.validate_topic_name import validate_topic_name

    parts = entry.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"topics entry {entry!r} is not {TOPIC_FORMAT}")
    topic, type_name = parts[0].strip(), parts[1].strip()
    try:
        validate_topic_name(topic)
        validate_full_topic_name(expand_topic_name(topic, "node", "/"))
    except InvalidTopicNameException as exc:
        why = str(exc).splitlines()[0].removeprefix("Invalid topic name: ").rstrip(":")
        raise ValueError(f"topics entry {entry!r}: bad topic name {topic!r}: {why}") from None
    short = type_name.removeprefix("sensor_msgs/msg/").removeprefix("sensor_msgs/")
    if short not in CONVERTERS:
        raise ValueError(
            f"topics entry {entry!r}: unsupported message type {type_name!r}; "
            f"supported sensor_msgs types: {', '.join(CONVERTERS)}"
        )
    name = parts[2].strip() if len(parts) == 3 else topic.rstrip("/").rsplit("/", 1)[-1].lstrip("~")
    if not _NAME.fullmatch(name):
        raise ValueError(f"topics entry {entry!r}: source name {name!r} must be letters, digits, '_', '.' or '-'")
    return Subscription(topic, short, name)


def parse_topics(entries: list[str]) -> list[Subscription]:
    """Every entry parsed; a topic may be listed once, and a (name, Type) pair once."""
    if not entries or entries == [""]:
        raise ValueError(f"topics is empty: list at least one {TOPIC_FORMAT}")
    subs = [parse_topic(e) for e in entries]
    for i, sub in enumerate(subs):
        for other in subs[:i]:
            if other.topic == sub.topic:
                raise ValueError(f"topics entry {entries[i]!r}: topic {sub.topic!r} is listed twice")
            if (other.name, other.type_name) == (sub.name, sub.type_name):
                raise ValueError(
                    f"topics entry {entries[i]!r}: source {sub.name!r} already has a {sub.type_name} "
                    "topic (their channels would mix); give it another name"
                )
    return subs


def topics_problem(value: object) -> str | None:
    """The params.py check for `topics`: the reason the list is bad, or None."""
    try:
        parse_topics(list(value))
    except ValueError as exc:
        return str(exc)
    return None
