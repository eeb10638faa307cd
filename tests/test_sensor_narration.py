"""Narration and Q&A: never a number the facts lack (property test), Q&A checked as narration is
(property test), deadline fallback, caching, the pipeline over a replayed log, and `edgellm sensors`
end to end on the default model."""

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fakes import ScriptedEngine
from hypothesis import given, settings
from hypothesis import strategies as st

from edgellm_sdk.sensors import FactBook, Narrator, Reading, RuleSet, SensorAssistant, SensorPipeline, open_source
from edgellm_sdk.sensors.facts import fmt
from edgellm_sdk.sensors.narrator import narration_data, repetitive, states_a_fact, template, unsupported_numbers

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "examples" / "data" / "greenhouse2.csv"
RULES = ROOT / "examples" / "data" / "greenhouse_rules.toml"
LOG_URL = f"file://{LOG}?rate=0&name=greenhouse2"


@pytest.mark.parametrize(
    "text, data, bad",
    [
        ("It is 24.3 °C.", "temp is 24.3 °C", []),
        ("About 24 °C.", "temp is 24.3 °C", []),  # rounded to fewer decimals: allowed
        ("It is 24.4 °C.", "temp is 24.3 °C", [24.4]),
        ("Four degrees above target.", "4 °C above the target", []),
        ("Five degrees above target.", "4 °C above the target", [5]),
        ("温度二十五度", "temp is 25 °C", []),
        ("温度二十六度", "temp is 25 °C", [26]),
        ("falling 0.3 %/min", "falling 0.31 %/min", []),
        ("31.2 degrees", "temp is 31.2 °C", []),  # same kind of unit
        ("a 1.2% rise", "current is 1.2 A", [1.2]),  # the number exists, but not as a percentage
        ("2 degrees above", "greenhouse 2 temperature is 30 °C", [2]),
    ],
)
def test_unsupported_numbers(text, data, bad):
    assert unsupported_numbers(text, data) == bad


readings = st.lists(
    st.tuples(st.sampled_from(["temp_c", "humidity", "current_a"]), st.floats(-50, 1500, allow_nan=False)),
    min_size=1,
    max_size=40,
)
model_text = st.text(st.sampled_from(list("0123456789.,-% °CabcThe is   度二十五")), max_size=60) | st.sampled_from(
    ["It is 21.5 °C.", "Twenty degrees.", "All fine.", "", "温度二十五度。", "rising 3 °C/min for 10 minutes"]
)


@settings(max_examples=200, deadline=None)
@given(readings, model_text, st.sampled_from(["stop", "deadline", "length"]))
def test_a_narration_never_states_a_number_absent_from_the_facts(values, text, finish):
    book = FactBook(RuleSet.from_dict({"rule": [{"channel": "*/temp_c", "above": 30}]}), clock=None)
    events = []
    for i, (channel, v) in enumerate(values):
        events += book.add(Reading("gh2", {channel: v}, 100.0 + i, {"temp_c": "°C"}))
    engine = ScriptedEngine([text], finish=finish)  # adversarial model output, chosen by hypothesis
    facts = book.facts()
    alerts = tuple(e for e in events if e.severity == "alert")
    n = Narrator(engine).narrate(facts, events=alerts)
    assert unsupported_numbers(n.text, narration_data(facts, alerts)) == []
    assert n.origin == "template" or (finish != "deadline" and n.text)


def model_answers(stated: str) -> dict[str, str]:
    """Model output of each kind the checks judge, stating the fact ``stated`` where it states one."""
    return {
        "loops": f"It is {stated} and it is {stated} and it is {stated} and it is {stated}",
        "states no fact": "Everything in the greenhouse looks fine today.",
        "empty": "",
        "states a fact once": f"The reading is {stated} now.",
    }


@settings(max_examples=100, deadline=None)
@given(readings, st.sampled_from(sorted(model_answers("0"))), st.sampled_from(["stop", "deadline"]))
def test_qa_rejects_a_looping_or_fact_free_answer_as_the_narrator_does(values, kind, finish):
    book = FactBook(clock=None)
    for i, (channel, v) in enumerate(values):
        book.add(Reading("gh2", {channel: v}, 100.0 + i, {"temp_c": "°C"}))
    facts = book.facts()
    engine = ScriptedEngine([model_answers(fmt(facts.channels[-1].last))[kind]], finish=finish)
    narration = Narrator(engine).narrate(facts)
    answer = SensorAssistant(engine, book).ask("How is the greenhouse?")
    assert (answer.origin, answer.text) == (narration.origin, narration.text)  # one verdict for both
    used = kind == "states a fact once" and finish == "stop"
    assert answer.origin == ("model" if used else "template")
    assert answer.text == (model_answers(fmt(facts.channels[-1].last))[kind] if used else template(facts))


def assert_checked(answer, facts, data: str) -> None:
    """A Q&A answer is the model's text only when it passes the Narrator's checks, else the template."""
    if answer.origin == "model":
        assert unsupported_numbers(answer.text, data) == [], answer.text
        assert states_a_fact(answer.text, facts) and not repetitive(answer.text), answer.text
    else:
        assert (answer.origin, answer.text) == ("template", template(facts))


