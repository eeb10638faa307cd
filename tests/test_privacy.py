"""PII redaction (edgellm_sdk.privacy): each entity kind in English and Chinese, negatives, the filter."""

import logging
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgellm_sdk import MissingDependency, privacy
from edgellm_sdk.privacy import PiiSpan, RedactingFilter, Redactor

pytest.importorskip("presidio_analyzer")


@pytest.fixture(scope="module")
def redactor():
    return Redactor().load()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Call John Smith at +1 415-555-0132.", "Call <PERSON> at <PHONE>."),
        ("Mail me at jane.doe@example.com", "Mail me at <EMAIL>"),
        ("Ask Dr. Kowalski about it", "Ask Dr. <PERSON> about it"),
        ("my name is Oliver Stone", "my name is <PERSON>"),
        ("She lives at 42 Willow Road, Springfield.", "She lives at <ADDRESS>."),
        ("parked at 37.7749, -122.4194 now", "parked at <GPS> now"),
        ("fix 48°51'29\"N 2°17'40\"E", "fix <GPS>"),
        ("camera 10.1.2.3 and fe80::1ff:fe23:4567:890a", "camera <IP> and <IP>"),
        ("MAC 00:1A:2B:3C:4D:5E", "MAC <MAC>"),
        ("card 4111 1111 1111 1111", "card <ID>"),
        ("请联系张伟，电话13812345678。", "请联系<PERSON>，电话<PHONE>。"),
        ("座机010-62345678", "座机<PHONE>"),
        ("邮箱wang@example.cn", "邮箱<EMAIL>"),
        ("住在北京市朝阳区建国路88号。", "住在<ADDRESS>。"),
        ("给王先生回电话", "给<PERSON>回电话"),
        ("身份证11010519491231002X", "身份证<ID>"),
        ("北纬39.9042，东经116.4074", "北纬<GPS>，东经<GPS>"),
        ("摄像头是192.168.1.100，MAC是3c:5a:b4:01:23:45", "摄像头是<IP>，MAC是<MAC>"),
        ("Please call 李娜 at 13912345678", "Please call <PERSON> at <PHONE>"),
    ],
)
def test_redacts_each_kind(redactor, text, want):
    assert redactor.redact(text) == want
    assert redactor.contains_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "The greenhouse is at 23.5 °C with 61 % humidity.",
        "Move forward 2 meters and then turn left 90 degrees.",
        "Firmware 1.2.3 is installed.",
        "Set an alarm for 6:45 tomorrow.",
        "Will it rain tomorrow? May I open the window?",
        "Mark the spot and drive to the charging dock.",
        "Reading from sensor 3: 17.25, 18.10, 18.42.",
        "客厅温度23.5度，湿度45%。",
        "向前移动2米，然后左转90度。",
        "去3号充电桩充电。",
        "北京今天天气怎么样？",
        "订单号是20240512001。",
        "",
    ],
)
def test_leaves_clean_text_alone(redactor, text):
    assert redactor.find(text) == []
    assert redactor.redact(text) == text


def test_find_returns_typed_ordered_spans(redactor):
    text = "Email bob@example.com or call 212-555-0147"
    spans = redactor.find(text)
    assert [(s.type, text[s.start : s.end]) for s in spans] == [("EMAIL", "bob@example.com"), ("PHONE", "212-555-0147")]
    assert all(isinstance(s, PiiSpan) and 0 < s.score <= 1 for s in spans)
    assert spans[0].placeholder == "<EMAIL>"


def test_language_is_detected_or_forced(redactor):
    zh = "请联系张伟"
    assert redactor.redact(zh) == "请联系<PERSON>"
    assert redactor.redact(zh, language="en") == zh  # the English recognizers know no Chinese names
    with pytest.raises(ValueError, match="language must be one of"):
        redactor.redact(zh, language="fr")


