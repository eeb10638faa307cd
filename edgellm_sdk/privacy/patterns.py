"""Our own detectors for what presidio lacks: GPS, Chinese phone numbers and IDs, street addresses, names.

Each Rule is a regular expression with a score and, where a pattern alone is not enough, a check of the
match (a check digit, a name list). Standard library only; recognizers.py wraps them for presidio.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .names import AMBIGUOUS_FIRST_NAMES, CN_COMPOUND_SURNAMES, CN_SURNAMES, CN_TITLES, FIRST_NAMES


@dataclass(frozen=True)
class Rule:
    type: str  # a PiiSpan type
    regex: re.Pattern[str]
    score: float
    group: int | str = 0  # the part of the match that is the entity
    check: Callable[[re.Match[str]], bool] | None = None

    def find(self, text: str) -> list[tuple[int, int]]:
        return [m.span(self.group) for m in self.regex.finditer(text) if self.check is None or self.check(m)]


# --- GPS: "37.7749, -122.4194", "48°51'29"N 2°17'40"E", "lat 52.520008", "北纬39.9042" -------------------
_LAT = r"[-+]?(?:[1-8]?\d\.\d{3,}|90\.0{3,})"
_LON = r"[-+]?(?:1[0-7]\d\.\d{3,}|[1-9]?\d\.\d{3,}|180\.0{3,})"
_DMS = r"\d{1,3}°\s?\d{1,2}['′]\s?\d{1,2}(?:\.\d+)?[\"″]?\s?[NSEW]"
GPS_PAIR = Rule("GPS", re.compile(rf"(?<![\d.]){_LAT}\s*[,，]\s*{_LON}(?!\d|\.\d)"), 0.8)
GPS_DMS = Rule("GPS", re.compile(rf"{_DMS}(?:[\s,]*{_DMS})?"), 0.8)
GPS_LABELLED = Rule(
    "GPS",
    re.compile(
        r"(?i:\b(?:lat|latitude|lon|lng|longitude)\b|北纬|南纬|东经|西经)\s*[:=：]?\s*([-+]?\d{1,3}\.\d{3,})(?!\d)"
    ),
    0.8,
    group=1,
)

# --- Chinese phone numbers: mobile 13812345678 / +86 138-1234-5678, landline 010-62345678 ---------------
CN_MOBILE = Rule("PHONE", re.compile(r"(?<![\d+])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"), 0.7)
CN_LANDLINE = Rule("PHONE", re.compile(r"(?<![\d-])(?:0\d{2,3}-\d{7,8}|\(0\d{2,3}\)\s?\d{7,8})(?![\d-])"), 0.7)


# --- North American numbers by shape: presidio (python-phonenumbers) drops unassigned exchanges ----------
NANP = Rule(
    "PHONE",
    re.compile(
        r"(?<![\d+])(?:\+1[-. ]?)?(?:\([2-9]\d\d\)\s?|[2-9]\d\d[-. ])[2-9]\d\d[-. ]\d{4}(?!\d)|\+1[2-9]\d{9}(?!\d)"
    ),
    0.5,
)

# --- IPv4 and MAC next to CJK characters: presidio's patterns need a \b, and 是192.168.1.5 has none -------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = Rule("IP", re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)"), 0.6)
MAC = Rule(
    "MAC",
    re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:-])"),
    0.6,
)


# --- Chinese resident ID (GB 11643): 17 digits and a mod-11 check character ---------------------------
def cn_id_valid(number: str) -> bool:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    if len(number) != 18 or not number[:17].isdigit():
        return False
    return "10X98765432"[sum(int(c) * w for c, w in zip(number[:17], weights)) % 11] == number[17].upper()


CN_ID = Rule("ID", re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])"), 0.9, check=lambda m: cn_id_valid(m[0]))

# --- English street addresses: "1600 Amphitheatre Parkway, Mountain View, CA 94043", "221B Baker Street" ---
_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Parkway|Pkwy"
    r"|Terrace|Ter|Circle|Cir|Highway|Hwy|Loop|Square|Sq|Row|Close|Crescent|Alley|Trail|Walk|Gardens)"
)
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room|#)\.?\s*[#\w-]+)"
_CITY = r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})"
_REGION = r"(?:,?\s[A-Z]{2}\s\d{5}(?:-\d{4})?|\s[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2})"  # US state + ZIP, UK postcode
EN_ADDRESS = Rule(
    "ADDRESS",
    re.compile(
        rf"\b\d{{1,5}}[A-Za-z]?\s(?:[A-Z][a-z]+\s){{1,3}}{_SUFFIX}\b\.?{_UNIT}?(?:{_CITY}{_REGION}?)?"
        rf"(?<![.,])"
    ),
    0.6,
)

# --- English names: after a title or an introduction, or a listed first name (+ a capitalized surname) ---
_NAME = r"[A-Z](?:[a-z]+(?:[-'’][A-Z]?[a-z]+)?|['’][A-Z][a-z]+)"  # Anna, Jean-Luc, O'Brien
_FULL_NAME = rf"{_NAME}(?:\s{_NAME}){{0,2}}"
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Madam|Grandma|Grandpa|Uncle|Aunt|Auntie)"
EN_TITLED_NAME = Rule("PERSON", re.compile(rf"\b{_TITLES}\.?\s({_FULL_NAME})"), 0.7, group=1)
# capitalized words an introduction may precede that are not names ("this is Monday")
_NOT_NAMES = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "the",
        "a",
        "an",
        "it",
        "this",
        "that",
        "here",
        "there",
        "not",
    ]
)
EN_INTRODUCED_NAME = Rule(
    "PERSON",
    re.compile(rf"(?i:\b(?:my name is|my name's|name is|i am|i'm|this is|it's|call me|named|called))\s({_FULL_NAME})"),
    0.6,
    group=1,
    check=lambda m: m[1].split()[0].lower() not in _NOT_NAMES,
)


def _listed_first_name(m: re.Match[str]) -> bool:
    first, *rest = m[1].split()
    first = first.lower()
    return first in FIRST_NAMES or (first in AMBIGUOUS_FIRST_NAMES and bool(rest))


EN_LISTED_NAME = Rule(
    "PERSON",
    re.compile(rf"\b(?=({_NAME}(?:\s(?!{_SUFFIX}\b){_NAME})?)\b)"),  # a lookahead: every capitalized word is tried
    0.5,
    group=1,
    check=_listed_first_name,
)

# --- Chinese names by context: 我叫李娜, 联系人：周杰, 王先生 ------------------------------------------------
_SURNAME = "(?:" + "|".join(CN_COMPOUND_SURNAMES) + "|[" + "".join(sorted(CN_SURNAMES)) + "])"
CN_INTRODUCED_NAME = Rule(
    "PERSON",
    re.compile(
        rf"(?:我叫|我是|名叫|叫做|联系人[:：]?\s*|收件人[:：]?\s*)({_SURNAME}[\u4e00-\u9fff]{{1,2}}?)(?=[，,。、\s]|$)"
    ),
    0.7,
    group=1,
)
CN_TITLED_NAME = Rule("PERSON", re.compile(rf"{_SURNAME}(?:{'|'.join(CN_TITLES)})"), 0.6)

# --- Chinese postal addresses, matched from a place-name token jieba found: 北京市朝阳区建国路88号 ---------
_ADMIN = r"[\u4e00-\u9fff]{1,8}?(?:省|自治区|市|区|县|镇|乡|街道|村)"
_STREET = r"[\u4e00-\u9fff\d]{1,10}?(?:大街|大道|路|街|巷|胡同|弄|道)(?:[东西南北中]段|[一二三四五六七八九十\d]+段)?"
_NUMBER = r"[\d一二三四五六七八九十百]+号(?:院|楼)?"
_UNIT_ZH = r"[\dA-Za-z一二三四五六七八九十]+(?:号楼|栋|幢|座|单元|楼|层|室|号|户)"
ZH_ADDRESS_AT = re.compile(rf"(?P<admin>(?:{_ADMIN})*)(?P<street>{_STREET})?(?P<number>{_NUMBER})?(?:{_UNIT_ZH})*")


def zh_address_at(text: str, pos: int) -> int:
    """End of a postal address starting at ``pos``, or ``pos`` if there is none.

    An address needs a street and a house number, or an administrative area and a street.
    """
    m = ZH_ADDRESS_AT.match(text, pos)
    if m is None or not m["street"] or not (m["number"] or m["admin"]):
        return pos
    return m.end()


EN_RULES = (
    GPS_PAIR,
    GPS_DMS,
    GPS_LABELLED,
    NANP,
    CN_MOBILE,
    CN_ID,
    EN_ADDRESS,
    EN_TITLED_NAME,
    EN_INTRODUCED_NAME,
    EN_LISTED_NAME,
)
ZH_RULES = (
    GPS_PAIR,
    GPS_DMS,
    GPS_LABELLED,
    IPV4,
    MAC,
    CN_MOBILE,
    CN_LANDLINE,
    CN_ID,
    CN_INTRODUCED_NAME,
    CN_TITLED_NAME,
)
