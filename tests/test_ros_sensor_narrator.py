"""sensor_narrator_node as a real process on a private DDS domain, fed real sensor_msgs with
sensor-data QoS; plus in-process checks of the message -> channel conversions."""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import time
from contextlib import contextmanager

import pytest
import ros_rig
from ros_rig import NodeProcess, RosClient, next_domain, wait_for

SKIP = ros_rig.skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
NODE = "sensor_narrator_node"
CONFIG = ros_rig.ROS_SOURCES / "config" / "sensor_narrator.yaml"


@pytest.fixture(scope="module")
def msgs():
    """sensor_msgs.msg and the node package's sensor_topics module, loaded from the sources (an
    installed edgellm_ros may be older)."""
    from sensor_msgs import msg

    path = ros_rig.ROS_SOURCES / "edgellm_ros" / "sensor_topics.py"
    spec = importlib.util.spec_from_file_location("edgellm_ros_sensor_topics_under_test", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return msg, module


def temperature(value):
    from sensor_msgs.msg import Temperature

    return Temperature(temperature=value)


@contextmanager
def feeding(client, topics_and_messages, period=0.1):
    """Publish each (topic, message) every ``period`` s from a thread (discovery takes a moment,
    and the node must take every message as a fresh reading). Yields the list to swap messages in."""
    from rclpy.qos import qos_profile_sensor_data

    feed = list(topics_and_messages)
    pubs = {topic: client.node.create_publisher(type(m), topic, qos_profile_sensor_data) for topic, m in feed}
    stop = threading.Event()

    def run():
        while not stop.is_set():
            for topic, message in list(feed):
                pubs[topic].publish(message)
            stop.wait(period)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield feed
    finally:
        stop.set()
        thread.join(2)


def texts(received) -> list[str]:
    return [m.data for m in list(received)]


def node_diagnostics(received) -> dict[str, str] | None:
    for array in reversed(list(received)):
        for status in array.status:
            if status.name.endswith(f"/{NODE}"):
                return {kv.key: kv.value for kv in status.values}
    return None


# ---- the node, end to end ---------------------------------------------------------------------------

GREENHOUSE = [
    "/greenhouse/temp:Temperature:greenhouse",
    "/greenhouse/rh:RelativeHumidity:greenhouse",
    "/robot/battery:BatteryState:robot",
    "/probe/temp:Temperature:probe",
]


def test_status_states_the_published_values_and_never_nan(tmp_path, msgs):
    msg, _ = msgs
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import String

    domain = next_domain()
    battery = msg.BatteryState(percentage=math.nan, voltage=12.6, current=math.nan, temperature=math.nan, present=True)
    with (
        NodeProcess(NODE, domain, tmp_path, params={"topics": GREENHOUSE, "use_model": False, "every_s": 1.0}) as node,
        RosClient(domain) as client,
    ):
        statuses = client.collect(String, f"/{NODE}/status")
        diagnostics = client.collect(DiagnosticArray, "/diagnostics")
        with feeding(
            client,
            [
                ("/greenhouse/temp", temperature(31.2)),
                ("/greenhouse/rh", msg.RelativeHumidity(relative_humidity=0.645)),
                ("/robot/battery", battery),
                ("/probe/temp", temperature(math.nan)),
            ],
        ):
            status = wait_for(
                lambda: next((t for t in texts(statuses) if "12.6" in t and "31.2" in t), None),
                15,
                "a status with the temperature and the battery voltage",
                node,
            )
            diag = wait_for(
                lambda: (d := node_diagnostics(diagnostics)) and int(d.get("skipped_not_finite", 0)) >= 4 and d,
                10,
                "diagnostics counting the NaN values",
                node,
            )
        assert "31.2 °C" in status and "64.5 %" in status and "12.6 V" in status  # humidity 0..1 shown as %
        for text in texts(statuses):  # NaN readings are never narrated, not even as channels
            assert "nan" not in text.lower() and "inf" not in text.lower(), text
            assert "probe/" not in text and "robot/battery " not in text and "robot/current" not in text, text
        assert diag["state"] == "narrating (templates only)" and int(diag["readings"]) > 0
        assert node.stop() == 0  # SIGINT: clean shutdown


def test_alert_arrives_quickly_when_a_rule_threshold_is_crossed(tmp_path):
    from std_msgs.msg import String

    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nchannel = "greenhouse/temperature"\nabove = 30.0\nhysteresis = 0.5\nseverity = "alert"\n'
    )
    domain = next_domain()
    params = {
        "topics": ["/greenhouse/temp:Temperature:greenhouse"],
        "rules_file": str(rules),
        "use_model": False,
        "every_s": 1.0,
    }
    with NodeProcess(NODE, domain, tmp_path, params=params) as node, RosClient(domain) as client:
        statuses = client.collect(String, f"/{NODE}/status")
        alerts = client.collect(String, f"/{NODE}/alerts")
        with feeding(client, [("/greenhouse/temp", temperature(25.0))]) as feed:
            wait_for(lambda: any("25 °C" in t for t in texts(statuses)), 15, "a status at 25 °C", node)
            assert alerts == []  # below the limit: no alert
            feed[0] = ("/greenhouse/temp", temperature(31.2))
            t0 = time.monotonic()
            alert = wait_for(lambda: texts(alerts), 5, "an alert", node)[0]
            latency = time.monotonic() - t0
    assert "above the 30 °C limit" in alert and "31.2" in alert
    assert latency < 1.5, f"alert took {latency:.2f} s"


