"""Checks of what the device talks to: audio, serial ports, groups, ROS 2, an MQTT broker."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from .core import FAIL, OK, WARN, Check, Context

SERIAL_GLOBS = ("dev/ttyUSB*", "dev/ttyACM*", "dev/serial/by-id/*", "dev/edgellm/*")


def audio(ctx: Context) -> Check:
    """Input/output devices PortAudio sees. Never FAIL: a sensor gateway has no sound card."""
    try:
        import sounddevice as sd
    except OSError as e:  # the wheel is there, the PortAudio C library is not
        return Check("audio", WARN, f"PortAudio library missing ({e})", "sudo apt install libportaudio2")
    except ImportError:
        return Check(
            "audio",
            WARN,
            "sounddevice not installed: no microphone or speaker",
            "pip install 'edgellm-sdk[speech]' (and sudo apt install libportaudio2)",
        )
    from ..speech.devices import list_devices

    devices = list_devices()
    inputs = [d.name for d in devices if d.max_input_channels > 0]
    outputs = [d.name for d in devices if d.max_output_channels > 0]
    default_in, default_out = (int(i) if i is not None else -1 for i in sd.default.device)
    names = {d.index: d.name for d in devices}
    detail = (
        f"{len(inputs)} input, {len(outputs)} output devices (default in: {names.get(default_in, 'none')}, "
        f"out: {names.get(default_out, 'none')}); {sd.get_portaudio_version()[1].split(',')[0]}"
    )
    if inputs and outputs:
        return Check("audio", OK, detail)
    return Check(
        "audio",
        WARN,
        detail,
        "plug in a USB microphone / speaker and check `arecord -l` / `aplay -l` "
        "(the user needs the audio group); ignore on a device without sound",
    )


def serial(ctx: Context) -> Check:
    """USB serial ports and whether this user may open them: checked with access(2), not opened,
    because opening a tty raises DTR and resets an Arduino."""
    ports = sorted({p for pattern in SERIAL_GLOBS for p in ctx.root.glob(pattern)})
    if not ports:
        return Check("serial", OK, "no USB serial ports (/dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id, /dev/edgellm)")
    shown, denied = [], []
    for port in ports:
        name = "/" + str(port.relative_to(ctx.root))
        if not port.exists():
            shown.append(f"{name} (broken link)")
        elif os.access(port, os.R_OK | os.W_OK):
            shown.append(f"{name} rw")
        else:
            shown.append(f"{name} denied")
            denied.append((name, _group_of(port)))
    detail = ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")
    if not denied:
        return Check("serial", OK, detail)
    name, group = denied[0][0], denied[0][1] or "dialout"
    active, configured = _groups()
    if group in ("root", "0"):
        fix = (
            f'{name} belongs to group root: give it GROUP="dialout" with a udev rule (see devices/udev) '
            "and sudo usermod -aG dialout $USER"
        )
    elif group in active:  # in the group, yet denied: the node is not group-writable
        fix = f"give the port group rw with a udev rule (see devices/udev) or sudo chmod g+rw {name}"
    elif group in configured:
        fix = f"log out and back in (or `newgrp {group}`): you were added to {group} after this session started"
    else:
        fix = f"sudo usermod -aG {group} $USER, then log out and back in"
    return Check("serial", WARN, detail, fix)


def groups(ctx: Context) -> Check:
    if os.geteuid() == 0:
        return Check("groups", OK, "root: every device opens (run services as a user in dialout and audio)")
    active, configured = _groups()
    user = _user()
    notes, missing, stale = [], [], []
    for group in ("dialout", "audio"):
        if group in active:
            notes.append(f"{group} yes")
        elif group == "audio" and _sound_ok(ctx.root):
            notes.append("audio via device ACL or no sound card")
        elif group in configured:
            stale.append(group)
        else:
            missing.append(group)
    detail = f"user {user}: " + ", ".join(notes + [f"{g} no" for g in missing + stale])
    if missing:
        return Check("groups", WARN, detail, f"sudo usermod -aG {','.join(missing)} $USER, then log out and back in")
    if stale:
        return Check(
            "groups",
            WARN,
            detail + f" ({', '.join(stale)} added after this login)",
            "log out and back in (or reboot) for the new group to apply",
        )
    return Check("groups", OK, detail)


_ROS_PROBE = """
import json, sys
def say(**kv): print(json.dumps(kv), flush=True)
try:
    import rclpy
    say(rclpy=rclpy.__file__)
