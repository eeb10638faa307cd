"""Options of a sensor URL: the query string merged with open_source() keyword arguments
(keywords win), checked against what the source kind accepts, converted with messages that
say what was wrong and show a correct example."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qsl

from ...errors import SensorError

COMMON = {"name", "queue", "drop"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class Options:
    def __init__(self, url: str, kind: str, query: str, overrides: Mapping[str, object], allowed: Iterable[str]):
        self.url, self.kind = url, kind
        self.raw: dict[str, object] = dict(parse_qsl(query, keep_blank_values=True))
        self.raw.update(overrides)
        allowed = set(allowed) | COMMON
        unknown = sorted(set(self.raw) - allowed)
        if unknown:
            raise SensorError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for a {kind} "
                f"source ({url!r}); {kind} sources accept: {', '.join(sorted(allowed))}"
            )

    def _bad(self, key: str, expected: str, example: str) -> SensorError:
        return SensorError(f"bad value {key}={self.raw[key]!r} in {self.url!r}: expected {expected}, e.g. {example}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key, default)
        return None if value is None else str(value)

    def required(self, key: str, example: str, hint: str = "") -> str:
        if key not in self.raw or self.raw[key] in ("", None):
            raise SensorError(
                f"{self.kind} source {self.url!r} needs the option {key}=...: e.g. {example}"
                + (f" ({hint})" if hint else "")
            )
        return str(self.raw[key])

    def choice(self, key: str, choices: Sequence[str], default: str | None, example: str) -> str | None:
        value = self.raw.get(key, default)
        if value is not None and str(value).lower() not in choices:
            raise self._bad(key, "one of " + "|".join(choices), example)
        return None if value is None else str(value).lower()

    def integer(self, key: str, default: int, low: int, high: int | None, example: str) -> int:
        value = self.raw.get(key, default)
        try:
            number = int(str(value))
        except ValueError:
            raise self._bad(key, "an integer", example) from None
        if number < low or (high is not None and number > high):
            raise self._bad(key, f"an integer in [{low}, {high if high is not None else '∞'}]", example)
        return number

    def number(self, key: str, default: float, low: float, example: str) -> float:
        value = self.raw.get(key, default)
        try:
            number = float(str(value))
        except ValueError:
            raise self._bad(key, "a number", example) from None
        if not number >= low or number == float("inf"):  # also rejects NaN
            raise self._bad(key, f"a finite number >= {low}", example)
        return number

    def flag(self, key: str, default: bool, example: str) -> bool:
        value = self.raw.get(key, default)
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text not in _TRUE | _FALSE:
            raise self._bad(key, "1|0 (true|false)", example)
        return text in _TRUE

    def names(self, key: str, example: str) -> list[str] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, (str, Iterable)):
            raise self._bad(key, "distinct comma-separated names", example)
        names = [str(name).strip() for name in (value.split(",") if isinstance(value, str) else value)]
        if not names or not all(names) or len(set(names)) != len(names):
            raise self._bad(key, "distinct comma-separated names", example)
        return names

    def queue(self, default_drop: str = "oldest") -> tuple[int, str]:
        size = self.integer("queue", 1024, 1, None, "queue=1024")
        drop = self.choice("drop", ("oldest", "newest", "block"), default_drop, "drop=oldest")
        return size, drop or default_drop
