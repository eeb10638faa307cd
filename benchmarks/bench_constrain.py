"""Per-token cost of constrained decoding (llguidance masks) on the default model.

Same prompt, 96 greedy tokens, with and without a JSON schema whose long string field keeps
the model generating; medians of interleaved runs; reports decode tok/s and the slowdown.

    .venv/bin/python benchmarks/bench_constrain.py   # writes benchmarks/results/bench_constrain.json
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from machine import describe, machine

HERE = Path(__file__).resolve().parent
TOKENS = 96
SCHEMA = {
    "type": "object",
    "properties": {"report": {"type": "string", "minLength": 2000, "maxLength": 4000}},
    "required": ["report"],
}
MESSAGES = [{"role": "user", "content": "Write a long status report of a warehouse robot as JSON."}]


def mask_cost(engine, token_ids) -> float:
    """p50 time of one mask + advance step, replaying a constrained answer's tokens."""
    import numpy as np

    from edgellm_sdk.constrain import compile_constraint

    logits = np.zeros(engine.backend.vocab_size, np.float32)
    times = []
    for _ in range(3):
        constraint = compile_constraint(engine.tokenizer, engine.backend.vocab_size, schema=SCHEMA)
        for token in token_ids:
            t = time.perf_counter()
            constraint.mask(logits)
            constraint.advance(token)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main(runs: int = 7) -> None:
    from edgellm_sdk import Engine

    with Engine.load("smollm2-135m", threads=2, prefix_cache=False) as engine:
        engine.tokenizer.eos_ids = frozenset()  # always TOKENS tokens
        engine.complete(MESSAGES, max_tokens=8, schema=SCHEMA)  # builds llguidance's tokenizer view once
        rates = {"unconstrained": [], "schema": []}
        compile_s = []
        for _ in range(runs):
            for name in rates:  # noqa: PLC0206  (appends to rates[name] below)
                engine.reset()
                c = engine.complete(MESSAGES, max_tokens=TOKENS, schema=SCHEMA if name == "schema" else None)
                if name == "schema":
                    compile_s.append(c.usage.ttft_s)
                assert c.usage.completion_tokens == TOKENS, c
                rates[name].append(c.usage.decode_tokens_per_s)
        mask_ms = mask_cost(engine, c.token_ids)
    med = {k: statistics.median(v) for k, v in rates.items()}
    report = {
        "tokens": TOKENS,
        "runs": runs,
        "decode_tps": med,
        "slowdown_pct": 100 * (1 - med["schema"] / med["unconstrained"]),
        "per_token_overhead_ms": 1000 * (1 / med["schema"] - 1 / med["unconstrained"]),
        "mask_plus_advance_ms_p50": mask_ms,
        "date": time.strftime("%Y-%m-%d"),
    }
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    (HERE / "results" / "bench_constrain.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
