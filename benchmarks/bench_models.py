"""Which default model: answer quality x decode speed x peak RSS x load time, per model and variant,
with llama.cpp (llama-cpp-python) on the same GGUF as the speed and greedy-correctness reference.

Each system runs in its own worker process (peak RSS and load time are its own), interleaved:
- quality: benchmarks/data/answer_quality.jsonl through `edgellm eval --task` (per category);
- loss of each variant against the same model's fp32 graph (the dequantized GGUF) on held-out text:
  perplexity, top-1 agreement, KL;
- decode: a raw prompt, greedy, 128 tokens, speculation off (and on, for the Engine); median of runs;
- greedy agreement: the first 32 greedy tokens of raw prompts, Engine vs llama.cpp, token by token.

    .venv/bin/python benchmarks/bench_models.py   # writes benchmarks/results/bench_models.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gguf_source import gguf_file
from machine import describe, machine

THREADS = 2
DECODE_PROMPT = "The history of robots in factories began"
DECODE_TOKENS = 128
AGREE_PROMPTS = ["The capital of France is", "def fibonacci(n):", "A robot vacuum cleaner works by", "1, 2, 3, 4,"]
AGREE_TOKENS = 32
TASK = HERE / "data" / "answer_quality.jsonl"
HELD_OUT = HERE / "data" / "heldout_general.txt"


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def edge_worker(model: str, variant: str, runs: int) -> dict:
    from edgellm_sdk import Engine
    from edgellm_sdk.toolchain.evaluate import evaluate

    t = time.perf_counter()
    engine = Engine.load(model, variant=variant, threads=THREADS, max_context=2048)
    out = {"load_s": time.perf_counter() - t, "rss_after_load_mb": rss_peak_mb()}
    prompt = engine.tokenizer.encode(DECODE_PROMPT)
    for mode in ("off", "auto"):
        ms = []
        for _ in range(runs):
            c = engine.complete(prompt, max_tokens=DECODE_TOKENS, speculative=mode)
            ms.append(1000 / c.usage.decode_tokens_per_s)
        out[f"ms_per_token_spec_{mode}"] = statistics.median(ms)
    out["greedy"] = [
        list(engine.complete(engine.tokenizer.encode(p), max_tokens=AGREE_TOKENS, speculative="off").token_ids)
        for p in AGREE_PROMPTS
    ]
    out["agree_prompt_ids"] = [engine.tokenizer.encode(p) for p in AGREE_PROMPTS]
    out["peak_rss_decode_mb"] = rss_peak_mb()
    engine.close()
    report = evaluate(model, variant, task=TASK, threads=THREADS)
    out["answer_quality"] = report.task_accuracy
    out["categories"] = {k: v["accuracy"] for k, v in report.task_categories.items()}
    out["failures_sample"] = report.failures[:6]
    if variant != "fp32":
        loss = evaluate(model, variant, ppl_text=HELD_OUT, reference=model, reference_variant="fp32", threads=THREADS)
        out |= {"ppl": loss.ppl, "fp32_ppl": loss.reference_ppl, "top1_vs_fp32": loss.top1_agreement,
                "kl_vs_fp32": loss.kl_mean}  # fmt: skip
    return out


def llama_cpp_worker(model: str, runs: int, prompts: list[list[int]]) -> dict:
    from bench_decode import llama_cpp_safe_kwargs
    from llama_cpp import Llama

    t = time.perf_counter()
    llm = Llama(model_path=str(gguf_file(model)), n_ctx=2048, n_threads=THREADS, n_threads_batch=THREADS,
                verbose=False, **llama_cpp_safe_kwargs())  # fmt: skip
    out = {"load_s": time.perf_counter() - t, "rss_after_load_mb": rss_peak_mb()}

    def greedy(ids: list[int], n: int) -> tuple[list[int], float]:
        llm.reset()
        made, t_first = [], 0.0
        for tok in llm.generate(ids, top_k=1, temp=0.0, reset=True):
            if tok == llm.token_eos() or len(made) == n:
                break
            made.append(tok)
            t_first = t_first or time.perf_counter()
        return made, (time.perf_counter() - t_first) / max(1, len(made) - 1)

    decode_ids = llm.tokenize(DECODE_PROMPT.encode(), add_bos=True, special=False)
    out["ms_per_token_spec_off"] = statistics.median(1000 * greedy(decode_ids, DECODE_TOKENS)[1] for _ in range(runs))
    out["greedy"] = [greedy(ids, AGREE_TOKENS)[0] for ids in prompts]
    out["peak_rss_decode_mb"] = rss_peak_mb()
    return out


def in_worker(args: list[str]) -> dict:
    run = subprocess.run([sys.executable, __file__, "--worker", json.dumps(args)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Fraction of greedy positions that agree, each prompt up to its first divergence."""
    same = total = 0
    for x, y in zip(a, b):
        n = min(len(x), len(y))
        first_diff = next((i for i in range(n) if x[i] != y[i]), n)
        same, total = same + first_diff, total + max(len(x), len(y))
    return same / max(1, total)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--variants", default="q4,q8")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-llama-cpp", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "bench_models.json"))
    args = ap.parse_args()
    if args.worker:
        kind, model, variant, runs, prompts = json.loads(args.worker)
        result = edge_worker(model, variant, runs) if kind == "edge" else llama_cpp_worker(model, runs, prompts)
        print(json.dumps(result))
        return 0
    info = machine(THREADS)
    print(describe(info), flush=True)
    report: dict = {"date": time.strftime("%Y-%m-%d"), "machine": info, "results": {}}
    for model in args.models.split(","):
        first = None
        for variant in args.variants.split(","):
            r = in_worker(["edge", model, variant, args.runs, None])
            first = first or r
            report["results"][f"{model}/{variant}"] = r
            print(model, variant, {k: v for k, v in r.items() if k not in ("greedy", "agree_prompt_ids")}, flush=True)
        if not args.no_llama_cpp and first:
            ref = in_worker(["llama.cpp", model, "", args.runs, first["agree_prompt_ids"]])
            report["results"][f"{model}/llama.cpp"] = ref
            for variant in args.variants.split(","):
                r = report["results"][f"{model}/{variant}"]
                r["greedy_agreement_vs_llama_cpp"] = agreement(r["greedy"], ref["greedy"])
                r["decode_ratio_vs_llama_cpp"] = ref["ms_per_token_spec_off"] / r["ms_per_token_spec_off"]
            print(model, "llama.cpp", {k: v for k, v in ref.items() if k != "greedy"}, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
