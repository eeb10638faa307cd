"""Real devices for the sensor tests: a pseudo-terminal Arduino, a mosquitto broker, a publisher."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import tty
from pathlib import Path

SBIN_PATH = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto", path=SBIN_PATH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


class FakeArduino:
    """A pseudo-terminal standing in for a USB serial device. The source opens `path` (a symlink
    to the pty's slave, like /dev/serial/by-id/...); the test writes to the master side.
    unplug() closes the master and removes the path; plug() makes a new pty and points the path at it."""

    def __init__(self, path: Path):
        self.path = path
        self.master: int | None = None
        self._slave: int | None = None
        self.plug()

    def plug(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no newline translation, like a real USB CDC port
        tmp = self.path.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self._slave))
        os.replace(tmp, self.path)

    def unplug(self) -> None:
        self.path.unlink(missing_ok=True)
        for fd in (self.master, self._slave):
            if fd is not None:
                os.close(fd)
        self.master = self._slave = None

    def write(self, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        assert self.master is not None, "unplugged"
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    def write_lines(self, lines: list[str], eol: str = "\r\n") -> None:
        self.write("".join(line + eol for line in lines))

    def close(self) -> None:
        self.unplug()


class Mosquitto:
    """A real mosquitto broker on a loopback port; stop() and start() keep the same port."""

    def __init__(self, workdir: Path, *, anonymous: bool = True, listener_config: str = ""):
        self.binary = mosquitto_binary()
        assert self.binary, "mosquitto is not installed"
        self.port = free_port()
        self.config = workdir / f"mosquitto-{self.port}.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n{listener_config}\nallow_anonymous {str(anonymous).lower()}\n"
            "persistence false\nmax_queued_messages 100000\n" + ("user root\n" if os.geteuid() == 0 else "")
        )  # as root, do not drop to a user who cannot read tmp
        self.log = workdir / f"mosquitto-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 5.0) -> Mosquitto:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        if not wait_until(self._accepts, timeout):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}: {self.log.read_text()[-2000:]}")
        return self

    def _accepts(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class Publisher:
    """A paho client publishing to the broker (reconnects by itself, like a real sensor node)."""

    def __init__(self, port: int, host: str = "127.0.0.1", **tls_and_auth):
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{port}-{time.time_ns()}")
        if tls_and_auth.get("ca"):
            self.client.tls_set(ca_certs=tls_and_auth["ca"])
        if tls_and_auth.get("username"):
            self.client.username_pw_set(tls_and_auth["username"], tls_and_auth.get("password"))
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        assert wait_until(self.client.is_connected, 5), "publisher could not connect"

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, wait: bool = True):
        info = self.client.publish(topic, payload, qos=qos)
        if wait:
            info.wait_for_publish(timeout=5)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_tls_files(directory: Path) -> dict[str, Path] | None:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI); None without openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    commands = [
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=edgellm-test-ca",
        ],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [
            openssl,
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ],
    ]
    for command in commands:
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=60)
    return {"ca": ca, "cert": cert, "key": key}


def nmea(body: str) -> str:
    """A sentence with its checksum: nmea("GPGGA,...") -> "$GPGGA,...*47"."""
    checksum = 0
    for char in body.encode():
        checksum ^= char
    return f"${body}*{checksum:02X}"