@pytest.fixture(scope="module")
def greenhouse():
    book = FactBook(RuleSet.load(RULES), clock=None)
    with open_source(LOG_URL) as source:
        for reading in source:
            book.add(reading)
    return book


def test_default_model_narrates_with_checked_numbers(engine, greenhouse):
    narrator = Narrator(engine, context="A greenhouse with a vent motor.")
    facts = greenhouse.facts()
    assert "greenhouse 2 temperature is 31.2 °C" in facts.text() and "7.2 °C above the 24 °C target" in facts.text()
    n = narrator.narrate(facts)
    assert n.text and unsupported_numbers(n.text, narration_data(facts)) == []
    again = narrator.narrate(facts)  # same facts digest: served from the narrator's cache
    assert again.origin == "cache" and again.text == n.text
    late = Narrator(engine).narrate(facts, deadline_s=1e-4)
    assert late.origin == "template" and late.finish_reason == "deadline" and "31.2 °C" in late.text
    zh = Narrator(engine, language="zh").narrate(facts, deadline_s=1e-4)
    assert zh.text.startswith("警报") and "当前" in zh.text
    with pytest.raises(ValueError, match="language"):
        Narrator(engine, language="fr")


def test_assistant_answers_from_facts_and_can_read_history(engine, greenhouse):
    assistant = SensorAssistant(engine, greenhouse)
    facts = greenhouse.facts()
    questions = [
        "what is the humidity in greenhouse 2?",
        "is greenhouse 2 too hot?",
        "Is the vent motor working normally?",
    ]
    answers = [assistant.ask(q) for q in questions]
    for answer in answers:
        assert_checked(answer, facts, facts.text())
    assert "model" in {a.origin for a in answers}  # the checks pass the model's text that states the facts
    assert assistant.channel_history("greenhouse2/temp_c", last=3).count(",") == 2
    assert "no channel" in assistant.channel_history("nope/x")
    with pytest.raises(ValueError, match="empty"):
        assistant.ask("  ")


def test_pipeline_replays_a_log_and_alerts(engine):
    statuses, alerts = [], []
    with open_source(LOG_URL) as source:
        stats = SensorPipeline(
            source,
            Narrator(None),
            FactBook(RuleSet.load(RULES), clock=None),
            every_s=3600,
            on_status=statuses.append,
            on_alert=alerts.append,
        ).run(duration_s=30)
    assert stats.readings == 180 and stats.alerts == 1 and stats.statuses == 1
    assert "above the 28 °C limit" in alerts[0].text and "31.2 °C" in statuses[-1].text
    cancel = threading.Event()
    cancel.set()
    with open_source(f"file://{LOG}?rate=1&name=greenhouse2") as slow:  # real time: would take 30 min
        assert SensorPipeline(slow, Narrator(None), every_s=60).run(cancel=cancel).readings == 0


def test_sensors_cli_end_to_end(default_store):
    cmd = [
        sys.executable,
        "-m",
        "edgellm_sdk.cli",
        "sensors",
        "--source",
        LOG_URL,
        "--rules",
        str(RULES),
        "--every",
        "1h",
        "--json",
        "--ask",
        "is greenhouse 2 too hot?",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    kinds = [line.split('"kind": "')[1].split('"')[0] for line in r.stdout.splitlines()]
    assert kinds == ["alert", "status", "answer"] and "180 readings" in r.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "edgellm_sdk.cli", "sensors", "--source", "gopher://x", "--no-model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "gopher" in bad.stderr


def test_mqtt_readings_raise_a_live_alert_through_the_pipeline(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from sensor_fixtures import Mosquitto, Publisher, mosquitto_binary

    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (make test installs it when run as root)")
    broker = Mosquitto(tmp_path).start()
    publisher = Publisher(broker.port)
    alerts, cancel = [], threading.Event()
    try:
        with open_source(f"mqtt://127.0.0.1:{broker.port}/farm/#?name_from=parent") as source:
            book = FactBook(RuleSet.from_dict({"rule": [{"channel": "farm/temp_c", "above": 30}]}))
            pipeline = SensorPipeline(
                source,
                Narrator(None),
                book,
                every_s=3600,
                on_status=lambda n: None,
                on_alert=lambda n: (alerts.append(n), cancel.set()),
            )
            runner = threading.Thread(target=pipeline.run, kwargs={"duration_s": 20, "cancel": cancel})
            runner.start()
            for value in (25, 28, 31.5):
                publisher.publish("farm/gh2", f'{{"temp_c": {value}}}')
            runner.join(25)
        assert not runner.is_alive() and alerts
        assert "farm/temp_c is above the 30 limit" in alerts[0].text and "31.5" in alerts[0].text
    finally:
        publisher.close()
        broker.stop()


def test_assistant_with_the_history_tool_keeps_the_number_check(engine, greenhouse):
    answer = SensorAssistant(engine, greenhouse, tools=True).ask("Show me the last temperature readings.")
    history = SensorAssistant(engine, greenhouse).channel_history("greenhouse2/temp_c", last=50)
    assert_checked(answer, greenhouse.facts(), greenhouse.facts().text() + "\n" + history)
