"""`edgellm doctor`: is this device ready to run the SDK? One OK / WARN / FAIL line per check, with the fix.

    from edgellm_sdk.doctor import diagnose
    report = diagnose()                      # auto-detected profile, every check bounded by 5 s
    print(report.table()); sys.exit(report.exit_code)     # 1 when any check FAILs

Checks import what they inspect (onnxruntime, sounddevice, paho...) inside themselves, so importing
this package stays light, and each runs in its own thread with a time limit: a hung driver or an
unreachable broker becomes a WARN/FAIL line, never a hung doctor.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..server import DEFAULT_HOST, DEFAULT_PORT
from .core import FAIL, OK, VERIFY_LIMIT_S, WARN, Check, Context, Report, Task, run_tasks

__all__ = ["FAIL", "OK", "WARN", "Check", "Report", "diagnose"]


def diagnose(
    profile: str | None = "auto",
    *,
    root: str | Path = "/",
    store=None,
    mqtt: str | None = None,
    verify: bool = False,
    timeout: float = 5.0,
    serve_host: str = DEFAULT_HOST,
    serve_port: int = DEFAULT_PORT,
) -> Report:
    """Run every check. ``profile``: "auto" (detect, then fit to this device) or a name / .toml path;
    ``serve_host``/``serve_port``: where `edgellm serve` would listen (checked free or ours)."""
    from ..models.store import ModelStore
    from ..profiles import DeviceProfile
    from . import peripherals as io
    from . import storage, system

    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    t0 = time.monotonic()
    found = DeviceProfile.detect(root)
    chosen = profile or "auto"
    chosen_profile = found.profile.fitted(found.device) if chosen == "auto" else DeviceProfile.load(chosen)
    ctx = Context(
        Path(root), found, chosen_profile, chosen, store or ModelStore(), mqtt, verify, timeout, serve_host, serve_port
    )

    def task(name, fn, *args, limit=timeout, timeout_fix=""):
        return Task(name, lambda: fn(*args), limit, timeout_fix)

    tasks = [
        task("device", system.device, ctx),
        task("python", system.python, ctx),
        task("cpu", system.cpu, ctx),
        task("memory", system.memory, ctx),
        task("onnxruntime", system.onnxruntime, ctx),
        task("packages", system.packages, ctx),
        task("audio", io.audio, ctx, timeout_fix="the audio driver hangs: check `aplay -l`, restart PulseAudio"),
        task("serial", io.serial, ctx),
        task("groups", io.groups, ctx),
        task("ros2", io.ros2, ctx),
        task("mqtt", io.mqtt, ctx),
        task("serve", io.serve_port, ctx),
    ]
    dirs = storage.model_dirs(ctx)
    limit = max(timeout, VERIFY_LIMIT_S) if verify else timeout
    tasks += [
        task(
            "model",
            storage.model,
            d,
            verify,
            limit=limit,
            timeout_fix=f"hashing {d.name} is slow on this disk: run `edgellm doctor --verify` alone",
        )
        for d in dirs
    ] or [task("model", storage.no_models, ctx)]
    tasks += [
        task("model", storage.recommended, ctx, [d.name for d in dirs]),
        task("home", storage.home, ctx),
        task("disk", storage.disk, ctx),
    ]
    checks = run_tasks(tasks)
    return Report(checks, chosen_profile.name, {**vars(found.device)}, time.monotonic() - t0)
