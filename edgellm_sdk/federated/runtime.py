"""Flower's deployment runtime as child processes: SuperLink, SuperNode, ``flwr run``.

Every process gets a private ``FLWR_HOME``, telemetry and the update check off, runs in its own
process group (Flower's processes start more: superexec, one ``flwr-clientapp`` per message) and
is stopped with its whole group on exit, on an error and on Ctrl-C. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import MissingDependency, ToolchainError
from .tls import TlsFiles

LOOPBACK = ("127.0.0.1", "localhost", "::1")
UNREACHABLE = 305  # Flower's exit code (in its log) for a SuperNode that cannot reach the SuperLink
SIMULATION_DATA_SEPARATOR = "|"  # between the virtual nodes' data files in the run config
INSTALL = "federated learning needs Flower: pip install 'edgellm-sdk[federated]' (Python >= 3.11)"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def require_flower() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError as e:
        raise MissingDependency("flwr", "federated", INSTALL) from e


def require_simulation() -> None:
    """Flower's simulation runtime runs the virtual nodes in Ray."""
    try:
        import ray  # noqa: F401
    except ImportError as e:
        raise MissingDependency("ray", "federated", f"Flower's simulation runtime needs Ray; {INSTALL}") from e


def flower_program(name: str) -> str:
    """A Flower console script: next to this Python first (a venv), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise MissingDependency("flwr", "federated", f"{name} not found; {INSTALL}")
    return found


def flower_env(home: Path) -> dict[str, str]:
    """A private FLWR_HOME, no telemetry or update check, and this Python's scripts on PATH
    (the SuperLink and SuperNode start ``flower-superexec`` by name)."""
    home.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        "PATH": path,
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; elsewhere none): Flower detaches its superexec
    into a session of its own, out of reach of the group signal."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a TOML basic string


def key_values(values: dict) -> str:
    """``k=v`` pairs as Flower's --node-config takes them (TOML values: strings quoted)."""
    return " ".join(f"{k}={toml_value(v)}" for k, v in values.items())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class FlowerProcess:
    """A Flower program in its own process group; ``stop`` ends the group (SIGTERM, then SIGKILL)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path | None = None):
        self.argv, self.log = argv, log
        out = open(log, "ab") if log else None  # noqa: SIM115  (closed in stop)
        self.out = out
        self.popen = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True
        )

    @property
    def name(self) -> str:
        return Path(self.argv[0]).name

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        if not self.log or not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait(self, timeout_s: float) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ToolchainError(f"{self.name} did not finish within {timeout_s:.0f} s; stopped it") from None

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM to the group and every descendant's group, SIGKILL to what is left after ``grace_s``."""
        tree = [self.popen.pid, *descendants(self.popen.pid)]
        groups = set()
        for pid in tree:
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                continue
        groups.discard(os.getpgrp())  # never our own group
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in groups:
                try:
                    os.killpg(group, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.popen.wait(timeout=grace_s if sig == signal.SIGTERM else 5.0)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                time.sleep(0.2)  # let the group's others exit on their own, then SIGKILL the rest
        if self.out:
            self.out.close()
            self.out = None

    def __enter__(self) -> FlowerProcess:  # noqa: PYI034  (Self needs Python 3.11)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for_port(host: str, port: int, process: FlowerProcess, timeout_s: float) -> None:
    """Until ``host:port`` accepts connections; a clear error if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise ToolchainError(f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    process.stop()
    raise ToolchainError(f"{process.name} did not open {host}:{port} within {timeout_s:.0f} s:\n{process.tail()}")


def superlink_argv(host: str, port: int, database: Path | None, tls: TlsFiles | None) -> list[str]:
    """``database``: an SQLite file for the SuperLink's state, or None for its in-memory state."""
    argv = [flower_program("flower-superlink"), "--host", host, "--port", str(port)]
    argv += ["--database", str(database)] if database is not None else []
    argv += ["--disable-runtime-dependency-installation"]
    if tls is None:
        return [*argv, "--insecure"]
    return [*argv, "--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]


def supernode_argv(
    server: str, node_config: dict, *, root_ca: Path | None, port: int, max_retries: int, max_wait_s: float
) -> list[str]:
    argv = [flower_program("flower-supernode"), "--superlink", server, "--port", str(port)]
    argv += ["--node-config", key_values(node_config), "--max-retries", str(max_retries)]
    argv += ["--max-wait-time", str(max_wait_s)]
    return [*argv, "--root-certificates", str(root_ca)] if root_ca else [*argv, "--insecure"]


def write_connection(home: Path, name: str, address: str, root_ca: Path | None) -> None:
    """``$FLWR_HOME/config.toml``: where ``flwr run <app> <name>`` submits the run."""
    tls = f"root-certificates = {toml_value(root_ca)}" if root_ca else "insecure = true"
    text = f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\naddress = "{address}"\n{tls}\n'
    (home / "config.toml").write_text(text)


def flwr_run_argv(app_dir: Path, connection: str, run_config: Path) -> list[str]:
    return [flower_program("flwr"), "run", str(app_dir), connection, "--run-config", str(run_config), "--stream"]


def write_run_config(path: Path, values: dict) -> Path:
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()))
    return path
