"""sensor_narrator_node: standard sensor topics -> the SDK's SensorPipeline -> plain-language status.

Subscribes (sensor-data QoS) to the sensor_msgs topics listed in `topics` ("topic:Type[:name]",
see sensor_topics.py), feeds every message into a PushSource, and runs SensorPipeline (facts,
rules, Narrator with the model or templates) in a worker thread, so the executor never waits
for the model. Publishes std_msgs/String on ~/status every `every_s` and on ~/alerts as soon as
a rule fires; diagnostics on /diagnostics. A bad parameter at start exits with code 2.

    python -m edgellm_ros.sensor_narrator_node --ros-args --params-file config/sensor_narrator.yaml
"""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter
from contextlib import ExitStack

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from edgellm_sdk.errors import SensorError
from edgellm_sdk.models.store import DEFAULT_MODEL
from edgellm_sdk.sensors import FactBook, Narrator, RuleSet, SensorPipeline
from edgellm_sdk.sensors.sources import PushSource

from .diagnostics import ERROR, OK, WARN, diagnostic_array
from .params import BadParameter, Param, declare
from .sensor_topics import TOPIC_FORMAT, Subscription, convert, parse_topics, topics_problem

NODE_NAME = "sensor_narrator_node"


def _rules_problem(path: object) -> str | None:
    if not path:
        return None
    try:
        RuleSet.load(str(path))
    except SensorError as exc:
        return f"rules_file: {exc}"
    return None


PARAMS = (
    Param(
        "topics",
        ["temperature:Temperature"],
        f"sensor topics to narrate, each {TOPIC_FORMAT}",
        read_only=True,
        check=topics_problem,
    ),
    Param(
        "rules_file",
        "",
        "TOML/YAML rules (thresholds, targets, labels; see edgellm_sdk.sensors.rules); '' = none",
        read_only=True,
        check=_rules_problem,
    ),
    Param("every_s", 60.0, "seconds between status narrations on ~/status", minimum=0.1, maximum=86400.0),
    Param("use_model", True, "narrate with the LLM; false = template sentences only (no model load)", read_only=True),
    Param("model", DEFAULT_MODEL, "installed model name or model directory (edgellm pull NAME)", read_only=True),
    Param("variant", "", "model variant (e.g. q4, int8, fp32); '' = the model's default", read_only=True),
    Param("threads", 0, "inference threads; 0 = the runtime's choice", minimum=0, maximum=256, read_only=True),
    Param("language", "en", "narration language", choices=("en", "zh"), read_only=True),
    Param(
        "context",
        "",
        "one sentence about the place, given to the model, e.g. 'A greenhouse with a vent motor.'",
        read_only=True,
    ),
    Param("max_tokens", 64, "token budget of one narration", minimum=8, maximum=512),
    Param(
        "deadline_s", 10.0, "a narration taking longer falls back to the template sentence", minimum=0.1, maximum=600.0
    ),
    Param(
        "queue_size",
        256,
        "readings buffered for the narrator; the oldest are dropped when full",
        minimum=1,
        maximum=1_000_000,
        read_only=True,
    ),
    Param(
        "diagnostics_period_s",
        1.0,
        "seconds between /diagnostics messages; 0 = none",
        minimum=0.0,
        maximum=3600.0,
        read_only=True,
    ),
)


class SensorNarratorNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.config = declare(self, PARAMS)  # BadParameter on a bad start-up value
        self.topics = parse_topics(self.config["topics"])
        self.rules = RuleSet.load(self.config["rules_file"]) if self.config["rules_file"] else RuleSet()
        self.source = PushSource(self.get_name(), queue_size=self.config["queue_size"])
        self.messages = Counter()  # topic -> messages received
        self.skipped = Counter()  # reason -> values not fed (NaN, out of range, no fix...)
        self.pipeline: SensorPipeline | None = None
        self.narrator: Narrator | None = None
        self.state = "loading model" if self.config["use_model"] else "starting"
        self.error: BaseException | None = None
        self.cancel, self.finished = threading.Event(), threading.Event()
        self.add_post_set_parameters_callback(self._on_params_set)

        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.alert_pub = self.create_publisher(String, "~/alerts", 10)
        for sub in self.topics:
            self.create_subscription(
                sub.message_type, sub.topic, lambda m, s=sub: self._on_message(s, m), qos_profile_sensor_data
            )
        period = self.config["diagnostics_period_s"]
        if period > 0:
            self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.create_timer(period, self._publish_diagnostics)
        self.worker = threading.Thread(target=self._work, name="narrator", daemon=True)
        self.worker.start()
        self.get_logger().info(
            "narrating " + ", ".join(f"{s.topic} ({s.type_name} as {s.name!r})" for s in self.topics)
        )

    # ---- executor side: never waits for the model --------------------------------------------

    def _on_message(self, sub: Subscription, message) -> None:
        self.messages[sub.topic] += 1
        channels = convert(message)
        self.skipped.update(channels.skipped.values())
        if not self.source.closed:
            self.source.put(sub.name, channels.values, unit=channels.unit)

    def _on_params_set(self, parameters) -> None:
        for p in parameters:
            if p.name == "every_s" and self.pipeline is not None:
                self.pipeline.every_s = p.value  # from the next status on
            elif p.name in ("max_tokens", "deadline_s") and self.narrator is not None:
                setattr(self.narrator, p.name, p.value)

    def _publish_diagnostics(self) -> None:
        stats, pipe = self.source.stats, self.pipeline.stats if self.pipeline else None
        level = ERROR if self.error else OK if pipe else WARN
        values = {
            "state": self.state,
            "model": self.config["model"] if self.config["use_model"] else "(templates)",
            "messages": sum(self.messages.values()),
            "readings": stats.readings,
            "dropped": stats.dropped,
            **{f"skipped_{reason}": n for reason, n in sorted(self.skipped.items())},
        }
        if pipe is not None:
            values.update(statuses=pipe.statuses, alerts=pipe.alerts, template_fallbacks=pipe.template_fallbacks)
        self.diag_pub.publish(diagnostic_array(self, level, self.state, values))

    # ---- worker thread: the SDK pipeline ----------------------------------------------------

    def _work(self) -> None:
        cfg = self.config
        try:
            with ExitStack() as stack:
                engine = None
                if cfg["use_model"]:
                    from edgellm_sdk import Engine

                    engine = stack.enter_context(
                        Engine.load(cfg["model"], variant=cfg["variant"] or None, threads=cfg["threads"] or None)
                    )
                    self.get_logger().info(f"model {cfg['model']} loaded: {engine.plan}")
                self.narrator = Narrator(
                    engine,
                    context=cfg["context"],
                    language=cfg["language"],
                    max_tokens=cfg["max_tokens"],
                    deadline_s=cfg["deadline_s"],
                )
                self.pipeline = SensorPipeline(
                    self.source,
                    self.narrator,
                    FactBook(self.rules),
                    every_s=cfg["every_s"],
                    on_status=self._sink(self.status_pub, "status"),
                    on_alert=self._sink(self.alert_pub, "alert"),
                )
                self.state = "narrating" if engine is not None else "narrating (templates only)"
                self.pipeline.run(cancel=self.cancel)
        except Exception as exc:  # noqa: BLE001 - model missing, runtime failure: the node cannot do its job
            self.error, self.state = exc, f"failed: {exc}"
            self.get_logger().error(f"narrator stopped: {type(exc).__name__}: {exc}")
        finally:
            self.finished.set()

    def _sink(self, publisher, kind: str):
        def publish(narration) -> None:
            if self.cancel.is_set():
                return  # shutting down: the final summary has nowhere to go
            publisher.publish(String(data=narration.text))
            self.get_logger().info(f"{kind} ({narration.origin}, {narration.latency_s:.2f} s): {narration.text}")

        return publish

    def close(self, timeout: float = 5.0) -> None:
        """Stop the pipeline (a narration in progress is cancelled) and end the source."""
        self.cancel.set()
        self.source.close()
        self.worker.join(timeout)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(args=None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)  # we stop the worker first
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's background job starts with it ignored
        signal.signal(signum, _interrupt)
    node, code = None, 0
    try:
        node = SensorNarratorNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not node.finished.is_set():  # ends on Ctrl-C / SIGTERM, or when the worker failed
            executor.spin_once(timeout_sec=0.2)
        code = 1
    except BadParameter as exc:
        rclpy.logging.get_logger(NODE_NAME).error(f"bad parameter, not starting: {exc}")
        code = 2
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
