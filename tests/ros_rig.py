"""Real ROS 2 nodes for the tests: node processes and an rclpy client on a private DDS domain.

Every test gets its own ROS_DOMAIN_ID (so parallel or leftover nodes never meet) and discovery
stays on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST). Nodes run as separate processes
(``python -m edgellm_ros.<node> --ros-args ...``) from the ros2_pkg/ sources; the client side is
a fresh rclpy.Context with an executor spinning in a background thread.

Needs the `ros2` extra and the interfaces built into the venv (`make ros`, part of `make test`).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

REPO = Path(__file__).resolve().parents[1]
ROS_SOURCES = REPO / "ros2_pkg" / "edgellm_ros"
_domains = itertools.count((os.getpid() * 7) % 80 + 1)


def skip_reason() -> str | None:
    """Why ROS tests cannot run here (None when they can)."""
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return "rclpy missing: pip install 'edgellm-sdk[ros2]' (make test installs it)"
    try:
        import edgellm_interfaces.action  # noqa: F401
    except ImportError:
        return "edgellm_interfaces not built: run `make ros` (colcon build of ros2_pkg/ into the venv)"
    return None


def next_domain() -> int:
    """A DDS domain id no other test of this run uses (1..100 stays within Fast DDS's port range)."""
    return (next(_domains) - 1) % 100 + 1


def ros_env(domain: int, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROS_SOURCES), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


_EXEC_WITH_SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
)


class NodeProcess:
    """``with NodeProcess("llm_node", domain, tmp_path, params={...}) as node:`` runs a node
    process (``python -m edgellm_ros.<module>``, or an installed ``executable``); on exit it gets SIGINT, then SIGKILL after ``stop_timeout``. ``node.log()`` is its
    output (shown by the tests on failure)."""

    def __init__(
        self,
        module: str,
        domain: int,
        workdir: Path,
        *,
        name: str | None = None,
        params: dict | None = None,
        params_file: Path | None = None,
        env: dict | None = None,
        remaps: dict[str, str] | None = None,
        executable: Path | None = None,
        stop_timeout: float = 10.0,
        sigint_ignored: bool = False,
    ):
        self.module, self.domain, self.stop_timeout = module, domain, stop_timeout
        self.sigint_ignored = sigint_ignored  # start it as a shell's background job would be started
        self.name = name or module
        self.log_path = Path(workdir) / f"{self.name}.log"
        command = [str(executable)] if executable else [sys.executable, "-m", f"edgellm_ros.{module}"]
        args = [*command, "--ros-args", "-r", f"__node:={self.name}"]
        for old, new in (remaps or {}).items():
            args += ["-r", f"{old}:={new}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for key, value in (params or {}).items():
            args += ["-p", f"{key}:={_ros_value(value)}"]
        self.args, self.env = args, ros_env(domain, **(env or {}))
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    def start(self) -> NodeProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed by stop())
        # an ignored signal stays ignored across exec
        args = [sys.executable, "-c", _EXEC_WITH_SIGINT_IGNORED, *self.args] if self.sigint_ignored else self.args
        self.proc = subprocess.Popen(
            args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def stop(self) -> int:
        if self.proc is None:
            return self.returncode or 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.returncode, self.proc = self.proc.returncode, None
        self._log.close()
        return self.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _ros_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return str(value)


class RosClient:
    """A test-side rclpy node on ``domain`` in its own Context, spun by a background executor."""

    def __init__(self, domain: int, name: str = "test_client"):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def collect(self, msg_type, topic: str, qos=10) -> list:
        """Subscribe and return the list the received messages are appended to."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, node: NodeProcess | None = None, poll: float = 0.02
):
    """Poll until ``predicate()`` is truthy (returned); AssertionError naming ``what`` (with the
    node's log) on timeout or when the node process died."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if node is not None and node.proc is not None and node.proc.poll() is not None:
            raise AssertionError(f"{node.name} exited ({node.proc.returncode}) while waiting for {what}:\n{node.log()}")
        time.sleep(poll)
    log = f"\n--- {node.name} log ---\n{node.log()}" if node is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{log}")