@pytest.mark.parametrize(
    "topics, named",
    [
        (["/greenhouse/temp:Temperature", "/a:Temprature"], ["'/a:Temprature'", "unsupported message type"]),
        (["/bad topic:Temperature"], ["'/bad topic:Temperature'", "bad topic name"]),
        (["/a:Temperature:x", "/b:Temperature:x"], ["'/b:Temperature:x'", "already has a Temperature topic"]),
        (["/greenhouse/temp"], ["'/greenhouse/temp'", "topic:Type[:name]"]),
    ],
)
def test_a_bad_topics_entry_exits_2_naming_it(tmp_path, topics, named):
    node = NodeProcess(NODE, next_domain(), tmp_path, params={"topics": topics, "use_model": False}).start()
    node.proc.wait(15)
    assert node.stop() == 2, node.log()
    for text in named:
        assert text in node.log()


def test_the_example_config_is_accepted(tmp_path):
    import yaml
    from std_msgs.msg import String

    config = yaml.safe_load(CONFIG.read_text())[NODE]["ros__parameters"]
    topic = next(t for t in config["topics"] if ":Temperature" in t).split(":")[0]
    domain = next_domain()
    # the file's own values, but template narration and a short period to keep the test fast
    with (
        NodeProcess(NODE, domain, tmp_path, params_file=CONFIG, params={"use_model": False, "every_s": 1.0}) as node,
        RosClient(domain) as client,
    ):
        statuses = client.collect(String, f"/{NODE}/status")
        with feeding(client, [(topic, temperature(18.4))]):
            wait_for(lambda: any("18.4 °C" in t for t in texts(statuses)), 15, "a status", node)
        assert "narrating" in node.log() and node.stop() == 0


def test_sigint_stops_the_node_even_when_started_with_sigint_ignored(tmp_path):
    """A shell's background job (``cmd &`` without job control) starts with SIGINT ignored;
    launch still stops nodes with SIGINT."""
    from std_msgs.msg import String

    domain = next_domain()
    params = {"topics": GREENHOUSE, "use_model": False, "every_s": 1.0}
    with NodeProcess(NODE, domain, tmp_path, params=params, sigint_ignored=True) as node, RosClient(domain) as client:
        statuses = client.collect(String, f"/{NODE}/status")
        with feeding(client, [("/greenhouse/temp", temperature(21.5))]):
            wait_for(lambda: any("21.5 °C" in t for t in texts(statuses)), 15, "a status", node)
        assert node.stop() == 0


@pytest.mark.model
def test_the_default_model_narrates_the_published_temperature(tmp_path):
    from std_msgs.msg import String

    domain = next_domain()
    params = {
        "topics": ["/greenhouse/temp:Temperature:greenhouse"],
        "use_model": True,
        "every_s": 1.0,
        "context": "A greenhouse.",
    }
    with NodeProcess(NODE, domain, tmp_path, params=params) as node, RosClient(domain) as client:
        statuses = client.collect(String, f"/{NODE}/status")
        with feeding(client, [("/greenhouse/temp", temperature(31.2))]):
            status = wait_for(
                lambda: next((t for t in texts(statuses) if "31.2" in t), None), 30, "a narrated status with 31.2", node
            )
            t0 = time.monotonic()
            assert node.stop() == 0  # SIGINT while narrating: the generation is cancelled
            assert time.monotonic() - t0 < 5
        log = node.log()
    assert "model smollm2-135m loaded" in log
    assert "status (model" in log or "status (cache" in log, log  # narrated by the model, not the template
    assert "°C" in status or "degrees" in status.lower()


# ---- conversions, in process -------------------------------------------------------------------


def test_temperature_humidity_pressure_illuminance(msgs):
    msg, st = msgs
    assert st.convert(msg.Temperature(temperature=21.5)).values == {"temperature": 21.5}
    rh = st.convert(msg.RelativeHumidity(relative_humidity=0.42))
    assert rh.values == {"humidity": pytest.approx(42.0)} and rh.unit == {"humidity": "%"}
    pressure = st.convert(msg.FluidPressure(fluid_pressure=101325.0))
    assert pressure.values == {"pressure": pytest.approx(1013.25)} and pressure.unit == {"pressure": "hPa"}
    assert st.convert(msg.Illuminance(illuminance=350.0)).unit == {"illuminance": "lx"}
    bad = st.convert(msg.Temperature(temperature=math.inf))
    assert bad.values == {} and bad.skipped == {"temperature": "not_finite"}


