"""TTFT with a ~400-token system prompt + a short question: cold vs warm prefix, vs llama.cpp.

edgellm cold = no prefix cache, KV reset before each request; warm = the system prompt
warmed once into the PrefixCache, a different question each request. llama.cpp warm =
its built-in reuse of the longest common token prefix of the previous request.

    .venv/bin/python benchmarks/bench_prefix.py   # writes benchmarks/results/bench_prefix.{json,md}
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_decode import THREADS, llama_cpp_safe_kwargs
from gguf_source import gguf_file
from machine import describe, machine

SYSTEM = (
    "You are the assistant of a warehouse robot named Rover. Rules: answer in one or two short sentences; "
    "never invent sensor values; if a question is about safety, tell the user to press the red stop button first. "
    "Rover has four wheels, a lifting arm rated for 20 kilograms, a lidar on top, two cameras, a temperature "
    "sensor and a battery that lasts about eight hours. It works in aisles A to F, charges at dock 3 and must "
    "never enter the cold room. Speak politely and use metric units. "
) * 4
QUESTIONS = [
    "Where do you charge your battery?",
    "How much weight can your arm lift?",
    "Which aisles do you work in?",
    "Can you enter the cold room?",
    "How long does your battery last?",
    "What sensors do you carry?",
    "What should I do before asking about safety?",
]


def multi_turn(turns: int = 10) -> dict:
    """Prefill work of a 10-turn ChatSession vs the tokens each turn really adds."""
    import numpy as np

    from edgellm_sdk import Engine
    from edgellm_sdk.cache.prefix import common_prefix

    system = {"role": "system", "content": "You are a helpful robot."}
    prefilled = new = 0
    seen: list[int] = []
    with Engine.load("smollm2-135m", threads=THREADS, prefix_cache=False) as engine:
        session = engine.session(system=system["content"])
        for q in (QUESTIONS * 2)[:turns]:
            before = engine.prefill_tokens
            reply = session.send(q, max_tokens=32)
            prefilled += engine.prefill_tokens - before
            ids = engine.prompt_ids([system, *[m.as_dict() for m in session.history[:-1]]])
            new += len(ids) - common_prefix(np.array(seen), np.array(ids))
            seen = ids + list(reply.token_ids) + ([2] if reply.finish_reason == "stop" else [])
    return {"turns": turns, "prefill_tokens": prefilled, "new_tokens": new, "ratio": prefilled / new}


def budgets(budget_mb: int = 8) -> dict:
    """Fill caches far past their byte budgets; report what they hold and the process RSS growth."""
    import psutil

    from edgellm_sdk import Engine, PrefixCache, ResponseCache

    proc = psutil.Process()
    with Engine.load(
        "smollm2-135m",
        threads=THREADS,
        prefix_cache=PrefixCache(budget_mb << 20),
        response_cache=ResponseCache(1 << 20),
    ) as engine:
        engine.complete("warm-up", max_tokens=1)
        rss0 = proc.memory_info().rss
        for i in range(40):  # 40 distinct ~100-token prompts: ~4.6 MB of KV each
            engine.warm([{"role": "system", "content": f"Robot {i}: " + SYSTEM[:400]}])
            engine.complete(f"Status report {i}: " + SYSTEM[:200], max_tokens=4)
        p, r = engine.prefix_cache.stats, engine.response_cache.stats
        growth = proc.memory_info().rss - rss0
    return {
        "prefix_budget_mb": budget_mb,
        "prefix_bytes_mb": p.bytes / 2**20,
        "prefix_evictions": p.evictions,
        "response_budget_mb": 1,
        "response_bytes_mb": r.bytes / 2**20,
        "rss_growth_mb": growth / 2**20,
    }


def semantic_lookup_ms(entries: int = 200) -> float:
    """p50 of SemanticCache.lookup (embedding included) with ``entries`` cached questions."""
    from edgellm_sdk import SemanticCache
    from edgellm_sdk.cache.response import CachedResponse
    from edgellm_sdk.embed import Embedder

    cache = SemanticCache(Embedder.load())
    answer = CachedResponse([(1, "ok")], "stop")
    for i in range(entries):
        cache.put("scope", f"{QUESTIONS[i % len(QUESTIONS)]} (variant {i})", answer)
    times = []
    for q in QUESTIONS * 5:
        t = time.perf_counter()
        cache.lookup("scope", q.replace("?", " please?"))
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main(runs: int = len(QUESTIONS)) -> None:
    from edgellm_sdk import Engine

    system = [{"role": "system", "content": SYSTEM}]
    conv = [system + [{"role": "user", "content": q}] for q in QUESTIONS[:runs]]
    results = {}
    with Engine.load("smollm2-135m", threads=THREADS, prefix_cache=False) as cold:
        prompt_tokens = len(cold.prompt_ids(conv[0]))
        ttft = []
        for messages in conv:
            cold.reset()
            ttft.append(cold.complete(messages, max_tokens=1).usage.ttft_s)
        results["edgellm cold"] = statistics.median(ttft)
    from edgellm_sdk import ResponseCache

    with Engine.load("smollm2-135m", threads=THREADS, response_cache=ResponseCache()) as warm:
        warmed = warm.warm(system)
        ttft = [warm.complete(m, max_tokens=1, context=str(i)).usage.ttft_s for i, m in enumerate(conv)]
        results["edgellm warm"] = statistics.median(ttft)
        stats = warm.prefix_cache.stats
        warm.complete(conv[0], max_tokens=32)
        hit = []
        for _ in range(50):
            t = time.perf_counter()
            c = warm.complete(conv[0], max_tokens=32)
            hit.append(time.perf_counter() - t)
            assert c.cached
        results["edgellm response-cache hit (whole answer)"] = statistics.median(hit)
    try:
        from llama_cpp import Llama

        llm = Llama(
            model_path=str(gguf_file()),
            n_ctx=1024,
            n_threads=THREADS,
            n_threads_batch=THREADS,
            verbose=False,
            **llama_cpp_safe_kwargs(),
        )
        with Engine.load("smollm2-135m", threads=1, prefix_cache=False) as e:
            texts = [e.render(m) for m in conv]
        for key, cold_start in (("llama.cpp cold", True), ("llama.cpp warm", False)):
            ttft = []
            llm.reset()
            llm.eval(llm.tokenize(texts[-1].encode(), add_bos=False, special=True))  # warm-up / shared prefix
            for text in texts:
                ids = llm.tokenize(text.encode(), add_bos=False, special=True)
                if cold_start:
                    llm.reset()
                t = time.perf_counter()
                next(llm.generate(ids, temp=0.0))  # reuses the longest common prefix it holds
                ttft.append(time.perf_counter() - t)
            results[key] = statistics.median(ttft)
    except ImportError:
        print("llama-cpp-python not installed: `make bench` installs it", file=sys.stderr)
    ms = {k: round(v * 1000, 2) for k, v in results.items()}
    report = {
        "prompt_tokens": prompt_tokens,
        "warmed_tokens": warmed,
        "runs": len(conv),
        "ttft_ms": ms,
        "warm_speedup": results["edgellm cold"] / results["edgellm warm"],
        "response_cache_hit_ms_p50": ms["edgellm response-cache hit (whole answer)"],
        "prefix_cache": {"hits": stats.hits, "misses": stats.misses, "bytes": stats.bytes},
        "multi_turn": (mt := multi_turn()),
        "budgets": (bu := budgets()),
        "semantic_lookup_ms_p50": (sem := semantic_lookup_ms()),
        "date": time.strftime("%Y-%m-%d"),
    }
    lines = ["| system | TTFT ms (median) |", "|---|---|"] + [f"| {k} | {v} |" for k, v in ms.items()]
    lines.append(
        f"\n{prompt_tokens}-token prompt ({warmed} tokens cached), {len(conv)} different questions, "
        f"{THREADS} threads; edgellm warm is {report['warm_speedup']:.1f}x faster than cold; "
        f"prefix cache holds {stats.bytes / 2**20:.1f} MB. 10-turn ChatSession: "
        f"{mt['prefill_tokens']} tokens prefilled for {mt['new_tokens']} new tokens ({mt['ratio']:.2f}x). "
        f"Budgets: prefix cache {bu['prefix_bytes_mb']:.1f} of {bu['prefix_budget_mb']} MB after "
        f"{bu['prefix_evictions']} evictions, response cache {bu['response_bytes_mb']:.2f} of 1 MB, "
        f"process RSS +{bu['rss_growth_mb']:.1f} MB. Semantic-cache lookup p50 {sem:.1f} ms "
        f"(embedding included, 200 entries)."
    )
    table = "\n".join(lines)
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    (HERE / "results" / "bench_prefix.json").write_text(json.dumps(report, indent=2) + "\n")
    (HERE / "results" / "bench_prefix.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
