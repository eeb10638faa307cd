"""Units as people write them after a number: the ones an Arg is measured in, the ones that
convert to those ("20 cm" is 0.2 m), and others that fit no argument ("2 gigabytes")."""

from __future__ import annotations

# Words that name a unit, per canonical unit of an Arg. A word may belong to several units
# ("degrees" is an angle or a temperature); the longest written form is matched first.
UNIT_WORDS: dict[str, tuple[str, ...]] = {
    "m": ("m", "meter", "meters", "metre", "metres", "米", "公尺"),
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


def _each(words: str, unit: str, factor: float) -> dict[str, tuple[str, float]]:
    return {w: (unit, factor) for w in words.split("|")}


# written unit -> (canonical unit, factor)
CONVERTED: dict[str, tuple[str, float]] = {
    **_each("cm|centimeter|centimeters|centimetre|centimetres|厘米|公分", "m", 0.01),
    **_each("mm|millimeter|millimeters|millimetre|millimetres|毫米", "m", 0.001),
    **_each("km|kilometer|kilometers|kilometre|kilometres|公里|千米", "m", 1000.0),
    **_each("ft|foot|feet", "m", 0.3048),
    **_each("inch|inches", "m", 0.0254),
    **_each("km/h|kmh|kph|kilometers per hour|kilometres per hour|公里每小时", "m/s", 1 / 3.6),
    **_each("mph|miles per hour", "m/s", 0.44704),
    **_each("cm/s|centimeters per second|centimetres per second|厘米每秒", "m/s", 0.01),
}

# Units no Arg is measured in unless it declares them: a number in one of these fills nothing.
OTHER_UNITS = tuple(
    """°f fahrenheit kg kilo kilos kilogram kilograms gram grams pound pounds lb lbs liter liters
    litre litres gb gigabyte gigabytes mb megabyte megabytes byte bytes minute minutes min mins
    hour hours day days week weeks month months year years time times o'clock pm am dollar
    dollars euro euros people items 公斤 千克 克 斤 升 分钟 小时 天 周 个月 年 次 点钟 块 元 个 岁""".split()  # noqa: SIM905
)

ALL_UNIT_WORDS = sorted(
    {w for words in UNIT_WORDS.values() for w in words} | set(CONVERTED) | set(OTHER_UNITS), key=len, reverse=True
)


def unit_words(unit: str | None) -> tuple[str, ...]:
    if unit is None:
        return ()
    return UNIT_WORDS.get(unit, (unit.lower(),))