def test_entities_and_module_level_api(redactor):
    only_phones = Redactor(entities=["PHONE"])
    assert only_phones.redact("John Smith, 212-555-0147") == "John Smith, <PHONE>"
    assert privacy.redact("Call John Smith") == "Call <PERSON>"
    assert privacy.contains_pii("jane@example.com") and not privacy.contains_pii("turn left")
    with pytest.raises(ValueError, match="unknown entity types"):
        Redactor(entities=["SHOE_SIZE"])


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)  # import presidio_analyzer -> ImportError
    monkeypatch.delitem(sys.modules, "edgellm_sdk.privacy.recognizers", raising=False)
    with pytest.raises(MissingDependency, match=r"pip install 'edgellm-sdk\[privacy\]'") as err:
        Redactor().redact("call 212-555-0147")
    assert err.value.extra == "privacy"
    with pytest.raises(MissingDependency):
        RedactingFilter(Redactor())


def test_import_stays_light():
    code = "import sys, edgellm_sdk, edgellm_sdk.privacy; print(sorted(m for m in sys.modules if m.split('.')[0] in ('presidio_analyzer', 'jieba', 'spacy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_logging_filter_redacts_messages_args_and_tracebacks(redactor, caplog):
    logger = logging.getLogger("edgellm_sdk.test_privacy")
    handler_filter = RedactingFilter(redactor)
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("heard: %r", "call me on 13812345678")
            try:
                raise ValueError("bad address jane@example.com")
            except ValueError:
                logger.exception("failed for %s", "John Smith")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert caplog.messages[0] == "heard: 'call me on <PHONE>'"
    assert caplog.messages[1] == "failed for <PERSON>"
    assert "jane@example.com" not in caplog.text and "<EMAIL>" in caplog.text


# --- property: no redacted output contains the original phone number or e-mail -----------------------------
US_AREAS = ("201", "212", "303", "312", "415", "617", "646", "650", "702", "718", "917")
digits = st.text("0123456789", min_size=4, max_size=4)
us_phone = st.builds(
    lambda area, ex, line, style: style.format(a=area, e=ex, l=line),
    st.sampled_from(US_AREAS),
    st.integers(200, 999).filter(lambda n: n % 100 != 11).map(str),
    digits,
    st.sampled_from(("+1 {a}-{e}-{l}", "({a}) {e}-{l}", "{a}.{e}.{l}", "{a} {e} {l}", "+1{a}{e}{l}")),
)
cn_mobile = st.builds(
    lambda prefix, rest, style: style.format(p=prefix, a=rest[:4], b=rest[4:]),
    st.sampled_from(("135", "138", "139", "150", "158", "176", "186", "189", "199")),
    st.text("0123456789", min_size=8, max_size=8),
    st.sampled_from(("{p}{a}{b}", "+86 {p} {a} {b}", "{p}-{a}-{b}", "+86{p}{a}{b}")),
)
local = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
email = st.builds(
    lambda user, sep, tail, domain: f"{user}{sep}{tail}@{domain}",
    local,
    st.sampled_from((".", "_", "-", "+")),
    local,
    st.sampled_from(("example.com", "mail.example.org", "corp.example.co.uk", "example.cn", "robot.example.net")),
)
words = st.lists(
    st.sampled_from(
        (
            "call",
            "me",
            "at",
            "the",
            "robot",
            "is",
            "on",
            "please",
            "turn",
            "left",
            "23.5",
            "°C",
            "电话",
            "联系",
            "我",
            "邮箱",
            "temperature",
            "now",
            "or",
            "mail",
            ",",
            "。",
            "：",
            "kitchen",
            "2",
            "meters",
        ),
    ),
    max_size=8,
).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=words, pii=st.one_of(us_phone, cn_mobile, email), after=words, glue=st.sampled_from((" ", "：", ", ", " ("))
)
def test_no_phone_or_email_survives(redactor, before, pii, after, glue):
    text = f"{before}{glue}{pii} {after}"
    out = redactor.redact(text)
    assert pii not in out, (text, out)
