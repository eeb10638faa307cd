"""Real federated runs on loopback for tests: `edgellm federated server` and `client` as processes.

``Fleet`` starts the CLI commands in their own sessions with a private EDGELLM_HOME-free setup
(models are passed as directories) and stops them with SIGTERM, which our CLI turns into a clean
stop of every Flower process it started (SIGKILL after a grace period). ``rig_app`` writes a
Flower app whose ClientApp is ours plus two test mods: a wire capture of every reply that leaves
the device, and faults chosen per device by environment variables (wrong-shape tensors, a stall).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RIG_CLIENT = '''
import json, os, time
import numpy as np
from flwr.app import Array, ArrayRecord, RecordDict, Message
from edgellm_sdk.federated.client_app import build


def capture_mod(msg, context, call_next):
    """Everything a reply carries, as the device sends it: names, shapes, metrics, raw bytes."""
    out = call_next(msg, context)
    path = os.environ.get("EDGELLM_FED_CAPTURE")
    if path and not out.has_error():
        c = out.content
        entry = {
            "type": msg.metadata.message_type,
            "arrays": {k: {n: [list(a.shape), a.dtype] for n, a in r.items()} for k, r in c.array_records.items()},
            "metrics": {k: dict(r) for k, r in c.metric_records.items()},
            "configs": {k: dict(r) for k, r in c.config_records.items()},
        }
        with open(path, "a") as f:
            f.write(json.dumps(entry, default=str) + "\\n")
        with open(path + ".bin", "ab") as f:
            for r in c.array_records.values():
                for a in r.values():
                    f.write(a.data)
            f.write(json.dumps(entry, default=str).encode())
    return out


def fault_mod(msg, context, call_next):
    fault = os.environ.get("EDGELLM_FED_FAULT", "")
    if msg.metadata.message_type.startswith("train") and fault == "stall":
        open(os.environ["EDGELLM_FED_MARK"], "w").write("training")
        time.sleep(600)
    out = call_next(msg, context)
    if msg.metadata.message_type.startswith("train") and fault == "bad-shape" and not out.has_error():
        arrays = out.content["arrays"]
        bad = ArrayRecord({k: Array(np.zeros((1, a.shape[-1]), np.float32)) for k, a in arrays.items()})
        out = Message(RecordDict({"arrays": bad, "metrics": out.content["metrics"]}), reply_to=msg)
    return out


app = build(mods=[capture_mod, fault_mod])
'''

RIG_PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
[project]
name = "edgellm-federated-rig"
version = "0.1.0"
description = "test rig"
license = "Apache-2.0"
dependencies = []
[tool.hatch.build.targets.wheel]
packages = ["."]
[tool.flwr.app]
publisher = "edgellm"
[tool.flwr.app.components]
serverapp = "edgellm_sdk.federated.server_app:app"
clientapp = "rigapp.client_app:app"
[tool.flwr.app.config]
"""


def rig_app(directory: Path) -> Path:
    """A Flower app: our ServerApp, our ClientApp wrapped in the capture and fault mods."""
    from edgellm_sdk.federated.commands import app_dir

    defaults = (app_dir() / "pyproject.toml").read_text().split("[tool.flwr.app.config]", 1)[1]
    (directory / "rigapp").mkdir(parents=True, exist_ok=True)
    (directory / "rigapp" / "__init__.py").write_text("")
    (directory / "rigapp" / "client_app.py").write_text(RIG_CLIENT)
    (directory / "pyproject.toml").write_text(RIG_PYPROJECT + defaults)
    return directory


def write_tasks(path: Path, pairs) -> Path:
    path.write_text("".join(json.dumps({"prompt": p, "target": t, "match": "json"}) + "\n" for p, t in pairs))
    return path


class Fleet:
    """The server and devices of one test, as CLI processes; ``close`` stops them all."""

    def __init__(self, work: Path):
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgellm_sdk.cli", "federated", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FLWR_TELEMETRY_ENABLED": "0", **(env or {})},
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def server(self, name: str, port: int, out: Path, model: Path, *extra: str) -> subprocess.Popen:
        argv = ["server", "--model", str(model), "--port", str(port), "--out", str(out), *extra]
        return self.start(name, argv)

    def client(self, name: str, port: int, model: Path, data: Path, *extra: str, env=None) -> subprocess.Popen:
        argv = ["client", "--model", str(model), "--data", str(data), "--server", f"127.0.0.1:{port}", *extra]
        return self.start(name, argv, env)

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def wait(self, name: str, timeout_s: float) -> int:
        try:
            return self.procs[name].wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(name)
            raise AssertionError(f"{name} did not finish in {timeout_s} s:\n{self.log(name)[-3000:]}") from None

    def wait_for(self, condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{self.log(n)[-1500:]}" for n in self.procs)
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.5)

    def stop(self, name: str, grace_s: float = 15.0) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # the CLI stops its Flower process groups
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
