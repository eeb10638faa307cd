"""open_source(url): a running Source of Readings from a serial port, an MQTT broker or a log file.

    serial:///dev/ttyUSB0?baud=115200&format=csv|json|kv|nmea[&columns=a,b,c][&name=greenhouse]
    loop://?format=kv                       pyserial's loopback port: source.write(b"t=1\\n") comes back
    mqtt://[user:pass@]host[:1883]/topic/#[?qos=1&name_from=topic|last|parent]
    mqtts://host[:8883]/topic/#[?ca=/path/ca.pem]   (or mqtt://...?tls=1)
    file://path/log.csv?rate=10             replay: rate=1 real speed, N times faster, 0 as fast as possible

Every source also takes name=, queue=N (default 1024) and drop=oldest|newest|block (default
oldest; block for file replay). Options may be given as keywords too, which win over the URL:
open_source("serial:///dev/ttyACM0", format="csv", columns=["temp_c", "rh"]).
pyserial and paho-mqtt are imported only when a source of their kind is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ...errors import SensorError
from .base import Source, SourceStats
from .options import Options
from .parsing import FORMATS, LineParser, make_parser
from .push import PushSource

__all__ = ["PushSource", "SensorError", "Source", "SourceStats", "open_source"]

_EXAMPLES = (
    "serial:///dev/ttyUSB0?baud=115200&format=csv, loop://?format=kv, mqtt://localhost:1883/sensors/#, "
    "mqtts://broker:8883/sensors/#, file://logs/greenhouse.csv?rate=10"
)


def open_source(url: str, **options: object) -> Source:
    """Open and start the source `url` names; see the module docstring for the URL forms."""
    scheme, sep, _ = url.partition("://")
    opener = _OPENERS.get(scheme.lower()) if sep else None
    if opener is None:
        what = f"unknown sensor URL scheme {scheme!r}" if sep else "not a sensor URL (no scheme://)"
        raise SensorError(f"{what} in {url!r}; use one of: {_EXAMPLES}")
    return opener(url, options).start()


# ---- serial ---------------------------------------------------------------------------------

_SERIAL_OPTIONS = {"baud", "format", "columns", "time_column", "reconnect_max"}


def _open_serial(url: str, overrides: dict[str, object]) -> Source:
    parts = urlsplit(url)
    if parts.scheme.lower() == "loop":
        port = "loop://"
    elif parts.netloc and parts.path not in ("", "/"):
        raise SensorError(
            f"serial URL {url!r} needs an absolute device path: three slashes, e.g. "
            f"serial:///{parts.netloc}{parts.path}"
        )
    else:
        port = unquote(parts.path if parts.path not in ("", "/") else parts.netloc)  # netloc: COM3 on Windows
    if not port:
        raise SensorError(f"serial URL {url!r} names no device; e.g. serial:///dev/ttyUSB0?format=csv")
    opts = Options(url, "serial", parts.query, overrides, _SERIAL_OPTIONS)
    from .serial import SerialSource

    size, drop = opts.queue()
    return SerialSource(
        port,
        _parser(opts, "serial:///dev/ttyUSB0?baud=115200&format=csv"),
        baud=opts.integer("baud", 115200, 1, None, "baud=115200"),
        name=opts.text("name", "loop" if port == "loop://" else None),
        reconnect_max=opts.number("reconnect_max", 5.0, 0.1, "reconnect_max=5"),
        url=url,
        queue_size=size,
        drop=drop,
    )


def _parser(
    opts: Options,
    example: str,
    formats: tuple[str, ...] = FORMATS,
    fmt: str | None = None,
    time_column: str | None = None,
) -> LineParser:
    fmt = fmt or opts.required("format", example, "the line format: " + "|".join(formats))
    fmt = opts.choice("format", formats, fmt, example.split("?")[0] + "?format=" + formats[0]) or fmt
    columns = opts.names("columns", "columns=temp_c,humidity")
    if columns and fmt != "csv":
        raise SensorError(f"columns= applies to format=csv only, not format={fmt} ({opts.url!r})")
    return make_parser(fmt, columns=columns, time_column=opts.text("time_column", time_column))


# ---- MQTT -----------------------------------------------------------------------------------

_MQTT_OPTIONS = {
    "qos",
    "name_from",
    "tls",
    "ca",
    "client_id",
    "keepalive",
    "connect_timeout",
    "reconnect_max",
    "time_column",
}


def _open_mqtt(url: str, overrides: dict[str, object]) -> Source:
    from .mqtt import NAME_FROM, MqttSource

    parts = urlsplit(url, allow_fragments=False)  # '#' is the MQTT wildcard here, not a fragment
    topic = unquote(parts.path[1:])
    if not parts.hostname or not topic:
        raise SensorError(f"MQTT URL {url!r} needs a host and a topic, e.g. mqtt://localhost:1883/sensors/#")
    opts = Options(url, "mqtt", parts.query, overrides, _MQTT_OPTIONS)
    tls = parts.scheme.lower() == "mqtts" or opts.flag("tls", False, "tls=1")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise SensorError(f"bad port in MQTT URL {url!r}; e.g. mqtt://localhost:1883/sensors/#") from None
    ca = opts.text("ca")
    if ca and not Path(ca).is_file():
        raise SensorError(f"ca={ca!r} in {url!r} is not a file; give the broker's CA certificate (PEM)")
    size, drop = opts.queue()
    return MqttSource(
        parts.hostname,
        port,
        topic,
        qos=opts.integer("qos", 1, 0, 2, "qos=1"),
        name=opts.text("name"),
        name_from=opts.choice("name_from", NAME_FROM, "topic", "name_from=last") or "topic",
        tls=tls or bool(ca),
        ca=ca,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        client_id=opts.text("client_id"),
        keepalive=opts.integer("keepalive", 30, 5, 3600, "keepalive=30"),
        connect_timeout=opts.number("connect_timeout", 5.0, 0.0, "connect_timeout=5"),
        reconnect_max=opts.number("reconnect_max", 5.0, 0.25, "reconnect_max=5"),
        time_column=opts.text("time_column"),
        url=url,
        queue_size=size,
        drop=drop,
    )


# ---- file replay ----------------------------------------------------------------------------

_FILE_OPTIONS = {"rate", "format", "columns", "time_column"}
_FILE_FORMATS = ("csv", "json", "kv")
_SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json"}


def _open_file(url: str, overrides: dict[str, object]) -> Source:
    from .file import FileSource

    path_and_query = url.split("://", 1)[1]
    path_text, _, query = path_and_query.partition("?")
    path = Path(unquote(path_text))  # file://logs/a.csv is relative, file:///var/log/a.csv absolute
    opts = Options(url, "file", query, overrides, _FILE_OPTIONS)
    if not path.is_file():
        raise SensorError(
            f"no log file at {str(path)!r} (from {url!r}); relative paths are from {Path.cwd()}, "
            "absolute ones take three slashes: file:///var/log/sensors.csv"
        )
    example = f"file://{path_text}?format=csv"
    parser = _parser(
        opts,
        example,
        _FILE_FORMATS,
        opts.text("format") or _SUFFIX_FORMATS.get(path.suffix.lower()),
        time_column="timestamp",
    )
    size, drop = opts.queue(default_drop="block")
    return FileSource(
        path,
        parser,
        rate=opts.number("rate", 1.0, 0.0, "rate=10"),
        name=opts.text("name"),
        url=url,
        queue_size=size,
        drop=drop,
    )


_OPENERS: dict[str, Callable[[str, dict[str, object]], Source]] = {
    "serial": _open_serial,
    "loop": _open_serial,
    "mqtt": _open_mqtt,
    "mqtts": _open_mqtt,
    "file": _open_file,
}
