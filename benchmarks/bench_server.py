"""`edgellm serve` overhead: streamed tokens and time to first byte vs the in-process Engine, 8 clients, RSS.

The server runs as a real `edgellm serve` subprocess on a free loopback port; the client streams
/v1/completions with httpx (greedy, a counting prompt that never stops early, so both sides make
the same tokens). In-process = Engine.generate in this process, same prompt and thread count.

    .venv/bin/python benchmarks/bench_server.py   # writes benchmarks/results/bench_server.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe, machine

PROMPT = "1, 2, 3, 4, 5,"
THREADS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def in_process(engine, max_tokens: int) -> tuple[float, float, int]:
    """(TTFT s, s per token after the first, tokens) of one Engine.generate."""
    t0 = time.perf_counter()
    first, n = None, 0
    for tok in engine.generate(PROMPT, max_tokens=max_tokens):
        if tok.text and first is None:
            first = time.perf_counter()
        n += bool(tok.text)
    total = time.perf_counter() - t0
    return first - t0, (total - (first - t0)) / max(1, n - 1), n


def streamed(client: httpx.Client, url: str, max_tokens: int) -> tuple[float, float, int]:
    """(time to first byte of the first token s, s per token after it, tokens) over HTTP."""
    body = {"prompt": PROMPT, "max_tokens": max_tokens, "stream": True}
    t0 = time.perf_counter()
    first, n = None, 0
    with client.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                first = first or time.perf_counter()
                n += 1
    total = time.perf_counter() - t0
    return first - t0, (total - (first - t0)) / max(1, n - 1), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rss-requests", type=int, default=1000, help="short requests for the RSS check")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_server.json"))
    args = ap.parse_args()
    from edgellm_sdk import Engine

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "edgellm_sdk", "serve", "--port", str(port), "--threads", str(THREADS),
           "--max-queue", "8", "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=subprocess.DEVNULL)
    try:
        with Engine.load("smollm2-135m", threads=THREADS) as engine, httpx.Client(timeout=120) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get(url + "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            in_process(engine, 4), streamed(client, url, 4)  # warm both (prefix cache, first-call costs)
            local, remote = [], []
            for _ in range(args.runs):  # alternate, so drift hits both sides alike
                local.append(in_process(engine, args.max_tokens))
                remote.append(streamed(client, url, args.max_tokens))
            ttft_local = statistics.median(r[0] for r in local)
            ttfb_remote = statistics.median(r[0] for r in remote)
            tok_local = statistics.median(r[1] for r in local)
            tok_remote = statistics.median(r[1] for r in remote)

            def one(_):
                with httpx.Client(timeout=120) as c:
                    return streamed(c, url, 32)

            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(one, i) for i in range(8)]
                depth = 0
                while not all(f.done() for f in futures):
                    depth = max(depth, client.get(url + "/status").json()["metrics"]["queue_depth"])
                    time.sleep(0.05)
            concurrent_s = time.perf_counter() - t0
            errors = sum(f.exception() is not None for f in futures)
            rss_start = rss_mb(server.pid)
            for _ in range(args.rss_requests):
                client.post(url + "/v1/completions", json={"prompt": PROMPT, "max_tokens": 2}).raise_for_status()
            rss_end = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    result = {
        "machine": machine(THREADS),
        "date": time.strftime("%Y-%m-%d"),
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "in_process_ttft_ms": round(ttft_local * 1000, 2),
        "server_ttfb_ms": round(ttfb_remote * 1000, 2),
        "ttfb_over_ttft_ms": round((ttfb_remote - ttft_local) * 1000, 2),
        "in_process_ms_per_token": round(tok_local * 1000, 3),
        "server_ms_per_token": round(tok_remote * 1000, 3),
        "overhead_ms_per_token": round((tok_remote - tok_local) * 1000, 3),
        "concurrent_clients": 8,
        "concurrent_errors": errors,
        "concurrent_wall_s": round(concurrent_s, 2),
        "max_queue_depth_seen": depth,
        "rss_requests": args.rss_requests,
        "rss_mb_start": round(rss_start, 1),
        "rss_mb_end": round(rss_end, 1),
        "rss_change_pct": round(100 * (rss_end - rss_start) / rss_start, 2) if rss_start else None,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{describe(result['machine'])}: " + json.dumps({k: v for k, v in result.items() if k != "machine"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
