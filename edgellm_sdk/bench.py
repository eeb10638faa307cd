"""`edgellm bench`: time to first token, decode speed and peak RSS of a model on this machine —
optionally under a device profile's limits (``--simulate``): CPU affinity, thread counts and a
memory limit (cgroup), run in a child process. A simulation is not the device: clock speed, memory
bandwidth and the CPU architecture stay this machine's, and the report says so.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROMPT = (
    "You are the voice of a small warehouse robot. Battery at 64 percent, two deliveries done, one window "
    "closed on the third floor, the storage room at 21 degrees. Write a friendly report for the night shift."
)
CGROUPS = (  # mount, limit file, swap file, method
    (Path("/sys/fs/cgroup"), "memory.max", "memory.swap.max", "cgroup v2"),
    (Path("/sys/fs/cgroup/unified"), "memory.max", "memory.swap.max", "cgroup v2"),
    (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup v1"),
)


@dataclass(frozen=True)
class MemoryLimit:
    method: str  # "cgroup v2", "cgroup v1" or "none"
    path: Path | None

    def join(self) -> None:
        """Move the calling process into the limited cgroup (run in the child before exec)."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        if self.path is not None:
            try:
                self.path.rmdir()
            except OSError:
                pass


def memory_limit(limit_mb: int) -> MemoryLimit:
    """A fresh cgroup capped at ``limit_mb`` without swap, if this process may make one (root)."""
    name = f"edgellm-simulate-{os.getpid()}"
    for root, control, swap, method in CGROUPS:
        if not (root / "cgroup.procs").exists():  # not a cgroup mount (e.g. the tmpfs holding v1 mounts)
            continue
        path = root / name
        try:
            path.mkdir(exist_ok=True)
            if not (path / control).exists():  # the memory controller is not enabled here
                raise OSError(control)
            (path / control).write_text(str(limit_mb << 20))
            if (path / swap).exists():
                (path / swap).write_text("0" if method == "cgroup v2" else str(limit_mb << 20))
            return MemoryLimit(method, path)
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
    return MemoryLimit("none", None)


