"""Sensor sources over real components: pseudo-terminals opened like USB ports, a real
mosquitto broker (stopped and restarted mid-test), real log files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time

import pytest
from sensor_fixtures import (
    FakeArduino,
    Mosquitto,
    Publisher,
    free_port,
    make_tls_files,
    mosquitto_binary,
    nmea,
    wait_until,
)

from edgellm_sdk.errors import EdgeLLMError, MissingDependency, SensorError
from edgellm_sdk.sensors import Reading, open_source
from edgellm_sdk.sensors.sources.parsing import CsvParser, LineFramer, Malformed, NmeaParser
from edgellm_sdk.sensors.sources.queue import BoundedQueue

needs_mosquitto = pytest.mark.skipif(
    mosquitto_binary() is None,
    reason="the mosquitto broker is not installed (apt-get install mosquitto; `make test` does it when root)",
)

GGA = nmea("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
RMC = nmea("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W")
GSV = nmea("GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45")


def take(source, count: int, timeout: float = 3.0) -> list[Reading]:
    readings = []
    deadline = time.monotonic() + timeout
    while len(readings) < count and time.monotonic() < deadline:
        reading = source.get(timeout=0.1)
        if reading is not None:
            readings.append(reading)
    return readings


# ---- line formats ---------------------------------------------------------------------------


def test_csv_header_columns_and_malformed_reasons():
    parser = CsvParser()
    with pytest.raises(Malformed, match="no_header"):
        parser.parse("21.5,40")
    assert parser.parse("temp_c,humidity") is None
    assert parser.parse("21.5, 40").values == {"temp_c": 21.5, "humidity": 40.0}
    assert parser.parse("temp_c,humidity") is None  # the device reset and printed its header again
    assert parser.parse("21.5,").values == {"temp_c": 21.5}  # an empty field leaves the channel out
    for line, reason in [
        ("21.5", "wrong_column_count"),
        ("21.5,40,1", "wrong_column_count"),
        ("nan,40", "not_finite"),
        ("21.5,inf", "not_finite"),
        ("ovf,ovf", "non_numeric"),
        ("DHT,failed", "non_numeric"),
    ]:
        with pytest.raises(Malformed) as bad:
            parser.parse(line)
        assert bad.value.reason == reason, line
    declared = CsvParser(columns=["a", "b"])
    assert declared.parse("x,y") is None and declared.columns == ["a", "b"]  # declared names win


def test_nmea_gga_rmc_checksum_and_other_sentences():
    parser = NmeaParser()
    gga = parser.parse(GGA)
    assert gga.values["lat"] == pytest.approx(48 + 7.038 / 60) and gga.values["lon"] == pytest.approx(11 + 31 / 60)
    assert (gga.values["alt"], gga.values["fix"], gga.values["satellites"], gga.values["hdop"]) == (545.4, 1, 8, 0.9)
    assert gga.unit["alt"] == "m"
    rmc = parser.parse(RMC)
    assert rmc.values["speed"] == pytest.approx(22.4 * 0.514444) and rmc.values["fix"] == 1.0
    south_west = parser.parse(nmea("GNRMC,1,A,3351.000,S,15112.000,W,0.0,0.0,010124,,"))
    assert south_west.values["lat"] < 0 and south_west.values["lon"] < 0
    no_fix = parser.parse(nmea("GPGGA,123519,,,,,0,00,,,M,,M,,"))
    assert no_fix.values == {"fix": 0.0, "satellites": 0.0}
    assert parser.parse(GSV) is None
    for line, reason in [
        (GGA[:-2] + "00", "nmea_checksum"),
        (GGA.split("*")[0], "nmea_checksum"),
        ("GPGGA,1,2", "nmea_format"),
        (nmea("GPGGA,1,48x7,N,01131,E,1,08,0.9,5,M,,M,,"), "nmea_format"),
    ]:
        with pytest.raises(Malformed) as bad:
            parser.parse(line)
        assert bad.value.reason == reason, line


def test_line_framer_buffers_partial_lines_and_drops_overlong_ones():
    framer = LineFramer(max_line=16)
    assert framer.feed(b"t=1\nt=") == ([b"t=1"], 0)
    assert framer.feed(b"2") == ([], 0)
    assert framer.feed(b"\r\nx") == ([b"t=2\r"], 0)
    assert framer.feed(b"y" * 20) == ([], 1)  # over-long: thrown away once, up to its newline
    assert framer.feed(b"yyy\nt=3\n") == ([b"t=3"], 0)
    assert framer.feed(b"partial") == ([], 0) and framer.reset() == b"partial"


@pytest.mark.parametrize("drop, kept", [("oldest", [7, 8, 9]), ("newest", [0, 1, 2])])
def test_bounded_queue_drop_policy_is_counted(drop, kept):
    queue = BoundedQueue(3, drop)
    for item in range(10):
        queue.put(item)
    assert queue.dropped == 7
    assert [queue.get(timeout=0) for _ in range(3)] == kept
    assert queue.get(timeout=0.01) is None


def test_bounded_queue_block_waits_for_room_and_close_wakes_everyone():
    queue = BoundedQueue(1, "block")
    queue.put(1)
    producer = threading.Thread(target=queue.put, args=(2,))
    producer.start()
    time.sleep(0.05)
    assert producer.is_alive() and queue.get(timeout=1) == 1
    producer.join(1)
    assert queue.get(timeout=1) == 2 and queue.dropped == 0
    waiter = threading.Thread(target=queue.get)
    waiter.start()
    queue.close()
    waiter.join(1)
    assert not waiter.is_alive()


# ---- serial over a pseudo-terminal ----------------------------------------------------------


@pytest.fixture
def arduino(tmp_path):
    device = FakeArduino(tmp_path / "ttyUSB0")
    yield device
    if device.master is not None:
        device.close()


def test_serial_csv_with_header_and_partial_writes(arduino):
    with open_source(f"serial://{arduino.path}?baud=115200&format=csv&name=greenhouse") as source:
        assert source.name == "greenhouse" and source.connected
        arduino.write("temp_c,humidity\r\n21.5,4")
        time.sleep(0.05)  # the rest of the line arrives later, as over a slow UART
        arduino.write("0\r\n22.0,41\r\n")
        first, second = take(source, 2)
        assert first.source == "greenhouse" and first.values == {"temp_c": 21.5, "humidity": 40.0}
        assert second.values == {"temp_c": 22.0, "humidity": 41.0}
        assert abs(first.timestamp - time.time()) < 5
        stats = source.stats
        assert (stats.lines, stats.readings, stats.skipped, stats.malformed) == (3, 2, 1, {})


@pytest.mark.parametrize(
    "fmt, good, bad",
    [
        ("csv&columns=t,h", ["21.5,40"], {"1,2,3": "wrong_column_count", "nan,1": "not_finite", "x,1": "non_numeric"}),
        (
            "json",
            ['{"t": 21.5, "h": 40, "id": "dht22"}'],
            {'{"t": "hot"}': "non_numeric", "[1, 2]": "not_object", '{"t": NaN}': "not_finite", '{"t": 1': "bad_json"},
        ),
        ("kv", ["t=21.5 h=40"], {"t=21.5 h": "bad_kv", "t=abc": "non_numeric", "t=inf": "not_finite"}),
    ],
)
def test_serial_formats_count_malformed_lines_and_keep_reading(arduino, fmt, good, bad):
    with open_source(f"serial://{arduino.path}?format={fmt}") as source:
        arduino.write(b"\x00\xff\xfe garbage\r\n")  # line noise before the sketch starts
        arduino.write_lines([*bad, *good])
        [reading] = take(source, 1)
        assert reading.values["t"] == 21.5 and reading.values["h"] == 40.0 and reading.source == "ttyUSB0"
        expected = {"not_utf8": 1}
        for reason in bad.values():
            expected[reason] = expected.get(reason, 0) + 1
        assert wait_until(lambda: source.stats.malformed == expected, 2), source.stats
        assert source.stats.lines == len(bad) + len(good) + 1


def test_serial_nmea_gps(arduino):
    with open_source(f"serial://{arduino.path}?baud=9600&format=nmea&name=gps") as source:
        arduino.write_lines([GSV, GGA, GGA[:-1] + "0", RMC])
        gga, rmc = take(source, 2)
        assert gga.values["satellites"] == 8 and gga.unit["lat"] == "deg"
        assert rmc.values["speed"] == pytest.approx(11.52, abs=0.01) and rmc.unit["speed"] == "m/s"
        assert source.stats.skipped == 1 and source.stats.malformed == {"nmea_checksum": 1}


def test_serial_reconnects_when_the_device_is_unplugged_and_comes_back(arduino):
    url = f"serial://{arduino.path}?format=csv&columns=t,h&reconnect_max=0.2"
    with open_source(url) as source:
        arduino.write_lines(["1,10", "2,20"])
        assert [r.values["t"] for r in take(source, 2)] == [1, 2]
        arduino.write("3,3")  # cut mid-line by the unplug
        time.sleep(0.1)
        arduino.unplug()
        assert wait_until(lambda: not source.connected, 3)
        time.sleep(0.5)  # the source retries against a missing path meanwhile, with backoff
        assert source.stats.reconnects == 0
        arduino.plug()
        assert wait_until(lambda: source.connected, 3)
        arduino.write_lines(["4,40", "5,50"])
        assert [r.values for r in take(source, 2)] == [{"t": 4, "h": 40}, {"t": 5, "h": 50}]
        arduino.unplug()  # and once more
        assert wait_until(lambda: not source.connected, 3)
        arduino.plug()
        assert wait_until(lambda: source.connected, 3)
        arduino.write_lines(["6,60"])
        assert take(source, 1)[0].values == {"t": 6, "h": 60}
        stats = source.stats
        assert stats.reconnects == 2 and stats.malformed == {"partial_line": 1} and stats.readings == 5


def test_missing_serial_device_fails_at_once_with_the_fix(tmp_path):
    with pytest.raises(SensorError, match="cannot open serial port .*plugged in"):
        open_source(f"serial://{tmp_path}/ttyACM9?format=csv")


def test_loop_url_queue_drop_policies_are_counted():
    for drop, first_kept in [("oldest", 15), ("newest", 0)]:
        with open_source("loop://?format=kv", queue=5, drop=drop) as source:
            source.write("".join(f"v={i}\n" for i in range(20)).encode())
            assert wait_until(lambda: source.stats.readings == 20, 3), source.stats
            assert [r.values["v"] for r in take(source, 5)] == list(range(first_kept, first_kept + 5))
            assert source.get(timeout=0.05) is None
            assert source.stats.dropped == 15


def test_close_is_idempotent_and_ends_iteration():
    source = open_source("loop://?format=kv")
    source.write(b"a=1\n")
    threading.Timer(0.3, source.close).start()
    started = time.monotonic()
    assert [r.values for r in source] == [{"a": 1.0}]
    assert time.monotonic() - started < 2 and source.closed
    source.close()
    assert source.get(timeout=0.01) is None
    assert not source._thread.is_alive()


# ---- MQTT with a real broker ----------------------------------------------------------------


@pytest.fixture
def broker(tmp_path):
    server = Mosquitto(tmp_path).start()
    yield server
    server.stop()


@needs_mosquitto
def test_mqtt_json_and_plain_payloads_topic_names_and_malformed(broker):
    publisher = Publisher(broker.port)
    try:
        with open_source(f"mqtt://127.0.0.1:{broker.port}/farm/#?qos=1&name_from=parent") as source:
            publisher.publish("farm/greenhouse2/temp", "21.5")
            publisher.publish("farm/greenhouse2", json.dumps({"temp_c": 24.1, "rh": 61, "id": "gh2"}))
            for payload in [b"\xff\xfe", "hot", '{"state": "on"}', "nan", "", "[1]"]:
                publisher.publish("farm/noise", payload)
            plain, obj = take(source, 2)
            assert (plain.source, plain.values) == ("farm/greenhouse2", {"temp": 21.5})
            assert (obj.source, obj.values) == ("farm", {"temp_c": 24.1, "rh": 61.0})
            expected = {"not_utf8": 1, "non_numeric": 2, "not_finite": 1, "empty": 1, "not_object": 1}
            assert wait_until(lambda: source.stats.malformed == expected, 3), source.stats
            assert source.stats.lines == 8 and source.stats.readings == 2
        with open_source(f"mqtt://127.0.0.1:{broker.port}/farm/+/temp", name_from="last") as by_last:
            publisher.publish("farm/gh3/temp", "19")
            assert take(by_last, 1)[0].source == "temp"
    finally:
        publisher.close()


@needs_mosquitto
def test_mqtt_resumes_after_the_broker_restarts(broker):
    publisher = Publisher(broker.port)
    try:
        with open_source(f"mqtt://127.0.0.1:{broker.port}/sensors/#?reconnect_max=0.5") as source:
            publisher.publish("sensors/a", "1")
            assert take(source, 1)[0].values == {"a": 1.0}
            broker.stop()
            assert wait_until(lambda: not source.connected, 5)
            time.sleep(0.3)
            broker.start()
            assert wait_until(lambda: source.connected, 10), "the source did not resubscribe"
            assert wait_until(publisher.client.is_connected, 10)
            publisher.publish("sensors/a", "2")
            assert take(source, 1, timeout=5)[0].values == {"a": 2.0}
            assert source.stats.reconnects == 1
    finally:
        publisher.close()


@needs_mosquitto
def test_mqtt_username_password_from_the_url(tmp_path):
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "robot", "s3cret"], check=True, capture_output=True, timeout=10
    )
    server = Mosquitto(tmp_path, anonymous=False, listener_config=f"password_file {passwords}").start()
    publisher = Publisher(server.port, username="robot", password="s3cret")
    try:
        with open_source(f"mqtt://robot:s3cret@127.0.0.1:{server.port}/t") as source:
            publisher.publish("t", "7")
            assert take(source, 1)[0].values == {"t": 7.0}
        with pytest.raises(SensorError, match="(?i)not authori[sz]ed"):
            open_source(f"mqtt://robot:wrong@127.0.0.1:{server.port}/t", connect_timeout=3)
    finally:
        publisher.close()
        server.stop()


@needs_mosquitto
def test_mqtt_over_tls(tmp_path):
    files = make_tls_files(tmp_path)
    if files is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    server = Mosquitto(
        tmp_path, listener_config=f"cafile {files['ca']}\ncertfile {files['cert']}\nkeyfile {files['key']}"
    ).start()
    publisher = Publisher(server.port, ca=str(files["ca"]))
    try:
        with open_source(f"mqtts://127.0.0.1:{server.port}/secure/#?ca={files['ca']}") as source:
            publisher.publish("secure/temp", "20.5")
            assert take(source, 1)[0].values == {"temp": 20.5}
        with pytest.raises(SensorError, match="cannot subscribe.*tls=1/ca= for a TLS listener"):  # plain MQTT
            open_source(f"mqtt://127.0.0.1:{server.port}/secure/#", connect_timeout=1)
    finally:
        publisher.close()
        server.stop()


@needs_mosquitto
def test_mqtt_unreachable_broker_fails_with_the_fix():
    started = time.monotonic()
    with pytest.raises(SensorError, match="is the broker|broker runs"):
        open_source(f"mqtt://127.0.0.1:{free_port()}/x", connect_timeout=0.5)
    assert time.monotonic() - started < 3


# ---- file replay ----------------------------------------------------------------------------

T0 = 1_700_000_000.0


@pytest.fixture
def csv_log(tmp_path):
    path = tmp_path / "greenhouse.csv"
    rows = [f"{T0 + i * 0.05:.2f},{20 + i / 10:.1f},{50 + i}" for i in range(21)]  # 1.0 s recorded
    path.write_text("timestamp,temp_c,rh\n" + "\n".join(rows[:10] + ["oops,1,2", ",1,2"] + rows[10:]) + "\n")
    return path


def test_file_replay_as_fast_as_possible_keeps_recorded_timestamps(csv_log):
    started = time.monotonic()
    with open_source(f"file://{csv_log}?rate=0", queue=4) as source:  # drop=block: nothing lost
        readings = list(source)
    assert time.monotonic() - started < 0.5
    assert len(readings) == 21 and readings[0].source == "greenhouse"
    assert [r.timestamp for r in readings[:2]] == [T0, T0 + 0.05]
    assert readings[-1].values == {"temp_c": 22.0, "rh": 70.0}
    stats = source.stats
    assert stats.malformed == {"bad_timestamp": 1, "no_timestamp": 1} and stats.dropped == 0 and stats.skipped == 1


def test_file_replay_accelerated(csv_log):
    started = time.monotonic()
    with open_source(f"file://{csv_log}", rate=5) as source:
        assert len(list(source)) == 21
    assert 0.15 < time.monotonic() - started < 0.8  # 1.0 s recorded at 5x = 0.2 s


def test_file_replay_json_lines_with_iso_timestamps(tmp_path):
    path = tmp_path / "robot.jsonl"
    path.write_text(
        '{"timestamp": "2024-05-01T12:00:00Z", "battery_v": 12.4}\n{"battery_v": 12.3}\n'
        '{"timestamp": 1714564801, "battery_v": 12.2}\n'
    )
    with open_source(f"file://{path}?rate=0") as source:
        readings = list(source)
    assert [(r.timestamp, r.values["battery_v"]) for r in readings] == [(1714564800.0, 12.4), (1714564801.0, 12.2)]
    assert source.stats.malformed == {"no_timestamp": 1}


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, options, message",
    [
        ("http://example.com/x", {}, "unknown sensor URL scheme 'http'.*serial:///dev/ttyUSB0"),
        ("/dev/ttyUSB0", {}, "not a sensor URL"),
        ("serial:///dev/ttyUSB0", {}, "needs the option format=.*csv\\|json\\|kv\\|nmea"),
        ("serial:///dev/ttyUSB0?format=xml", {}, "format='xml'.*one of csv\\|json\\|kv\\|nmea"),
        ("serial:///dev/ttyUSB0?format=csv&baud=fast", {}, "baud='fast'.*an integer, e.g. baud=115200"),
        ("serial:///dev/ttyUSB0?format=csv&bud=9600", {}, "unknown option bud.*baud"),
        ("serial://dev/ttyUSB0?format=csv", {}, "three slashes, e.g. serial:///dev/ttyUSB0"),
        ("serial:///dev/ttyUSB0?format=json&columns=a,b", {}, "columns= applies to format=csv"),
        ("loop://?format=csv", {"queue": 0}, "queue=0.*>= ?1|queue=0.*\\[1,"),
        ("loop://?format=csv", {"drop": "random"}, "drop='random'.*oldest\\|newest\\|block"),
        ("mqtt://localhost:1883", {}, "needs a host and a topic"),
        ("mqtt://localhost:1883/t/#?qos=3", {}, "qos='3'.*\\[0, 2\\]"),
        ("mqtt://localhost:1883/t/#?name_from=first", {}, "name_from='first'.*topic\\|last\\|parent"),
        ("mqtt://localhost:1883/t/#?ca=/nonexistent/ca.pem", {}, "not a file"),
        ("file://nonexistent/log.csv", {}, "no log file.*three slashes"),
    ],
)
def test_bad_urls_raise_sensor_error_saying_the_fix(url, options, message):
    with pytest.raises(SensorError, match=message) as error:
        open_source(url, **options)
    assert isinstance(error.value, EdgeLLMError)


def test_file_rate_and_format_errors(csv_log, tmp_path):
    with pytest.raises(SensorError, match="rate='-1'.*>= 0"):
        open_source(f"file://{csv_log}?rate=-1")
    with pytest.raises(SensorError, match="format='nmea'.*csv\\|json\\|kv"):
        open_source(f"file://{csv_log}?format=nmea")
    unknown = tmp_path / "log.txt"
    unknown.write_text("timestamp=1 a=2\n")
    with pytest.raises(SensorError, match="needs the option format="):
        open_source(f"file://{unknown}")
    with open_source(f"file://{unknown}?format=kv&rate=0") as source:
        assert math.isclose(next(iter(source)).values["a"], 2.0)


@pytest.mark.parametrize(
    "module, url, extra",
    [("serial", "loop://?format=kv", "serial"), ("paho.mqtt.client", "mqtt://localhost/t", "mqtt")],
)
def test_missing_optional_dependency_names_the_extra(monkeypatch, module, url, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependency, match=f"pip install 'edgellm-sdk\\[{extra}\\]'"):
        open_source(url)


def test_importing_sensors_stays_light():
    code = (
        "import sys, edgellm_sdk, edgellm_sdk.sensors as s; s.open_source, s.Source, s.SourceStats; "
        "print([m for m in ('serial', 'paho', 'numpy', 'onnxruntime') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
