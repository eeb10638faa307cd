"""`edgellm serve` overhead: streamed tokens and time to first byte vs the in-process Engine, 8 clients, RSS.

The server runs as a real `edgellm serve` subprocess on a free loopback port; the client streams
/v1/completions with httpx (greedy, a counting prompt that never stops early, so both sides make
the same tokens). In-process = Engine.generate in this process, same prompt and thread count.
For reference, the same workload goes to llama.cpp's server (llama-cpp-python[server], extra
``bench``) on the GGUF the default model was converted from, interleaved in the same run.

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
GREEDY = {"temperature": 0}  # both servers: the same tokens


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
    body = {**GREEDY, "prompt": PROMPT, "max_tokens": max_tokens, "stream": True}
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


class Server:
    """A server subprocess on a free loopback port; ``url`` once /health (or /v1/models) answers."""

    def __init__(self, name: str, cmd_for_port, health: str, client: httpx.Client):
        port = free_port()
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd_for_port(port), env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode} before it answered")
            try:
                if client.get(self.url + health).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not answer {health} in 180 s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def edgellm_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "edgellm_sdk", "serve", "--port", str(port), "--threads", str(THREADS),
            "--max-queue", "8", "--log-level", "warning"]  # fmt: skip


def llama_cpp_cmd(port: int) -> list[str]:
    """llama-cpp-python's OpenAI server on the same GGUF the Engine converted, same threads."""
    from gguf_source import gguf_file

    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file()), "--port", str(port),
            "--n_threads", str(THREADS), "--n_ctx", "2048", "--verbose", "False"]  # fmt: skip


def concurrent_clients(server: Server, client: httpx.Client, n: int = 8) -> dict:
    def one(_):
        with httpx.Client(timeout=300) as c:
            return streamed(c, server.url, 32)

    t0 = time.perf_counter()
    depth = None
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        while not all(f.done() for f in futures):
            if server.name == "edgellm":  # llama.cpp's server reports no queue
                depth = max(depth or 0, client.get(server.url + "/status").json()["metrics"]["queue_depth"])
            time.sleep(0.05)
    return {"concurrent_clients": n, "concurrent_errors": sum(f.exception() is not None for f in futures),
            "concurrent_wall_s": round(time.perf_counter() - t0, 2), "max_queue_depth_seen": depth}  # fmt: skip


def rss_over_requests(server: Server, client: httpx.Client, requests: int) -> dict:
    start = rss_mb(server.proc.pid)
    for _ in range(requests):
        client.post(
            server.url + "/v1/completions", json={**GREEDY, "prompt": PROMPT, "max_tokens": 2}
        ).raise_for_status()
    end = rss_mb(server.proc.pid)
    return {"rss_requests": requests, "rss_mb_start": round(start, 1), "rss_mb_end": round(end, 1),
            "rss_change_pct": round(100 * (end - start) / start, 2) if start else None}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rss-requests", type=int, default=1000, help="short requests for the RSS check")
    ap.add_argument("--no-llama-cpp", action="store_true", help="skip the llama.cpp server reference")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_server.json"))
    args = ap.parse_args()
    from edgellm_sdk import Engine

    servers: list[Server] = []
    with httpx.Client(timeout=300) as client:
        try:
            servers.append(Server("edgellm", edgellm_cmd, "/health", client))
            if not args.no_llama_cpp:
                servers.append(Server("llama.cpp", llama_cpp_cmd, "/v1/models", client))
            with Engine.load("smollm2-135m", threads=THREADS) as engine:
                in_process(engine, 4)  # warm every side (prefix cache, first-call costs)
                for server in servers:
                    streamed(client, server.url, 4)
                local, remote = [], {s.name: [] for s in servers}
                for _ in range(args.runs):  # interleaved, so drift hits every side alike
                    local.append(in_process(engine, args.max_tokens))
                    for server in servers:
                        remote[server.name].append(streamed(client, server.url, args.max_tokens))
            rows = {}
            for server in servers:
                runs = remote[server.name]
                rows[server.name] = {
                    "ttfb_ms": round(statistics.median(r[0] for r in runs) * 1000, 2),
                    "ms_per_token": round(statistics.median(r[1] for r in runs) * 1000, 3),
                    "tokens": statistics.median(r[2] for r in runs),
                    **concurrent_clients(server, client),
                    **rss_over_requests(server, client, args.rss_requests),
                }
        finally:
            for server in servers:
                server.stop()
    ttft_local = statistics.median(r[0] for r in local)
    tok_local = statistics.median(r[1] for r in local)
    ours = rows["edgellm"]
    result = {
        "machine": machine(THREADS),
        "date": time.strftime("%Y-%m-%d"),
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "in_process_ttft_ms": round(ttft_local * 1000, 2),
        "in_process_ms_per_token": round(tok_local * 1000, 3),
        "server_ttfb_ms": ours["ttfb_ms"],
        "ttfb_over_ttft_ms": round(ours["ttfb_ms"] - ttft_local * 1000, 2),
        "server_ms_per_token": ours["ms_per_token"],
        "overhead_ms_per_token": round(ours["ms_per_token"] - tok_local * 1000, 3),
        **{k: v for k, v in ours.items() if k.startswith(("concurrent", "max_queue", "rss"))},
        "servers": rows,
    }
    if "llama.cpp" in rows:
        peer = rows["llama.cpp"]
        result["vs_llama_cpp_server"] = {
            "ttfb_ratio": round(ours["ttfb_ms"] / peer["ttfb_ms"], 3),  # < 1: ours answers sooner
            "ms_per_token_ratio": round(ours["ms_per_token"] / peer["ms_per_token"], 3),  # < 1: ours streams faster
        }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{describe(result['machine'])}: " + json.dumps({k: v for k, v in result.items() if k != "machine"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
