"""The doctor's machinery: Check lines, the context checks read, time-limited runs, the report."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..server import DEFAULT_HOST, DEFAULT_PORT

if TYPE_CHECKING:
    from ..models.store import ModelStore
    from ..profiles import Detection, DeviceProfile

OK, WARN, FAIL = "OK", "WARN", "FAIL"
VERIFY_LIMIT_S = 120.0  # --verify re-hashes every model file: ~1 GB takes 10-30 s on a Pi's SD card


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str = ""


@dataclass
class Context:
    """What every check may read: the (possibly fake) root, the device, the profile, the store, the options."""

    root: Path
    detection: Detection
    profile: DeviceProfile  # fitted when auto-detected
    chosen: str  # "auto" or what --profile named
    store: ModelStore
    mqtt: str | None = None
    verify: bool = False
    timeout: float = 5.0
    serve_host: str = DEFAULT_HOST
    serve_port: int = DEFAULT_PORT


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[], Check | list[Check]]
    limit: float
    timeout_fix: str = ""


@dataclass
class Report:
    checks: list[Check]
    profile: str
    device: dict
    elapsed_s: float
    counts: dict = field(init=False)

    def __post_init__(self):
        self.counts = {s: sum(c.status == s for c in self.checks) for s in (OK, WARN, FAIL)}

    @property
    def exit_code(self) -> int:
        return 1 if self.counts[FAIL] else 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "ok": not self.counts[FAIL],
                "profile": self.profile,
                "device": self.device,
                "counts": self.counts,
                "elapsed_s": round(self.elapsed_s, 2),
                "checks": [asdict(c) for c in self.checks],
            },
            indent=2,
        )

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks) + 2
        lines = []
        for c in self.checks:
            lines.append(f"{c.status:<5} {c.name:<{width}}{c.detail}")
            if c.fix and c.status != OK:
                lines.append(f"{'':<5} {'':<{width}}fix: {c.fix}")
        lines.append(
            f"{self.counts[OK]} OK, {self.counts[WARN]} WARN, {self.counts[FAIL]} FAIL in "
            f"{self.elapsed_s:.1f} s (profile {self.profile})"
        )
        return "\n".join(lines)


def run_tasks(tasks: list[Task]) -> list[Check]:
    """Run every task in its own daemon thread, all at once; a task still running after its limit
    becomes a WARN line and is left behind (the process exits without waiting for it)."""
    results: dict[int, list[Check]] = {}

    def call(i: int, task: Task) -> None:
        try:
            got = task.run()
            results[i] = [got] if isinstance(got, Check) else list(got)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a check's bug or a library's surprise: report it
            results[i] = [Check(task.name, WARN, f"could not check: {type(e).__name__}: {e}")]

    start = time.monotonic()
    threads = [
        threading.Thread(target=call, args=(i, t), daemon=True, name=f"doctor-{t.name}") for i, t in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()
    out: list[Check] = []
    for i, (task, thread) in enumerate(zip(tasks, threads)):
        thread.join(max(0.0, start + task.limit - time.monotonic()))
        out.extend(
            results[i]
            if i in results
            else [
                Check(
                    task.name,
                    WARN,
                    f"did not finish within {task.limit:g} s",
                    task.timeout_fix or "rerun with a larger --timeout",
                )
            ]
        )
    return out


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