except Exception as e:
    say(rclpy_error=f"{type(e).__name__}: {e}")
try:
    import edgellm_interfaces.msg
    say(interfaces=True)
except Exception as e:
    say(interfaces_error=f"{type(e).__name__}: {e}")
if "rclpy" in sys.modules:
    from rclpy.utilities import get_rmw_implementation_identifier
    say(rmw=get_rmw_implementation_identifier())  # rcl exits the process when RMW_IMPLEMENTATION is wrong
"""


def ros2(ctx: Context) -> Check:
    """rclpy, the RMW and edgellm_interfaces, probed in a child process: rcl calls exit() on a wrong
    RMW_IMPLEMENTATION, and a half-sourced ROS install can crash the interpreter."""
    distro, rmw_env, domain = (os.environ.get(k) for k in ("ROS_DISTRO", "RMW_IMPLEMENTATION", "ROS_DOMAIN_ID"))
    if not distro and importlib.util.find_spec("rclpy") is None:
        return Check(
            "ros2",
            WARN,
            "ROS 2 not found (ROS_DISTRO unset, no rclpy): only the ROS 2 nodes need it",
            "pip install 'edgellm-sdk[ros2]' (Kilted wheels) or source /opt/ros/<distro>/setup.bash",
        )
    try:
        run = subprocess.run(
            [sys.executable, "-c", _ROS_PROBE],
            check=False,
            capture_output=True,
            text=True,
            timeout=max(1.0, ctx.timeout - 0.5),
        )
    except subprocess.TimeoutExpired:
        return Check("ros2", WARN, f"importing rclpy took more than {ctx.timeout - 0.5:g} s", "check the ROS install")
    seen = {k: v for line in run.stdout.splitlines() if line.startswith("{") for k, v in json.loads(line).items()}
    where = f"ROS_DISTRO={distro}" if distro else "ROS_DISTRO unset (PyPI wheels?)"
    if "rclpy" not in seen:
        return Check(
            "ros2",
            WARN,
            f"{where}; rclpy does not import: {seen.get('rclpy_error', run.stderr[-200:])}",
            "source /opt/ros/<distro>/setup.bash in this shell, or pip install 'edgellm-sdk[ros2]'",
        )
    if "rmw" not in seen:
        reason = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        return Check(
            "ros2",
            WARN,
            f"{where}; RMW_IMPLEMENTATION={rmw_env} does not load: {reason[:200]}",
            "unset RMW_IMPLEMENTATION or install that RMW (e.g. ros-<distro>-rmw-cyclonedds-cpp)",
        )
    detail = f"{where}; rclpy OK, RMW {seen['rmw']}{'' if rmw_env else ' (default)'}, ROS_DOMAIN_ID {domain or '0'}"
    if domain and not (domain.isdigit() and int(domain) <= 232):
        return Check("ros2", WARN, detail + " (not 0-232)", "export ROS_DOMAIN_ID=<0-101>")
    if not seen.get("interfaces"):
        return Check(
            "ros2",
            WARN,
            detail + f"; edgellm_interfaces missing ({seen.get('interfaces_error', '?')})",
            "build ros2_pkg with `make ros` (colcon) and source its install/setup.bash",
        )
    return Check("ros2", OK, detail + ", edgellm_interfaces OK")


def mqtt(ctx: Context) -> Check:
    """TCP connect, then an MQTT CONNECT / CONNACK with paho when it is installed; both bounded."""
    if not ctx.mqtt:
        return Check("mqtt", OK, "not checked (pass --mqtt HOST[:PORT] to test a broker)")
    url = urlsplit(ctx.mqtt if "://" in ctx.mqtt else f"mqtt://{ctx.mqtt}")
    host, port = url.hostname or "localhost", url.port or 1883
    wait = max(0.5, min(3.0, ctx.timeout / 2 - 0.2))
    t0 = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=wait).close()
    except OSError as e:
        return Check(
            "mqtt",
            FAIL,
            f"{host}:{port} unreachable: {e}",
            "start the broker (sudo systemctl start mosquitto) or fix --mqtt HOST:PORT; check the firewall",
        )
    try:
        import paho.mqtt.client as paho
    except ImportError:
        return Check(
            "mqtt",
            WARN,
            f"{host}:{port} accepts TCP; MQTT handshake not tried: paho-mqtt missing",
            "pip install 'edgellm-sdk[mqtt]'",
        )
    answer = _connack(paho, host, port, url.username, url.password, wait)
    ms = (time.monotonic() - t0) * 1000
    if answer is None:
        return Check(
            "mqtt",
            FAIL,
            f"{host}:{port} accepts TCP but sent no CONNACK within {wait:g} s",
            "is it an MQTT broker (a TLS listener needs mqtts, usually port 8883)?",
        )
    if answer.is_failure:
        if url.username:
            return Check("mqtt", FAIL, f"{host}:{port} refused {url.username}: {answer}", "check user and password")
        return Check(
            "mqtt",
            WARN,
            f"{host}:{port} reachable but refuses anonymous clients: {answer}",
            "give the sources user:password (mqtt://user:pass@host); --mqtt user:pass@host tests them",
        )
    return Check("mqtt", OK, f"{host}:{port} accepted an MQTT connection in {ms:.0f} ms")


def _connack(paho, host: str, port: int, user: str | None, password: str | None, wait: float):
    """The broker's CONNACK reason code, or None when none came within ``wait`` seconds."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"edgellm-doctor-{os.getpid()}")
    if user:
        client.username_pw_set(user, password)
    client.connect_timeout = wait
    got = []
    client.on_connect = lambda c, userdata, flags, reason, props: got.append(reason)
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + wait
        while not got and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        if got and not got[0].is_failure:
            client.disconnect()
    except OSError:
        return None
    finally:
        sock = client.socket()
        if sock is not None:
            sock.close()
    return got[0] if got else None


