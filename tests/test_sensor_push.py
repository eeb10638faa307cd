"""PushSource: readings put by the caller (a ROS 2 callback) instead of a reader thread."""

from __future__ import annotations

import math
import threading
import time

import pytest

from edgellm_sdk.errors import SensorError
from edgellm_sdk.sensors import FactBook, Narrator, RuleSet, SensorPipeline
from edgellm_sdk.sensors.rules import Rule
from edgellm_sdk.sensors.sources import PushSource


def test_put_queues_readings_with_units_and_timestamps():
    source = PushSource("ros")
    assert source.put("greenhouse", {"temp_c": 24.5, "rh": 61}, unit={"temp_c": "°C", "other": "x"}, timestamp=5.0)
    before = time.time()
    assert source.put("robot", {"battery": 80.0})
    first, second = source.get(0.1), source.get(0.1)
    assert (first.source, first.values, first.unit, first.timestamp) == (
        "greenhouse",
        {"temp_c": 24.5, "rh": 61.0},
        {"temp_c": "°C"},
        5.0,
    )
    assert second.source == "robot" and second.timestamp >= before
    assert source.get(0.05) is None and not source.exhausted
    assert source.stats.lines == 2 and source.stats.readings == 2


def test_non_finite_values_are_dropped_and_counted():
    source = PushSource()
    source.put("s", {"t": 21.0, "h": math.nan, "p": math.inf})  # the finite value survives
    assert not source.put("s", {"t": math.nan})  # nothing left: malformed, not a reading
    assert not source.put("s", {})  # no values at all: skipped
    reading = source.get(0.1)
    assert reading.values == {"t": 21.0}
    assert source.get(0.05) is None
    stats = source.stats
    assert (stats.lines, stats.readings, stats.skipped, stats.malformed) == (3, 1, 1, {"not_finite": 1})


@pytest.mark.parametrize(
    "args, match",
    [
        (("", {"t": 1.0}), "non-empty name"),
        (("s", [("t", 1.0)]), "mapping"),
        (("s", {"t": "warm"}), "s/t = 'warm' is not a number"),
        (("s", {"on": True}), "not a number"),
    ],
)
def test_bad_input_is_a_clear_error(args, match):
    with pytest.raises(SensorError, match=match):
        PushSource().put(*args)


def test_non_finite_timestamp_is_refused():
    with pytest.raises(SensorError, match="timestamp"):
        PushSource().put("s", {"t": 1.0}, timestamp=math.nan)


@pytest.mark.parametrize("drop, kept", [("oldest", [3.0, 4.0]), ("newest", [1.0, 2.0])])
def test_queue_drop_policy(drop, kept):
    source = PushSource(queue_size=2, drop=drop)
    results = [source.put("s", {"v": float(v)}) for v in range(1, 5)]
    assert results == [True, True, False, False]
    assert [source.get(0.1).values["v"] for _ in range(2)] == kept
    assert source.stats.dropped == 2 and source.stats.readings == 4


def test_block_policy_waits_for_the_consumer():
    source = PushSource(queue_size=1, drop="block")
    source.put("s", {"v": 1.0})
    done = threading.Event()
    threading.Thread(target=lambda: (source.put("s", {"v": 2.0}), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # the producer waits for room
    assert source.get(0.1).values == {"v": 1.0}
    assert done.wait(2.0) and source.get(0.5).values == {"v": 2.0}


def test_close_ends_consumers_and_later_puts_raise():
    source = PushSource("ros")
    got = []
    consumer = threading.Thread(target=lambda: got.extend(source), daemon=True)  # iterates until closed
    consumer.start()
    source.put("s", {"v": 1.0})
    deadline = time.monotonic() + 2
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    source.close()
    consumer.join(2.0)
    assert not consumer.is_alive() and [r.values for r in got] == [{"v": 1.0}]
    assert source.exhausted and source.get(0.01) is None
    with pytest.raises(SensorError, match="closed"):
        source.put("s", {"v": 2.0})
    source.close()  # idempotent


def test_concurrent_producers_lose_nothing():
    source = PushSource(queue_size=10_000)

    def produce(name):
        for i in range(500):
            source.put(name, {"v": float(i)})

    threads = [threading.Thread(target=produce, args=(f"p{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    readings = [source.get(0.1) for _ in range(2000)]
    assert source.stats.readings == 2000 and source.stats.lines == 2000 and source.stats.dropped == 0
    for name in ("p0", "p1", "p2", "p3"):  # each producer's readings stay in order
        assert [r.values["v"] for r in readings if r.source == name] == [float(i) for i in range(500)]


def test_pipeline_over_a_push_source_alerts_at_once_and_stops_on_close():
    source = PushSource("ros")
    facts = FactBook(RuleSet([Rule("greenhouse/temp_c", above=30.0)], silent_after_s=None))
    alerts, statuses = [], []
    pipeline = SensorPipeline(
        source, Narrator(None), facts, every_s=60, on_status=statuses.append, on_alert=alerts.append, poll_s=0.05
    )
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    source.put("greenhouse", {"temp_c": 25.0}, unit={"temp_c": "°C"})
    t0 = time.monotonic()
    source.put("greenhouse", {"temp_c": 31.2}, unit={"temp_c": "°C"})
    while not alerts and time.monotonic() - t0 < 2:
        time.sleep(0.01)
    assert alerts and time.monotonic() - t0 < 1.0
    assert "above the 30 °C limit" in alerts[0].text and "31.2" in alerts[0].text
    source.close()
    runner.join(2.0)
    assert not runner.is_alive() and pipeline.stats.readings == 2
