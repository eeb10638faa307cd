"""Numbers a request states, with the unit written right after each ("2 m", "两米", "0.8 m/s").

Digits, English number words ("forty-five", "a hundred and eighty", "half") and Chinese
numerals (一百八十, 两) are recognised. The unit binds a number to the arguments that use
that unit, so "drive at 3 meters per second" can set a speed but never a 3 m move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that name a unit, per canonical unit of an Arg. A word may belong to several units
# ("degrees" is an angle or a temperature); the longest written form is matched first.
UNIT_WORDS: dict[str, tuple[str, ...]] = {
    "m": ("m", "meter", "meters", "metre", "metres", "米"),
    "m/s": (
        "m/s",
        "mps",
        "meter per second",
        "meters per second",
        "metre per second",
        "metres per second",
        "米每秒",
        "米/秒",
    ),
    "degrees": ("deg", "degree", "degrees", "°", "度"),
    "°C": ("°c", "degree", "degrees", "degrees celsius", "celsius", "°", "度", "摄氏度"),
    "%": ("%", "percent", "per cent"),
    "s": ("s", "sec", "second", "seconds", "秒"),
}
_ALL_UNIT_WORDS = sorted({w for words in UNIT_WORDS.values() for w in words}, key=len, reverse=True)

_EN = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ZH = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WORD = r"[a-z]+(?:-[a-z]+)?"
_NUMBER = re.compile(
    rf"(?P<digits>-?\d+(?:\.\d+)?)"
    rf"|(?P<hundred>(?:a|{_WORD})\s+hundred(?:\s+and\s+{_WORD})?)"
    rf"|(?P<zh>[零一二两三四五六七八九十百]+)"
    rf"|(?P<word>{_WORD})"
)


@dataclass(frozen=True)
class Quantity:
    value: float
    unit_word: str | None  # the unit as written after the number, lower-cased; None when none is

    def fits(self, unit: str | None) -> bool:
        """True if this number may fill an argument measured in ``unit``."""
        return self.unit_word is None or self.unit_word in unit_words(unit)


def unit_words(unit: str | None) -> tuple[str, ...]:
    if unit is None:
        return ()
    return UNIT_WORDS.get(unit, (unit.lower(),))


def _en_value(word: str) -> int | None:
    if word == "a":
        return 1
    parts = word.split("-")
    return sum(_EN[p] for p in parts) if all(p in _EN for p in parts) else None


def _zh_value(run: str) -> int:
    """一百八十 -> 180, 二十二 -> 22, 十 -> 10 (up to 999)."""
    total, current = 0, 0
    for ch in run:
        if ch in _ZH:
            current = _ZH[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
    return total + current


def _value(m: re.Match) -> float | None:
    if m["digits"]:
        return float(m["digits"])
    if m["zh"]:
        return float(_zh_value(m["zh"]))
    if m["hundred"]:
        words = m["hundred"].split()
        head, tail = _en_value(words[0]), _en_value(words[-1]) if words[-1] != "hundred" else 0
        return None if head is None or tail is None else float(head * 100 + tail)
    if m["word"] == "half":
        return 0.5
    value = _en_value(m["word"]) if m["word"] != "a" else None
    return None if value is None else float(value)


def _unit_after(text: str, end: int) -> str | None:
    rest = re.sub(r"^\s*(?:an?\s+)?", "", text[end : end + 40])
    for word in _ALL_UNIT_WORDS:
        if rest.startswith(word):
            after = rest[len(word) : len(word) + 1]
            if not (word[-1].isascii() and word[-1].isalpha() and after.isascii() and after.isalpha()):
                return word
    return None


def quantities(text: str) -> list[Quantity]:
    """Every number ``text`` states, in order, with the unit written after it (if any)."""
    lowered = text.lower()
    found = []
    for m in _NUMBER.finditer(lowered):
        value = _value(m)
        if value is not None:
            found.append(Quantity(value, _unit_after(lowered, m.end())))
    return found


def numbers_in(text: str) -> list[float]:
    """The distinct values ``text`` states, sorted."""
    return sorted({q.value for q in quantities(text)})
