"""`edgellm bench`, and `--simulate` under a profile's CPU and memory limits (a real cgroup when root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edgellm_sdk.bench import memory_limit
from edgellm_sdk.profiles import PROFILE_DIR


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgellm_sdk.cli", "bench", "--json", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def can_limit_memory() -> bool:
    limit = memory_limit(64) if os.geteuid() == 0 else None
    if limit is None:
        return False
    limit.remove()
    return limit.method != "none"


def tiny_profile(tmp_path, budget_mb: int) -> str:
    text = (PROFILE_DIR / "rpi4.toml").read_text().replace("budget_mb = 1024", f"budget_mb = {budget_mb}")
    text = text.replace("intra_op_threads = 3", "intra_op_threads = 1").replace(
        "max_context = 2048", "max_context = 384"
    )
    path = tmp_path / "tiny-board.toml"
    path.write_text(text.replace('name = "rpi4"', 'name = "tiny-board"'))
    return str(path)


def test_bench_measures_this_machine(tiny_store):
    out = bench("--model", str(tiny_store.path("tiny")), "--variant", "fp32", "--runs", "2", "--max-tokens", "8")
    report = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert report["tokens"] == 8 and report["decode_tok_s"] > 0 and report["peak_rss_mb"] > 50
    assert report["estimate_mb"] > 0  # the load plan's memory estimate, beside the measured peak
    assert report["notes"] == []  # not a simulation


def test_simulate_pins_cores_limits_memory_and_says_it_is_a_simulation(tiny_store, tmp_path):
    out = bench(
        "--model",
        str(tiny_store.path("tiny")),
        "--profile",
        tiny_profile(tmp_path, 1024),
        "--simulate",
        "--runs",
        "1",
        "--max-tokens",
        "8",
    )
    report = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert report["simulated_profile"] == "tiny-board" and report["cores"] == 1 and report["threads"] == 1
    assert report["max_context"] == 256 and report["memory_limit_mb"] == 1024  # 384, capped by the model
    assert report["notes"][0].startswith("SIMULATION of tiny-board") and "NOT the device's" in report["notes"][1]


@pytest.mark.model
@pytest.mark.skipif(not can_limit_memory(), reason="no writable memory cgroup (needs root): not enforceable here")
def test_simulate_enforces_the_memory_limit_and_the_guard_refuses_first(default_store, tmp_path):
    profile = tiny_profile(tmp_path, 128)  # the default model q4 needs ~280 MB
    args = ("--profile", profile, "--simulate", "--runs", "1", "--max-tokens", "8")
    refused = json.loads(bench(*args).stdout)
    assert "more than the budget of 128 MB" in refused["error"]  # the memory guard, before loading
    killed = bench(*args, env={"EDGELLM_MAX_RSS_MB": "0"})  # guard off: the cgroup stops it
    assert killed.returncode == 1 and json.loads(killed.stdout)["error"] == "killed: over the memory limit"


def test_simulate_reports_a_missing_execution_provider(tiny_store):
    out = bench("--model", str(tiny_store.path("tiny")), "--profile", "jetson-orin-nano", "--simulate")
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"].startswith("execution provider CUDAExecutionProvider is not in")


def test_simulate_needs_a_profile():
    out = bench("--simulate")
    assert out.returncode == 2 and "--simulate needs --profile" in out.stderr
