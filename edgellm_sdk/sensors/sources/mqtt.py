"""MqttSource: readings from MQTT messages (paho-mqtt 2.x, its own network thread).

A payload is a JSON object ({"temp_c": 21.5, "rh": 40}) or one plain number, which becomes a
channel named after the topic's last level ("greenhouse2/temp" + "21.5" -> {"temp": 21.5}).
The source name comes from the topic: the whole topic (name_from=topic), its last level
(last), or all but the last level (parent: "greenhouse2"); name=... fixes it.

paho reconnects by itself (backoff reconnect_min..reconnect_max); the subscription is made
in on_connect, so it is re-made after every reconnect (a clean session forgets it). start()
waits up to connect_timeout for the first subscription, so a wrong host, port, TLS setting
or password fails at once with a SensorError.
"""

from __future__ import annotations

import logging
import threading
import uuid
from types import ModuleType
from typing import Any

from ...errors import MissingDependency, SensorError
from .base import Source
from .parsing import Malformed, ParsedLine, parse_json_object, to_number

log = logging.getLogger("edgellm_sdk.sensors")

NAME_FROM = ("topic", "last", "parent")


def import_paho() -> ModuleType:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise MissingDependency("paho-mqtt", "mqtt") from None
    return mqtt


class MqttSource(Source):
    kind = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        *,
        qos: int = 1,
        name: str | None = None,
        name_from: str = "topic",
        tls: bool = False,
        ca: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        keepalive: int = 30,
        connect_timeout: float = 5.0,
        reconnect_min: float = 0.25,
        reconnect_max: float = 5.0,
        time_column: str | None = None,
        **queue_options: Any,
    ):
        mqtt = import_paho()
        super().__init__(name or topic, **queue_options)
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self._fixed_name, self.name_from, self.time_column = name, name_from, time_column
        self.keepalive, self.connect_timeout = keepalive, connect_timeout
        self._subscribed = threading.Event()
        self._first_answer = threading.Event()  # the broker's first CONNACK refusal or SUBACK
        self._refused: str | None = None  # the broker's reason when it refused us
        self._connects = 0

        self._client = client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"edgellm-{uuid.uuid4().hex[:12]}"
        )
        if username:
            client.username_pw_set(username, password)
        if tls:
            client.tls_set(ca_certs=ca)
        client.reconnect_delay_set(min_delay=reconnect_min, max_delay=max(reconnect_min, reconnect_max))
        client.on_connect, client.on_subscribe = self._on_connect, self._on_subscribe
        client.on_disconnect, client.on_message = self._on_disconnect, self._on_message

    @property
    def connected(self) -> bool:
        """Connected and subscribed."""
        return self._subscribed.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    # ---- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        self._client.connect_async(self.host, self.port, self.keepalive)
        self._client.loop_start()
        if self.connect_timeout <= 0:
            return
        if not self._first_answer.wait(self.connect_timeout) or self._refused:
            reason = self._refused or f"no connection within {self.connect_timeout:g} s"
            self.close()
            raise SensorError(
                f"cannot subscribe to {self.topic!r} on MQTT broker {self.host}:{self.port}: {reason}; check that "
                "the broker runs (e.g. mosquitto -p PORT), the host and port, tls=1/ca= for a TLS listener "
                "(mqtts:// defaults to 8883) and the user:password in the URL; connect_timeout=0 waits in the "
                "background instead"
            )

    def _stop(self, timeout: float) -> None:
        self._client.disconnect()
        # loop_stop() joins paho's thread without a timeout: join it from a helper, with ours
        stopper = threading.Thread(target=self._client.loop_stop, name=f"edgellm-mqtt-stop-{self.name}", daemon=True)
        stopper.start()
        stopper.join(timeout)
        if stopper.is_alive():
            log.warning("%s: paho network thread still running %.1f s after close()", self.name, timeout)

    # ---- paho callbacks (paho's network thread) ---------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            log.warning("%s: broker %s:%s refused the connection: %s", self.name, self.host, self.port, reason_code)
            self._first_answer.set()  # start() reports the refusal
            return
        self._connects += 1
        if self._connects > 1:
            self._count_reconnect()
            log.info("%s: reconnected to %s:%s", self.name, self.host, self.port)
        client.subscribe(self.topic, qos=self.qos)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: list[Any], properties: Any) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self._refused = f"subscription refused: {', '.join(refused)}"
            log.warning("%s: %s", self.name, self._refused)
        else:
            self._refused = None
            self._subscribed.set()
        self._first_answer.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._subscribed.clear()
        if not self._closed.is_set():
            log.info("%s: disconnected from %s:%s (%s)", self.name, self.host, self.port, reason_code)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._handle(message.topic, message.payload)
        except Exception:  # an exception here would end paho's network thread
            log.exception("%s: failed on a message from %r", self.name, message.topic)
            self._count_malformed("internal_error")

    # ---- payloads -------------------------------------------------------------------------

    def _handle(self, topic: str, payload: bytes) -> None:
        self._count_line()
        try:
            text = payload.decode("utf-8").strip()
            parsed = self._parse(topic, text)
        except UnicodeDecodeError:
            self._count_malformed("not_utf8")
            return
        except Malformed as bad:
            self._count_malformed(bad.reason)
            return
        self._emit(parsed, source=self._source_name(topic))

    def _parse(self, topic: str, text: str) -> ParsedLine:
        if not text:
            raise Malformed("empty")
        if text[0] in "{[":
            return parse_json_object(text, self.time_column)
        return ParsedLine({topic.rsplit("/", 1)[-1]: to_number(text)})

    def _source_name(self, topic: str) -> str:
        if self._fixed_name:
            return self._fixed_name
        if self.name_from == "last":
            return topic.rsplit("/", 1)[-1]
        if self.name_from == "parent":
            return topic.rsplit("/", 1)[0]
        return topic