def test_battery_state(msgs):
    msg, st = msgs
    b = msg.BatteryState
    full = st.convert(
        b(
            percentage=0.87,
            voltage=12.4,
            current=-1.5,
            temperature=math.nan,
            present=True,
            power_supply_status=b.POWER_SUPPLY_STATUS_DISCHARGING,
        )
    )
    assert full.values == {
        "battery": pytest.approx(87.0),
        "voltage": pytest.approx(12.4),
        "current": pytest.approx(-1.5),
        "charging": 0.0,
    }
    assert full.unit == {"battery": "%", "voltage": "V", "current": "A"}
    assert full.skipped == {"battery_temp": "not_finite"}
    charging = st.convert(b(percentage=math.nan, voltage=12.0, power_supply_status=b.POWER_SUPPLY_STATUS_CHARGING))
    assert charging.values["charging"] == 1.0 and "battery" not in charging.values  # present unset, voltage measured
    unknown = st.convert(b(percentage=0.5, voltage=12.0, present=True))
    assert unknown.skipped == {"charging": "unknown"}
    absent = st.convert(b(percentage=0.5, voltage=math.nan, present=False))
    assert absent.values == {} and set(absent.skipped.values()) == {"not_present"}


def test_range_follows_rep_117(msgs):
    msg, st = msgs
    r = msg.Range
    assert st.convert(r(range=1.25, min_range=0.02, max_range=4.0)).values == {"range": 1.25}
    for value, reason in [
        (5.0, "out_of_range"),
        (0.01, "out_of_range"),
        (math.inf, "not_finite"),
        (-math.inf, "not_finite"),
        (math.nan, "not_finite"),
    ]:
        out = st.convert(r(range=value, min_range=0.02, max_range=4.0))
        assert out.values == {} and out.skipped == {"range": reason}, value


def test_imu_angles_speed_and_acceleration(msgs):
    msg, st = msgs
    half = math.radians(30) / 2  # rolled 30° about x
    imu = msg.Imu()
    imu.orientation.x, imu.orientation.w = math.sin(half), math.cos(half)
    imu.angular_velocity.z = math.radians(90)
    imu.linear_acceleration.x, imu.linear_acceleration.z = 3.0, 4.0
    out = st.convert(imu)
    assert out.values == {
        "roll": pytest.approx(30.0),
        "pitch": pytest.approx(0.0, abs=1e-9),
        "tilt": pytest.approx(30.0),
        "angular_speed": pytest.approx(90.0),
        "acceleration": pytest.approx(5.0),
    }
    assert out.unit["tilt"] == "°" and out.unit["acceleration"] == "m/s²"
    pitched = msg.Imu()
    pitched.orientation.y, pitched.orientation.w = math.sin(math.radians(-10) / 2), math.cos(math.radians(-10) / 2)
    assert st.convert(pitched).values["pitch"] == pytest.approx(-10.0)
    no_orientation = msg.Imu()
    no_orientation.orientation_covariance[0] = -1.0
    no_orientation.linear_acceleration.x = math.nan
    out = st.convert(no_orientation)
    assert set(out.values) == {"angular_speed"}
    assert out.skipped == {
        "roll": "unavailable",
        "pitch": "unavailable",
        "tilt": "unavailable",
        "acceleration": "not_finite",
    }
    zero = msg.Imu()
    zero.orientation.w = 0.0
    assert st.convert(zero).skipped["tilt"] == "invalid"  # an all-zero quaternion
    assert st.convert(msg.Imu()).values["tilt"] == 0.0  # the default: identity, level


def test_nav_sat_fix(msgs):
    msg, st = msgs
    fix = msg.NavSatFix(latitude=48.1173, longitude=11.5167, altitude=math.nan)
    fix.status.status = msg.NavSatStatus.STATUS_FIX
    out = st.convert(fix)
    assert out.values == {"fix": 1.0, "lat": 48.1173, "lon": 11.5167} and out.skipped == {"alt": "not_finite"}
    assert out.unit == {"lat": "°", "lon": "°"}
    no_fix = msg.NavSatFix(latitude=0.0, longitude=0.0, altitude=0.0)
    no_fix.status.status = msg.NavSatStatus.STATUS_NO_FIX
    out = st.convert(no_fix)
    assert out.values == {"fix": 0.0} and out.skipped == {"lat": "no_fix", "lon": "no_fix", "alt": "no_fix"}
    assert st.convert(msg.NavSatFix()).values == {}  # status unknown (the default): no position, no fix flag


def test_topics_entries(msgs):
    _, st = msgs
    subs = st.parse_topics(["/greenhouse/temp:Temperature:greenhouse", "imu/data:sensor_msgs/msg/Imu", "~/range:Range"])
    assert [(s.topic, s.type_name, s.name) for s in subs] == [
        ("/greenhouse/temp", "Temperature", "greenhouse"),
        ("imu/data", "Imu", "data"),
        ("~/range", "Range", "range"),
    ]
    for entries, reason in [
        ([], "empty"),
        (["/a:Imu:bad name"], "source name 'bad name'"),
        (["/a:Imu", "/a:Range"], "listed twice"),
        (["/a:Imu:x:y"], "is not 'topic:Type"),
    ]:
        with pytest.raises(ValueError, match=reason):
            st.parse_topics(entries)
    assert st.topics_problem(["/a:Temperature"]) is None and "Temprature" in st.topics_problem(["/a:Temprature"])