def measure(model: str, variant: str | None, profile, runs: int, max_tokens: int) -> dict:
    """Load the model (with ``profile``) and time ``runs`` greedy generations of ``max_tokens``; the
    report has the load plan's settings and its memory estimate next to the measured peak RSS."""
    from .engine import Engine
    from .memory import peak_rss_mb

    t0 = time.perf_counter()
    engine = Engine.load(model, variant=variant, profile=profile, prefix_cache=False)
    load_s = time.perf_counter() - t0
    engine.tokenizer.eos_ids = frozenset()  # always generate max_tokens
    ids = engine.prompt_ids([{"role": "user", "content": PROMPT}])
    ttft, tps = [], []
    for _ in range(runs):
        engine.reset()
        usage = engine.complete(ids, max_tokens=max_tokens).usage
        ttft.append(usage.ttft_s)
        tps.append(usage.decode_tokens_per_s)
    plan = engine.plan
    assert plan is not None  # Engine.load always keeps its plan
    return {
        "model": engine.model_id,
        "variant": plan.variant,
        "threads": plan.threads,
        "max_context": plan.max_context,
        "prompt_tokens": len(ids),
        "tokens": max_tokens,
        "runs": runs,
        "load_s": round(load_s, 3),
        "ttft_ms": round(statistics.median(ttft) * 1000, 1),
        "decode_tok_s": round(statistics.median(tps), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "estimate_mb": round(plan.memory.total_mb, 1),
    }


def simulate(model: str, variant: str | None, profile, runs: int, max_tokens: int, timeout_s: float = 900) -> dict:
    """``measure`` in a child process pinned to the profile's thread count of cores, under its memory budget."""
    host_cores = sorted(os.sched_getaffinity(0))
    cores = host_cores[: max(1, min(profile.threads, len(host_cores)))]
    limit = memory_limit(profile.memory_budget_mb)
    args = [
        sys.executable,
        "-m",
        "edgellm_sdk.bench",
        "--child",
        model,
        variant or "",
        profile.source or profile.name,
        str(runs),
        str(max_tokens),
    ]

    def confine() -> None:
        os.sched_setaffinity(0, cores)
        limit.join()

    try:
        proc = subprocess.run(args, check=False, capture_output=True, text=True, timeout=timeout_s, preexec_fn=confine)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess(args, -1, "", f"the simulated run took longer than {timeout_s:g} s")
    finally:
        limit.remove()
    report = {
        "simulated_profile": profile.name,
        "cores": len(cores),
        "host_cores": len(host_cores),
        "memory_limit_mb": profile.memory_budget_mb,
        "memory_limit_method": limit.method,
        "host": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if proc.returncode in (0, 3):
        return {**report, **json.loads(proc.stdout.strip().splitlines()[-1])}
    killed = proc.returncode in (-9, 137)
    return {**report, "error": "killed: over the memory limit" if killed else proc.stderr.strip()[-500:]}


def caveats(report: dict) -> list[str]:
    lines = [f"SIMULATION of {report['simulated_profile']} on this {report['host']} machine — not the device."]
    lines.append(
        f"CPU: pinned to {report['cores']} of {report['host_cores']} cores ({report.get('threads', '?')} "
        "threads); clock speed, caches, memory bandwidth and the instruction set stay this machine's, "
        "so tokens/s are NOT the device's."
    )
    if isinstance(report.get("threads"), int) and report["threads"] > report["cores"]:
        lines.append(
            f"The profile's {report['threads']} threads share {report['cores']} cores here (the device "
            "has a core per thread): expect slower decoding than with the cores it was written for."
        )
    if report["memory_limit_method"] == "none":
        lines.append(
            f"Memory: no cgroup could be made (needs root and a writable cgroup mount); the peak RSS is "
            f"compared with the {report['memory_limit_mb']} MB budget instead of being enforced."
        )
    else:
        lines.append(
            f"Memory: limited to {report['memory_limit_mb']} MB ({report['memory_limit_method']}); "
            "going over it gets the process killed, as on the device."
        )
    return lines


def _child(argv: list[str]) -> int:
    from .errors import EdgeLLMError
    from .profiles import DeviceProfile

    model, variant, profile, runs, max_tokens = argv
    try:
        print(json.dumps(measure(model, variant or None, DeviceProfile.load(profile), int(runs), int(max_tokens))))
    except (EdgeLLMError, ValueError) as exc:  # the reason, not a traceback, goes into the report
        print(json.dumps({"error": str(exc)}))
        return 3
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    sys.exit(_child(sys.argv[2:]))


# ---- CLI ---------------------------------------------------------------------------------------


def add_parser(sub) -> None:
    from .cli.common import add_profile_arg
    from .models.store import DEFAULT_MODEL

    p = sub.add_parser(
        "bench", help="time to first token, decode speed and peak RSS (optionally simulating a device profile's limits)"
    )
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help="installed model name or model directory")
    p.add_argument("--variant", help="default: the profile's, else the model's")
    add_profile_arg(p)
    p.add_argument(
        "--simulate",
        action="store_true",
        help="run under the profile's CPU and memory limits (a child process; needs --profile)",
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from .cli.common import profile_arg

    if args.runs < 1 or args.max_tokens < 2:
        raise ValueError("--runs must be >= 1 and --max-tokens >= 2")
    profile = profile_arg(args.profile)
    if args.simulate:
        if profile is None:
            raise ValueError("--simulate needs --profile NAME (e.g. --profile rpi4): the limits come from it")
        report = simulate(args.model, args.variant, profile, args.runs, args.max_tokens)
        notes = caveats(report)
    else:
        report, notes = measure(args.model, args.variant, profile, args.runs, args.max_tokens), []
    if args.json:
        print(json.dumps({**report, "notes": notes}, indent=2))
    else:
        for line in notes:
            print(line)
        for key, value in report.items():
            print(f"  {key:20} {value}")
    return 1 if "error" in report else 0
