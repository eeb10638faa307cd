"""Numbers a request states, with the unit written right after each ("2 m", "两米", "0.8 m/s").

Digits, English number words ("forty-five", "a hundred and eighty", "half") and Chinese
numerals (一百八十, 两) are recognised. The unit binds a number to the arguments that use
that unit, so "drive at 3 meters per second" can set a speed but never a 3 m move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .units import ALL_UNIT_WORDS, CONVERTED, UNIT_WORDS, unit_words

__all__ = ["UNIT_WORDS", "Quantity", "numbers_in", "quantities", "unit_words"]

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
NUMBER_WORD = re.compile("|".join([*_EN, "hundred", "half"]))
_ZH = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WORD = r"[a-z]+(?:-[a-z]+)?"
NOT_A_NUMBER_AFTER_YI = set("下点起会些直样定边切")
_ZH_DIGITS = "零一二两三四五六七八九"
_NUMBER = re.compile(
    rf"(?P<and_half>(?:\d+|{_WORD})\s+and\s+a\s+half)"
    rf"|(?P<digits>-?\d+(?:\.\d+)?)"
    rf"|(?P<point>{_WORD}\s+point\s+{_WORD})"
    rf"|(?P<zh_point>[{_ZH_DIGITS}十百]+点[{_ZH_DIGITS}]+)"
    rf"|(?P<hundred>(?:a|{_WORD})\s+hundred(?:\s+and\s+{_WORD})?)"
    rf"|(?P<zh>[{_ZH_DIGITS}十百]+)"
    rf"|(?P<word>{_WORD})"
)


@dataclass(frozen=True)
class Quantity:
    value: float
    unit_word: str | None  # the unit as written after the number, lower-cased; None when none is
    in_digits: bool = False  # written as digits ("2"), not as a word ("two", which may be a pronoun)

    def fits(self, unit: str | None) -> bool:
        """True if this number may fill an argument measured in ``unit``."""
        return self.in_unit(unit) is not None

    def in_unit(self, unit: str | None) -> float | None:
        """The value in ``unit`` ("20 cm" is 0.2 in m), or None if it is not a measure of it."""
        if self.unit_word is None or self.unit_word in unit_words(unit):
            return self.value
        canonical, factor = CONVERTED.get(self.unit_word, (None, 0.0))
        return round(self.value * factor, 6) if canonical is not None and canonical == unit else None


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
    if m["and_half"]:  # "three and a half", "2 and a half": 3.5, 2.5
        whole = m["and_half"].split()[0]
        value = float(whole) if whole.isdigit() else _en_value(whole)
        return None if value is None else value + 0.5
    if m["digits"]:
        return float(m["digits"])
    if m["zh"]:
        return float(_zh_value(m["zh"]))
    if m["zh_point"]:  # 一点五: 1.5
        whole, fraction = m["zh_point"].split("点")
        return float(f"{_zh_value(whole)}.{''.join(str(_ZH[ch]) for ch in fraction)}")
    if m["point"]:  # "one point two": 1.2
        words = m["point"].split()
        whole, digits = _en_value(words[0]), [_en_value(w) for w in words[2:]]
        if whole is None or not digits or any(d is None or d > 9 for d in digits):
            return None
        return float(f"{whole}.{''.join(str(d) for d in digits)}")
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
    for word in ALL_UNIT_WORDS:
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
        if m["zh"] == "一" and lowered[m.end() : m.end() + 1] in NOT_A_NUMBER_AFTER_YI:
            continue  # 一下, 一点儿, 一起: "a bit", "together"
        value = _value(m)
        if value is not None:
            unit = _unit_after(lowered, m.end())
            if unit == "米" and lowered[: m.start()].endswith("每秒"):  # 每秒五米: five metres per second
                unit = "米每秒"
            found.append(Quantity(value, unit, bool(m["digits"] or (m["and_half"] or "")[:1].isdigit())))
    return found


def numbers_in(text: str) -> list[float]:
    """The distinct values ``text`` states, sorted."""
    return sorted({q.value for q in quantities(text)})
