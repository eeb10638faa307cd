"""What the ROS 2 llm_node adds on top of the engine: start-up, streaming, round trip, cancel.

The llm_node runs as its own process (default model q4, 2 threads) on a private DDS domain and
an rclpy client in this process sends Generate goals. The same greedy requests run in-process on
the SDK (the engine's own token time) and on llama.cpp (llama-cpp-python, the peer), one system
at a time, interleaved, medians of --runs:
  * node start: process spawn -> action server ready, and the node's own configure + activate;
  * first feedback after the goal is sent vs the in-process time to first token;
  * per-token feedback interval vs the engine's in-process token interval (the streaming overhead);
  * action round trip overhead: goal sent -> result received, minus the node's generation time;
  * cancel: cancel request -> cancelled result with the partial text.

    .venv/bin/python benchmarks/bench_ros.py [--runs 9]
Writes benchmarks/results/bench_ros.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import ros_rig
from bench_decode import PROMPT, THREADS, LlamaCppWorker
from machine import describe, machine

GEN_TOKENS = 64
SYSTEM = "You are a helpful assistant on a robot. Answer in one or two short sentences."


def resolved(future, timeout: float):
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise TimeoutError("no answer from llm_node")
    return future.result()


def median(values) -> float:
    return round(statistics.median(values), 4)


def node_start(workdir: Path) -> dict:
    from edgellm_interfaces.action import Generate
    from rclpy.action import ActionClient

    domain = ros_rig.next_domain()
    t0 = time.perf_counter()
    with (
        ros_rig.NodeProcess("llm_node", domain, workdir, name="llm", params={"threads": THREADS}) as node,
        ros_rig.RosClient(domain) as ros,
    ):
        client = ActionClient(ros.node, Generate, "/llm/generate")
        assert client.wait_for_server(timeout_sec=60), node.log()
        ready = time.perf_counter() - t0
        own = re.search(
            r"active in ([0-9.]+) s",
            ros_rig.wait_for(lambda: "active in" in node.log() and node.log(), 10, "the start log", node),
        )
    return {"spawn_to_ready_s": ready, "configure_activate_s": float(own.group(1))}


def ros_run(client, goal) -> dict:
    arrivals: list[float] = []
    t0 = time.perf_counter()
    handle = resolved(
        client.send_goal_async(goal, feedback_callback=lambda _: arrivals.append(time.perf_counter())), 30
    )
    response = resolved(handle.get_result_async(), 120)
    t_end = time.perf_counter()
    usage = response.result.usage
    assert not response.result.cached
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return {
        "first_feedback_s": arrivals[0] - t0,
        "interval_s": statistics.median(gaps),
        "round_trip_overhead_s": (t_end - t0) - usage.total_s,
        "node_ttft_s": usage.ttft_s,
        "tokens": usage.completion_tokens,
        "feedback_messages": len(arrivals),
        "text": response.result.text,
    }


def sdk_run(engine, messages) -> dict:
    stamps: list[float] = []
    t0 = time.perf_counter()
    text = []
    for token in engine.generate(messages, max_tokens=GEN_TOKENS):
        stamps.append(time.perf_counter())
        text.append(token.text)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return {"ttft_s": stamps[0] - t0, "interval_s": statistics.median(gaps), "text": "".join(text)}


def cancel_run(client, goal) -> float:
    arrivals: list[float] = []
    handle = resolved(
        client.send_goal_async(goal, feedback_callback=lambda _: arrivals.append(time.perf_counter())), 30
    )
    result = handle.get_result_async()
    while len(arrivals) < 5:
        time.sleep(0.005)
    t0 = time.perf_counter()
    handle.cancel_goal_async()
    response = resolved(result, 30)
    assert response.result.finish_reason == "cancelled", response.result
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_ros.json")
    args = parser.parse_args()
    if ros_rig.skip_reason():
        sys.exit(ros_rig.skip_reason())
    from edgellm_interfaces.action import Generate
    from rclpy.action import ActionClient

    from edgellm_sdk import Engine

    work = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    starts = [node_start(work) for _ in range(3)]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    engine = Engine.load("smollm2-135m", threads=THREADS)
    try:
        peer = LlamaCppWorker()
    except ImportError:
        peer = None  # make bench installs llama-cpp-python
    domain = ros_rig.next_domain()
    ros_runs, sdk_runs, peer_runs, cancels = [], [], [], []
    params = {"threads": THREADS, "response_cache_mb": 0}  # every goal generates
    with (
        ros_rig.NodeProcess("llm_node", domain, work, name="llm", params=params) as node,
        ros_rig.RosClient(domain) as ros,
    ):
        client = ActionClient(ros.node, Generate, "/llm/generate")
        assert client.wait_for_server(timeout_sec=60), node.log()
        goal = Generate.Goal(prompt=PROMPT, system_prompt=SYSTEM, max_tokens=GEN_TOKENS)
        ros_run(client, goal)  # warm-up: prefix cache, allocator
        sdk_run(engine, messages)
        for _ in range(args.runs):
            ros_runs.append(ros_run(client, goal))  # both keep the previous request's KV (as a node does)
            sdk_runs.append(sdk_run(engine, messages))
            if peer is not None:
                peer_runs.append(peer.run())
        long_goal = Generate.Goal(prompt=PROMPT, system_prompt=SYSTEM, max_tokens=400, stop=["never-appears"])
        cancels = [cancel_run(client, long_goal) for _ in range(args.runs)]
    assert ros_runs[0]["text"] == sdk_runs[0]["text"], "the node's answer differs from the SDK's"
    ros_interval, sdk_interval = median(r["interval_s"] for r in ros_runs), median(r["interval_s"] for r in sdk_runs)
    result = {
        "runs": args.runs,
        "tokens": ros_runs[0]["tokens"],
        "threads": THREADS,
        "node_start": {
            "spawn_to_ready_s": median(s["spawn_to_ready_s"] for s in starts),
            "configure_activate_s": median(s["configure_activate_s"] for s in starts),
        },
        "first_feedback_s": median(r["first_feedback_s"] for r in ros_runs),
        "sdk_ttft_s": median(r["ttft_s"] for r in sdk_runs),
        "feedback_interval_s": ros_interval,
        "sdk_token_interval_s": sdk_interval,
        "feedback_overhead_per_token_ms": round((ros_interval - sdk_interval) * 1000, 2),
        "round_trip_overhead_ms": round(median(r["round_trip_overhead_s"] for r in ros_runs) * 1000, 2),
        "cancel_to_result_ms": {"median": round(median(cancels) * 1000, 1), "max": round(max(cancels) * 1000, 1)},
        "ros_tokens_per_s": round(1 / ros_interval, 1),
        "sdk_tokens_per_s": round(1 / sdk_interval, 1),
    }
    if peer_runs:
        peer_tps = median(r["decode_tps"] for r in peer_runs)
        result.update(
            llamacpp_tokens_per_s=round(peer_tps, 1), ros_vs_llamacpp_decode=round((1 / ros_interval) / peer_tps, 3)
        )
    result["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(result["machine"]))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
