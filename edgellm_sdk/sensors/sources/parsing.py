"""Line formats of sensor streams: CSV, JSON lines, key=value pairs, NMEA 0183 GPS sentences.

A parser turns one decoded text line into a ParsedLine, returns None for a line that carries
no reading on purpose (a CSV header, an NMEA sentence type without a position), or raises
Malformed(reason); the reason is the key counted in SourceStats.malformed. LineFramer cuts a
byte stream into lines, keeping a partial line until its newline arrives.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

FORMATS: tuple[str, ...] = ("csv", "json", "kv", "nmea")
MAX_LINE_BYTES = 4096


class Malformed(ValueError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedLine:
    values: dict[str, float]
    timestamp: float | None = None  # from the line itself (a log's time column), else None
    unit: dict[str, str] | None = None


class LineParser(Protocol):
    def parse(self, line: str) -> ParsedLine | None: ...


def make_parser(fmt: str, *, columns: Sequence[str] | None = None, time_column: str | None = None) -> LineParser:
    if fmt == "csv":
        return CsvParser(columns, time_column)
    if fmt == "json":
        return JsonParser(time_column)
    if fmt == "kv":
        return KvParser(time_column)
    if fmt == "nmea":
        return NmeaParser()
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


# ---- values -------------------------------------------------------------------------------


def to_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Malformed("non_numeric", text[:40]) from None
    if not math.isfinite(value):
        raise Malformed("not_finite", text[:40])
    return value


def to_timestamp(value: object) -> float:
    """Epoch seconds, or an ISO 8601 time (naive times are read as UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
        raise Malformed("bad_timestamp", str(value))
    text = str(value).strip()
    try:
        return float(text) if _is_float(text) and math.isfinite(float(text)) else _iso_seconds(text)
    except ValueError:
        raise Malformed("bad_timestamp", text[:40]) from None


def _iso_seconds(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def values_from_mapping(obj: Mapping[str, object], time_column: str | None = None) -> ParsedLine:
    """Numeric (and boolean, as 0/1) top-level fields become channels; strings, null and nested
    objects are ignored; no numeric field at all, or a NaN/inf, makes the line malformed."""
    values: dict[str, float] = {}
    timestamp = None
    for key, value in obj.items():
        if key == time_column:
            timestamp = to_timestamp(value)
        elif isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:
                raise Malformed("not_finite", key) from None
            if not math.isfinite(number):
                raise Malformed("not_finite", key)
            values[str(key)] = number
    if not values:
        raise Malformed("non_numeric", "no numeric field")
    if time_column and timestamp is None:
        raise Malformed("no_timestamp", f"no {time_column!r} field")
    return ParsedLine(values, timestamp)


# ---- CSV ----------------------------------------------------------------------------------

_HEADER_NAME = re.compile(r"^[A-Za-z_][\w.\-/%()°]*$")
_NOT_NAMES = {"nan", "inf", "ovf", "-nan", "infinity"}  # what Arduino's Serial.print(float) writes


def _is_header(fields: list[str]) -> bool:
    return all(_HEADER_NAME.match(field) and field.lower() not in _NOT_NAMES for field in fields)


class CsvParser:
    """Comma-separated numbers; column names from `columns` or from a header line.

    A header is a line whose every field is a name (a letter first, no spaces). The first
    header names the columns; after expect_header() (the device reconnected, it may have reset
    with new firmware) the next line may rename them. A repeated header is skipped; declared
    `columns` always win over headers. An empty field leaves that channel out of the reading.
    """

    def __init__(self, columns: Sequence[str] | None = None, time_column: str | None = None):
        self.columns: list[str] | None = list(columns) if columns else None
        self._declared = bool(columns)
        self._relearn = False
        self.time_column = time_column

    def expect_header(self) -> None:
        self._relearn = not self._declared

    def parse(self, line: str) -> ParsedLine | None:
        fields = [field.strip().strip('"') for field in line.split(",")]
        relearn, self._relearn = self._relearn, False
        if _is_header(fields):
            if self.columns is None or relearn:
                self.columns = fields
                return None
            if fields == self.columns or (self._declared and len(fields) == len(self.columns)):
                return None
        if self.columns is None:
            raise Malformed("no_header", "declare columns=a,b,c or send a header line first")
        if len(fields) != len(self.columns):
            raise Malformed("wrong_column_count", f"{len(fields)} fields, expected {len(self.columns)}")
        values: dict[str, float] = {}
        timestamp = None
        for name, text in zip(self.columns, fields):
            if name == self.time_column:
                timestamp = to_timestamp(text) if text else None
            elif text:
                values[name] = to_number(text)
        if not values:
            raise Malformed("no_values")
        if self.time_column and timestamp is None:
            raise Malformed("no_timestamp", f"no {self.time_column!r} column")
        return ParsedLine(values, timestamp)


# ---- JSON lines, key=value ----------------------------------------------------------------


class JsonParser:
    """One flat JSON object per line: {"t": 21.5, "h": 40}."""

    def __init__(self, time_column: str | None = None):
        self.time_column = time_column

    def parse(self, line: str) -> ParsedLine:
        return parse_json_object(line, self.time_column)


def parse_json_object(text: str, time_column: str | None = None) -> ParsedLine:
    try:
        obj = json.loads(text)
    except ValueError:
        raise Malformed("bad_json", text[:40]) from None
    if not isinstance(obj, dict):
        raise Malformed("not_object", type(obj).__name__)
    return values_from_mapping(obj, time_column)


_KV_SEPARATORS = re.compile(r"[\s,;]+")


class KvParser:
    """key=value pairs separated by spaces, commas or semicolons: `t=21.5 h=40`."""

    def __init__(self, time_column: str | None = None):
        self.time_column = time_column

    def parse(self, line: str) -> ParsedLine:
        values: dict[str, float] = {}
        timestamp = None
        for token in _KV_SEPARATORS.split(line.strip()):
            if not token:
                continue
            key, sep, text = token.partition("=")
            if not sep or not key:
                raise Malformed("bad_kv", token[:40])
            if key == self.time_column:
                timestamp = to_timestamp(text)
            else:
                values[key] = to_number(text)
        if not values:
            raise Malformed("no_values")
        if self.time_column and timestamp is None:
            raise Malformed("no_timestamp", f"no {self.time_column}= pair")
        return ParsedLine(values, timestamp)


# ---- NMEA 0183 ----------------------------------------------------------------------------

KNOTS_TO_MPS = 0.514444
NMEA_UNITS = {
    "lat": "deg",
    "lon": "deg",
    "alt": "m",
    "speed": "m/s",
    "course": "deg",
    "fix": "",
    "satellites": "",
    "hdop": "",
}


def nmea_checksum(body: str) -> int:
    checksum = 0
    for char in body.encode("ascii", "replace"):
        checksum ^= char
    return checksum


class NmeaParser:
    """GPS sentences, checksum verified. $xxGGA gives lat, lon, alt, fix (quality), satellites,
    hdop; $xxRMC gives lat, lon, speed (m/s), course, fix (1 = valid). Any talker (GP, GN, GL...).
    Other sentence types (GSV, GSA, VTG...) are skipped, not malformed."""

    def parse(self, line: str) -> ParsedLine | None:
        if not line.startswith("$"):
            raise Malformed("nmea_format", line[:40])
        body, star, checksum = line[1:].partition("*")
        try:
            valid = star and len(checksum) == 2 and int(checksum, 16) == nmea_checksum(body)
        except ValueError:
            valid = False
        if not valid:
            raise Malformed("nmea_checksum", line[:40])
        fields = body.split(",")
        kind = fields[0][2:] if len(fields[0]) == 5 else ""
        try:
            if kind == "GGA":
                values = self._gga(fields)
            elif kind == "RMC":
                values = self._rmc(fields)
            else:
                return None
        except (ValueError, IndexError):
            raise Malformed("nmea_format", line[:40]) from None
        return ParsedLine(values, None, {key: NMEA_UNITS[key] for key in values})

    @staticmethod
    def _gga(fields: list[str]) -> dict[str, float]:
        # GGA,time,lat,N/S,lon,E/W,quality,satellites,hdop,alt,M,...
        values = {"fix": float(int(fields[6] or 0)), "satellites": float(int(fields[7] or 0))}
        values.update(_position(fields[2:6]))
        if fields[8]:
            values["hdop"] = float(fields[8])
        if fields[9]:
            values["alt"] = float(fields[9])
        return values

    @staticmethod
    def _rmc(fields: list[str]) -> dict[str, float]:
        # RMC,time,status A/V,lat,N/S,lon,E/W,speed knots,course,date,...
        if fields[2] not in ("A", "V"):
            raise ValueError(fields[2])
        values = {"fix": 1.0 if fields[2] == "A" else 0.0}
        values.update(_position(fields[3:7]))
        if fields[7]:
            values["speed"] = float(fields[7]) * KNOTS_TO_MPS
        if fields[8]:
            values["course"] = float(fields[8])
        return values


def _position(fields: list[str]) -> dict[str, float]:
    """ddmm.mmmm,N,dddmm.mmmm,E -> signed decimal degrees ({} when there is no fix)."""
    lat, north_south, lon, east_west = fields
    if not lat or not lon:
        return {}
    if north_south not in ("N", "S") or east_west not in ("E", "W"):
        raise ValueError("hemisphere")
    latitude, longitude = _degrees(lat), _degrees(lon)
    if latitude > 90 or longitude > 180:
        raise ValueError("out of range")
    return {"lat": -latitude if north_south == "S" else latitude, "lon": -longitude if east_west == "W" else longitude}


def _degrees(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    degrees = int(value // 100)
    return degrees + (value - degrees * 100) / 60


# ---- framing ------------------------------------------------------------------------------


class LineFramer:
    """Cuts a byte stream into lines (\\n or \\r\\n); a partial line waits for its newline.
    A line longer than max_line is thrown away whole (counted once by feed)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES):
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes up to its newline

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """(complete lines, number of over-long lines thrown away)."""
        self._buffer += data
        if b"\n" not in data:
            return [], self._check_overflow()
        *lines, rest = self._buffer.split(b"\n")
        self._buffer = bytearray(rest)
        if self._discarding:
            lines, self._discarding = lines[1:], False  # the tail of the over-long line
        kept = [bytes(line) for line in lines if len(line) <= self.max_line]
        return kept, len(lines) - len(kept) + self._check_overflow()

    def _check_overflow(self) -> int:
        if self._discarding:
            self._buffer.clear()
        elif len(self._buffer) > self.max_line:
            self._buffer.clear()
            self._discarding = True
            return 1
        return 0

    def reset(self) -> bytes:
        """Forget (and return) the partial line, e.g. when the device went away mid-line."""
        partial = b"" if self._discarding else bytes(self._buffer)
        self._buffer.clear()
        self._discarding = False
        return partial
