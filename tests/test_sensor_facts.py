"""Facts from readings: windows, trend, thresholds with hysteresis, anomalies, silence, stuck values, rules files."""

import pytest

from edgellm_sdk.errors import SensorError
from edgellm_sdk.sensors import FactBook, Reading, Rule, RuleSet
from edgellm_sdk.sensors.facts import fmt, robust_z


def feed(book, values, source="gh", channel="temp_c", t0=1000.0, step=10.0, unit="°C"):
    events = []
    for i, v in enumerate(values):
        events += book.add(Reading(source, {channel: v}, t0 + i * step, {channel: unit}))
    return events


def test_window_statistics_and_trend():
    book = FactBook(RuleSet(window_s=60), clock=None)
    feed(book, [20, 21, 22, 23, 24, 25, 26, 27])  # 8 readings 10 s apart; the window keeps the last 60 s
    c = book.facts().channel("gh/temp_c")
    assert (c.samples, c.last, c.minimum, c.maximum) == (7, 27, 21, 27)
    assert c.mean == pytest.approx(24) and c.slope_per_min == pytest.approx(6)
    assert c.trend == "rising" and c.unit == "°C" and c.age_s == 0
    assert "gh/temp_c is 27 °C, rising 6 °C/min (range 21 to 27 °C)." == c.line()
    flat = FactBook(clock=None)
    feed(flat, [20.0, 20.1, 19.9, 20.0, 20.1, 19.9])
    assert flat.facts().channel("gh/temp_c").trend == "steady"


def test_threshold_with_hysteresis_fires_once_and_clears():
    book = FactBook(RuleSet([Rule("gh/*", above=30, hysteresis=1.0)]), clock=None)
    events = feed(book, [29, 31, 32, 29.5, 31, 28.9, 27])
    assert [(e.kind, e.value) for e in events] == [("above", 31), ("normal", 28.9)]
    assert events[0].severity == "alert" and events[0].threshold == 30
    book2 = FactBook(RuleSet([Rule("gh/temp_c", below=10, severity="warning")]), clock=None)
    assert [e.kind for e in feed(book2, [12, 9, 8])] == ["below"]
    assert book2.facts().active[0].kind == "below"
    assert "Active: gh/temp_c is below the 10 °C limit." in book2.facts().text()


def test_target_deviation_is_computed_not_left_to_the_model():
    book = FactBook(
        RuleSet.from_dict({"channels": {"gh/temp_c": {"target": 24.0, "label": "greenhouse 2"}}}), clock=None
    )
    feed(book, [27.9, 28.0])
    assert "greenhouse 2 is 28 °C" in book.facts().text() and "4 °C above the 24 °C target" in book.facts().text()


def test_robust_anomaly_and_its_reset():
    book = FactBook(RuleSet(anomaly_z=4.0), clock=None)
    normal = [1.20, 1.22, 1.19, 1.21, 1.20, 1.18, 1.22, 1.21, 1.19, 1.20]
    events = feed(book, normal + [2.1, 1.2, 1.21, 2.2])
    assert [(e.kind, e.value) for e in events] == [("anomaly", 2.1), ("anomaly", 2.2)]
    assert robust_z(5, [1, 1, 1, 1, 1, 1, 1, 1]) is None  # no spread: no z-score
    assert robust_z(5, [1, 2]) is None


def test_silence_and_stuck_values():
    now = [1000.0]
    book = FactBook(RuleSet(silent_after_s=30, stuck_after_s=40), clock=lambda: now[0])
    feed(book, [5.0] * 6, t0=1000, step=10)  # the same value for 50 s
    now[0] = 1050
    assert [e.kind for e in book.check()] == ["stuck"]
    now[0] = 1090
    assert [e.kind for e in book.check()] == ["silent"]
    assert book.check() == []  # each condition is reported once
    feed(book, [6.0], t0=1095)
    assert not book.facts().active  # a new value clears both


def test_non_finite_values_never_enter_a_window():
    book = FactBook(clock=None)
    book.add(Reading("gh", {"t": float("nan"), "h": float("inf"), "ok": 1.0}, 1.0))
    assert [c.channel for c in book.facts().channels] == ["gh/ok"]


def test_rules_files(tmp_path):
    toml = tmp_path / "rules.toml"
    toml.write_text('[[rule]]\nchannel = "a/*"\nabove = 3\n[monitor]\nwindow_s = 30\n')
    rules = RuleSet.load(toml)
    assert rules.window_s == 30 and rules.for_channel("a/x")[0].above == 3 and not rules.for_channel("b/x")
    bad = tmp_path / "bad.toml"
    for text, message in [
        ('[[rule]]\nchannel = "a"\n', "needs 'above' or 'below'"),
        ('[[rule]]\nchannel = "a"\nabove = 1\nseverity = "panic"\n', "severity must be one of"),
        ("[nonsense]\n", "unknown rules section"),
        ("[[rule]\n", "not valid TOML"),
        ("[monitor]\nwindw_s = 3\n", "bad rules file"),
    ]:
        bad.write_text(text)
        with pytest.raises(SensorError, match=message):
            RuleSet.load(bad)
    with pytest.raises(SensorError, match="not found"):
        RuleSet.load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "value, text", [(24.0, "24"), (23.456, "23.5"), (0.031, "0.03"), (1013.25, "1013"), (-0.001, "0"), (-4.25, "-4.2")]
)
def test_number_format(value, text):
    assert fmt(value) == text