# ---- helpers -----------------------------------------------------------------------------------


def _groups() -> tuple[set[str], set[str]]:
    """(groups of this process, groups /etc/group gives the user): they differ until the next login."""
    import grp

    def name(gid: int) -> str:
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)

    active = {name(g) for g in os.getgroups()} | {name(os.getegid())}
    user = _user()
    configured = {g.gr_name for g in grp.getgrall() if user in g.gr_mem} | {name(os.getgid())}
    return active, configured


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _group_of(path: Path) -> str:
    import grp

    try:
        return grp.getgrgid(path.stat().st_gid).gr_name
    except (KeyError, OSError):
        return ""


def _sound_ok(root: Path) -> bool:
    """True when there is no sound card or its device nodes already open (a logind ACL)."""
    nodes = list((root / "dev/snd").glob("*")) if (root / "dev/snd").is_dir() else []
    return all(os.access(n, os.R_OK | os.W_OK) for n in nodes if not n.is_dir())


def serve_port(ctx: Context) -> Check:
    return port_free(ctx.serve_host, ctx.serve_port, ctx.timeout)


def port_free(host: str, port: int, timeout: float) -> Check:
    """Can ``edgellm serve`` bind host:port? Bound like uvicorn binds (SO_REUSEADDR), then released.
    A taken port is asked for /health: an edgellm server already there is OK, anything else a WARN."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            taken = e
        else:
            return Check("serve", OK, f"{host}:{port} is free for `edgellm serve`")
    where = f"[{host}]" if ":" in host else host
    model = _edgellm_health(f"http://{where}:{port}/health", max(0.5, min(3.0, timeout / 2)))
    if model is not None:
        return Check("serve", OK, f"{host}:{port} is in use by `edgellm serve` (model {model})")
    return Check(
        "serve",
        WARN,
        f"{host}:{port} cannot be bound for `edgellm serve`: {taken.strerror or taken}",
        f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or serve elsewhere: "
        f"`edgellm serve --port N` (and `edgellm doctor --serve-port N`)",
    )


def _edgellm_health(url: str, timeout: float) -> str | None:
    """The model an edgellm server at ``url`` reports, or None when something else answers (or nothing)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # a loopback URL we built
            body = json.loads(reply.read(4096))
    except (OSError, ValueError):
        return None
    return str(body.get("model")) if isinstance(body, dict) and body.get("status") in ("ok", "stopping") else None
