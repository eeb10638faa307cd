"""Decode speed on this SDK's four workloads, side by side with llama.cpp on the same GGUF.

Workloads (benchmarks/decode_workloads.py): free chat, sensor narrations and robot status
reports that restate their readings, robot-command JSON (CommandParser's prompts and
schemas), and voice-style short Q&A. Systems, each in its own worker process, 2 threads,
greedy, runs interleaved across systems:

- edgellm:off      speculative decoding off (the plain decode loop)
- edgellm:lookup   the default: prompt lookup + constraint fast-forward
- edgellm:history  the default + drafts from the Engine's earlier answers (opt-in: history=True)
- edgellm:draft    the default + a draft model (--draft; default: a layer-dropped copy of the target)
- llama.cpp        llama-cpp-python, plain decoding (its grammar for the command JSON)
- llama.cpp:pld    llama-cpp-python with LlamaPromptLookupDecoding

Per workload: decode tok/s (tokens after the first / time after the first, summed over the
workload's requests, median of runs), end-to-end latency per request and TTFT (medians),
acceptance of drafted tokens, and greedy agreement with edgellm:off (tokens identical before
an answer first differs / all tokens) with the cause of each difference (the gap between the
two tokens' logits in plain decoding). Then the variant table: perplexity and top-1 of
q4 / q8 / fp32 and plain decode speed on one long prompt (the numbers that chose q4).

    make bench            # or: .venv/bin/python benchmarks/bench_decode.py --runs 5
Writes benchmarks/results/bench_decode.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from decode_workloads import WORKLOADS, build_workloads
from gguf_source import gguf_file
from machine import describe, machine

from edgellm_sdk.memory import peak_rss_mb

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
THREADS = 2
PLD_TOKENS = 2  # llama-cpp-python's advice for CPU-only machines (10 is its default, for GPUs)
VARIANT_PROMPT = (
    "You are the voice of a small warehouse robot. Here is your status log from the last hour: battery at 64 percent "
    "and falling slowly, left wheel motor current slightly above normal, two deliveries completed to the workshop on "
    "the second floor, one window found open on the third floor and closed after the manager agreed. The temperature "
    "in the storage room is 21 degrees. Write a friendly, detailed report of the hour for the night shift supervisor."
)
VARIANT_TOKENS = 128


def default_draft() -> Path:
    """A draft sharing the tokenizer: the target with its 20 least influential layers dropped
    (no training; `edgellm distill` makes a better one)."""
    out = WORK / "draft-drop20"
    if not (out / "manifest.json").is_file():
        WORK.mkdir(parents=True, exist_ok=True)
        calib = HERE / "data" / "heldout_general.txt"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "edgellm_sdk",
                "prune",
                "smollm2-135m",
                "--calibration",
                str(calib),
                "--ratio",
                "0",
                "--drop-layers",
                "20",
                "--out",
                str(out),
                "--quiet",
            ],
            check=True,
        )
    return out


# --- workers -------------------------------------------------------------------------------
class EdgeWorker:
    def __init__(self, mode: str, variant: str = "q4", draft: str | None = None):
        from edgellm_sdk import Engine

        t = time.perf_counter()
        if mode == "plain":  # the variant table: the old protocol (1024 context, cold prefill every run)
            self.engine = Engine.load(
                "smollm2-135m",
                variant=variant,
                threads=THREADS,
                max_context=1024,
                speculative="off",
                prefix_cache=False,
            )
        else:
            spec = {"off": "off", "history": {"history": True}}.get(mode, "auto")
            self.engine = Engine.load(
                "smollm2-135m",
                variant=variant,
                threads=THREADS,
                max_context=2048,
                speculative=spec,
                draft=draft if mode == "draft" else None,
            )
        self.load_s = time.perf_counter() - t

    def run(self, requests: list[dict]) -> list[dict]:
        # the answer history holds only this pass's earlier requests: an identical request's answer
        # from an earlier pass would be drafted whole
        self.engine.answer_history.clear()
        out = []
        for r in requests:
            before = self.engine.prefill_tokens
            c = self.engine.chat(r["messages"], max_tokens=r["max_tokens"], schema=r.get("schema"))
            u = c.usage
            out.append(
                {
                    "tokens": list(c.token_ids),
                    "ttft_s": u.ttft_s,
                    "total_s": u.total_s,
                    "drafted": u.drafted_tokens,
                    "accepted": u.accepted_tokens,
                    "text": c.text,
                    "prefilled": self.engine.prefill_tokens - before,
                }
            )
        return out

    def long_decode(self) -> dict:
        """The variant table's decode: one long prompt, VARIANT_TOKENS greedy tokens, cold prefill."""
        e = self.engine
        eos, e.tokenizer.eos_ids = e.tokenizer.eos_ids, frozenset()  # always generate VARIANT_TOKENS
        try:
            e.reset()
            c = e.chat([{"role": "user", "content": VARIANT_PROMPT}], max_tokens=VARIANT_TOKENS)
        finally:
            e.tokenizer.eos_ids = eos
        return {
            "ttft_s": c.usage.ttft_s,
            "decode_tps": c.usage.decode_tokens_per_s,
            "prompt_tokens": c.usage.prompt_tokens,
        }


class LlamaCppWorker:
    def __init__(self, pld: bool):
        from llama_cpp import Llama
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        from edgellm_sdk.chat import ChatTemplate
        from edgellm_sdk.models.store import ModelStore
        from edgellm_sdk.tokenizer import Tokenizer

        t = time.perf_counter()
        draft = LlamaPromptLookupDecoding(num_pred_tokens=PLD_TOKENS) if pld else None
        # with a draft model llama-cpp-python keeps every position's logits but sizes their buffer by
        # `logits_all` (n_batch rows), so a long prompt overflows it: ask for logits_all explicitly
        self.llm = Llama(
            model_path=str(gguf_file()),
            n_ctx=2048,
            n_threads=THREADS,
            n_threads_batch=THREADS,
            n_batch=512,
            verbose=False,
            draft_model=draft,
            logits_all=pld,
            **llama_cpp_safe_kwargs(),
        )
        self.load_s = time.perf_counter() - t
        tok = Tokenizer.from_dir(ModelStore().path("smollm2-135m"))
        self.template = ChatTemplate(tok.chat_template, tok.special_tokens)
        self.eos = self.llm.token_eos()
        self._grammars: dict[str, object] = {}

    def _grammar(self, schema):
        from llama_cpp import LlamaGrammar

        if schema is None:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def _generate(self, ids: list[int], max_tokens: int, grammar=None, stop_at_eos: bool = True) -> dict:
        t0 = time.perf_counter()
        tokens, ttft = [], 0.0
        for token in self.llm.generate(
            ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, grammar=grammar
        ):
            if not tokens:
                ttft = time.perf_counter() - t0
            if stop_at_eos and token == self.eos:
                break
            tokens.append(token)
            if len(tokens) >= max_tokens:
                break
        return {"tokens": tokens, "ttft_s": ttft, "total_s": time.perf_counter() - t0}

    def run(self, requests: list[dict]) -> list[dict]:
        from edgellm_sdk.chat import as_messages

        out = []
        for r in requests:
            text = self.template.render(as_messages(r["messages"]))
            ids = self.llm.tokenize(text.encode(), add_bos=False, special=True)
            grammar = self._grammar(r.get("schema"))
            res = self._generate(ids, r["max_tokens"], grammar)
            res.update(drafted=0, accepted=0, text=self.llm.detokenize(res["tokens"]).decode(errors="replace"))
            out.append(res)
        return out

    def long_decode(self) -> dict:
        text = self.template.render(as_messages_user(VARIANT_PROMPT))
        ids = self.llm.tokenize(text.encode(), add_bos=False, special=True)
        self.llm.reset()
        r = self._generate(ids, VARIANT_TOKENS, stop_at_eos=False)
        return {
            "ttft_s": r["ttft_s"],
            "decode_tps": (VARIANT_TOKENS - 1) / (r["total_s"] - r["ttft_s"]),
            "prompt_tokens": len(ids),
        }


def as_messages_user(text: str):
    from edgellm_sdk.chat import as_messages

    return as_messages([{"role": "user", "content": text}])


def llama_cpp_safe_kwargs() -> dict:
    """llama.cpp's extra buffer types (AMX repacking) crash on some of these VMs: turned off."""
    import inspect

    from llama_cpp import Llama

    return {"use_extra_bufts": False} if "use_extra_bufts" in inspect.signature(Llama.__init__).parameters else {}


def worker_main(system: str, draft: str | None) -> None:
    kind, _, mode = system.partition(":")
    if kind == "llama.cpp":
        w = LlamaCppWorker(pld=mode == "pld")
    else:
        mode, _, variant = mode.partition("/")
        w = EdgeWorker(mode, variant or "q4", draft)
    requests = json.loads((WORK / "workloads.json").read_text(encoding="utf-8"))
    print(json.dumps({"ready": True, "load_s": w.load_s}), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            print(json.dumps(w.run(requests[arg])), flush=True)
        elif cmd == "long":
            print(json.dumps(w.long_decode()), flush=True)
        elif cmd == "rss":
            print(json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)  # VmHWM: not inherited like ru_maxrss


class Worker:
    def __init__(self, system: str, draft: str | None):
        self.system = system
        args = [sys.executable, __file__, "--worker", system] + (["--draft", draft] if draft else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.load_s = self._read()["load_s"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.system} died (exit {self.proc.wait()})")
        return json.loads(line)

    def ask(self, cmd: str):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --- summaries -------------------------------------------------------------------------------
def decode_rate(records: list[dict]) -> float:
    tokens = sum(max(0, len(r["tokens"]) - 1) for r in records)
    seconds = sum(r["total_s"] - r["ttft_s"] for r in records if len(r["tokens"]) > 1)
    return tokens / seconds if seconds > 0 else 0.0


def agreement(reference: list[dict], other: list[dict]) -> tuple[int, int, list[tuple[int, int]]]:
    """(tokens identical before each answer first differs, reference tokens, [(request, position)])."""
    same = total = 0
    diverged = []
    for i, (a, b) in enumerate(zip(reference, other)):
        n = next(
            (k for k, (x, y) in enumerate(zip(a["tokens"], b["tokens"])) if x != y),
            min(len(a["tokens"]), len(b["tokens"])),
        )
        same += n
        total += len(a["tokens"])
        if n < max(len(a["tokens"]), len(b["tokens"])):
            diverged.append((i, n))
    return same, total, diverged


def divergence_gaps(
    requests: list[dict], reference: list[dict], other: list[dict], diverged: list[tuple[int, int]]
) -> list[dict]:
    """For each answer that differs: plain decoding's logit gap between its token and the other's."""
    from edgellm_sdk import Engine
    from edgellm_sdk.prefill import feed

    out = []
    with Engine.load("smollm2-135m", threads=THREADS, speculative="off", prefix_cache=False) as e:
        for i, pos in diverged:
            a, b = reference[i]["tokens"], other[i]["tokens"]
            if pos >= len(a) or pos >= len(b):
                out.append({"request": i, "position": pos, "cause": "one answer ended"})
                continue
            e.reset()
            logits = feed(e.backend, e.prompt_ids(requests[i]["messages"]), e.tokenizer.eos_ids)
            for token in a[:pos]:
                logits = e.backend.forward([token])
            row = logits[-1]
            out.append(
                {
                    "request": i,
                    "position": pos,
                    "plain_token": e.tokenizer.decode([a[pos]]),
                    "other_token": e.tokenizer.decode([b[pos]]),
                    "logit_gap": float(row[a[pos]] - row[b[pos]]),
                }
            )
    return out


def teacher_forced_agreement(requests: dict[str, list[dict]], window: int = 5) -> dict:
    """Per token: does a batched verification forward choose what plain decoding chose?

    Each workload's plain greedy answers are replayed as verification rounds would run them
    (the prompt in the Engine's prefill pieces, then the answer in batches of ``window``
    tokens with every position's logits) and each position's argmax is compared with the
    plain answer's next token. This counts each disagreement once; the identical-prefix
    agreement of the workload table also counts everything after an answer first differs."""
    import numpy as np

    from edgellm_sdk import Engine
    from edgellm_sdk.prefill import feed

    out = {}
    with Engine.load("smollm2-135m", threads=THREADS, speculative="off", prefix_cache=False) as e:
        for wl, reqs in requests.items():
            same = total = 0
            for r in reqs:
                answer = list(e.chat(r["messages"], max_tokens=r["max_tokens"], schema=r.get("schema")).token_ids)
                e.reset()
                logits = feed(e.backend, e.prompt_ids(r["messages"]), e.tokenizer.eos_ids)
                if r.get("schema") is not None or not answer:
                    continue  # constrained answers: the mask decides, not the argmax of raw logits
                predicted = [int(np.argmax(logits[-1]))]
                for i in range(0, len(answer) - 1, window):
                    batch = answer[i : i + window]
                    predicted += [int(t) for t in np.argmax(e.backend.forward(batch, all_logits=True), axis=-1)]
                total += len(answer)
                same += sum(int(a == b) for a, b in zip(predicted, answer))
                e.reset()
            if total:
                out[wl] = {"tokens": total, "agreement": same / total}
    return out


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
        out[variant] = {
            "tokens": len(nll),
            "nll": mean,
            "ppl": float(np.exp(mean)),
            "top1_vs_fp32": float(np.mean(np.array(top1) == np.array(ref_top1))),
        }
    base = out["fp32"]["ppl"]
    for v in out.values():
        v["ppl_delta_pct"] = 100 * (v["ppl"] / base - 1)
    return out


def workload_table(results: dict, systems: list[str]) -> list[str]:
    lines = [
        (
            "| workload | system | decode tok/s | × llama.cpp | × edgellm off | e2e ms / request | TTFT ms | "
            "accepted / drafted | greedy agreement with off |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for wl in WORKLOADS:
        peer = results[wl].get("llama.cpp", {}).get("decode_tps")
        off = results[wl].get("edgellm:off", {}).get("decode_tps")
        for s in systems:
            r = results[wl][s]
            acc = (
                f"{r['accepted']}/{r['drafted']} ({100 * r['accepted'] / r['drafted']:.0f} %)" if r["drafted"] else "—"
            )
            agree = f"{100 * r['agreement']:.1f} %" if r.get("agreement") is not None else "—"
            dx = f"{r['decode_tps'] / peer:.2f}" if peer else "—"
            ox = f"{r['decode_tps'] / off:.2f}" if off else "—"
            lines.append(
                f"| {wl} | {s} | {r['decode_tps']:.1f} | {dx} | {ox} | {r['e2e_ms']:.0f} | {r['ttft_ms']:.0f} "
                f"| {acc} | {agree} |"
            )
    return lines


def variant_table(long: dict, q: dict) -> list[str]:
    peer = long.get("llama.cpp")
    lines = [
        (
            "| system | quality: ppl (Δ vs fp32) | top-1 vs fp32 | decode tok/s | × llama.cpp | TTFT ms | "
            "× llama.cpp | peak RSS MB | load s |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s, r in long.items():
        v = s.split("/", 1)[1] if "/" in s else None
        qv = q.get(v, {}) if v else {}
        ppl = f"{qv['ppl']:.2f} ({qv['ppl_delta_pct']:+.1f} %)" if qv else "—"
        top1 = f"{100 * qv['top1_vs_fp32']:.1f} %" if qv else "—"
        dx = f"{r['decode_tps'] / peer['decode_tps']:.2f}" if peer else "—"
        tx = f"{r['ttft_ms'] / peer['ttft_ms']:.2f}" if peer else "—"
        lines.append(
            f"| {s} | {ppl} | {top1} | {r['decode_tps']:.1f} | {dx} | {r['ttft_ms']:.0f} | {tx} | "
            f"{r['peak_rss_mb']:.0f} | {r['load_s']:.2f} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--variants", default="q4,q8,fp32", help="variants in the quality / plain-speed table")
    ap.add_argument("--draft", help="draft model for edgellm:draft (default: a layer-dropped copy of the target)")
    ap.add_argument("--no-llamacpp", action="store_true")
    ap.add_argument("--no-draft", action="store_true")
    ap.add_argument(
        "--agreement-only",
        action="store_true",
        help="only (re)compute the teacher-forced agreement into the existing results",
    )
    args = ap.parse_args()
    if args.worker:
        return worker_main(args.worker, args.draft)
    if args.agreement_only:
        report = json.loads((HERE / "results" / "bench_decode.json").read_text(encoding="utf-8"))
        requests = json.loads((WORK / "workloads.json").read_text(encoding="utf-8"))
        report["teacher_forced_agreement"] = teacher_forced_agreement(requests)
        (HERE / "results" / "bench_decode.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        return write_markdown(report)

    WORK.mkdir(parents=True, exist_ok=True)
    requests = build_workloads()
    (WORK / "workloads.json").write_text(json.dumps(requests, ensure_ascii=False), encoding="utf-8")
    draft = None if args.no_draft else str(args.draft or default_draft())
    systems = ["edgellm:off", "edgellm:lookup", "edgellm:history"] + ([] if args.no_draft else ["edgellm:draft"])
    systems += [] if args.no_llamacpp else ["llama.cpp", "llama.cpp:pld"]
    variants = args.variants.split(",")
    workers = {s: Worker(s, draft) for s in systems}

    # workloads: interleaved runs after one warm-up pass
    runs = {wl: {s: [] for s in systems} for wl in WORKLOADS}
    for s in systems:
        for wl in WORKLOADS:
            workers[s].ask(f"run {wl}")
    for _ in range(args.runs):
        for wl in WORKLOADS:
            for s in systems:
                runs[wl][s].append(workers[s].ask(f"run {wl}"))
    rss = {s: w.ask("rss")["peak_rss_mb"] for s, w in workers.items()}
    for w in workers.values():
        w.close()
    results = {wl: {} for wl in WORKLOADS}
    causes = {}
    for wl in WORKLOADS:
        for s in systems:
            per_run = runs[wl][s]
            flat = [r for run in per_run for r in run]
            drafted, accepted = sum(r["drafted"] for r in per_run[-1]), sum(r["accepted"] for r in per_run[-1])
            res = {
                "decode_tps": statistics.median(decode_rate(run) for run in per_run),
                "e2e_ms": 1000 * statistics.median(r["total_s"] for r in flat),
                "ttft_ms": 1000 * statistics.median(r["ttft_s"] for r in flat),
                "tokens_per_request": statistics.mean(len(r["tokens"]) for r in per_run[-1]),
                "drafted": drafted,
                "accepted": accepted,
                "agreement": None,
            }
            if s.startswith("edgellm:") and s != "edgellm:off":
                same, total, diverged = agreement(runs[wl]["edgellm:off"][-1], per_run[-1])
                res.update(
                    agreement=same / total if total else 1.0,
                    identical_answers=len(per_run[-1]) - len(diverged),
                    answers=len(per_run[-1]),
                )
                if diverged:
                    causes[f"{wl}/{s}"] = divergence_gaps(
                        requests[wl], runs[wl]["edgellm:off"][-1], per_run[-1], diverged
                    )
            results[wl][s] = res
    model_free = sum(r["prefilled"] == 0 for r in runs["commands"]["edgellm:lookup"][-1])  # forced by the schema

    # the variant table: its own processes, one long prompt, plain decoding, cold prefill
    plain = [f"edgellm:plain/{v}" for v in variants] + ([] if args.no_llamacpp else ["llama.cpp"])
    workers = {s: Worker(s, None) for s in plain}
    samples = {s: [] for s in plain}
    for _ in range(args.runs):
        for s in plain:
            samples[s].append(workers[s].ask("long"))
    long = {}
    for s in plain:
        long[s] = {
            "decode_tps": statistics.median(x["decode_tps"] for x in samples[s]),
            "ttft_ms": 1000 * statistics.median(x["ttft_s"] for x in samples[s]),
            "prompt_tokens": samples[s][0]["prompt_tokens"],
            "load_s": workers[s].load_s,
            "peak_rss_mb": workers[s].ask("rss")["peak_rss_mb"],
        }
        workers[s].close()
    q = quality(variants)

    info = machine(THREADS)
    report = {
        "machine": info,
        "date": time.strftime("%Y-%m-%d"),
        "runs": args.runs,
        "draft": draft,
        "pld_tokens": PLD_TOKENS,
        "systems": systems,
        "workloads": results,
        "divergences": causes,
        "requests": {wl: len(r) for wl, r in requests.items()},
        "peak_rss_mb": rss,
        "commands_model_free_answers": model_free,
        "variants": long,
        "quality": q,
        "teacher_forced_agreement": teacher_forced_agreement(requests),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_decode.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_markdown(report)


def write_markdown(report: dict) -> None:
    info, results, causes, long, q = (report[k] for k in ("machine", "workloads", "divergences", "variants", "quality"))
    systems = report.get("systems") or list(next(iter(results.values())))
    lines = [
        (
            f"Machine: {describe(info)}; {THREADS} threads; median of {report['runs']} interleaved runs; "
            f"{report['date']}."
        ),
        "",
    ]
    lines += workload_table(results, systems)
    lines += [
        "",
        f"Requests per workload: {report['requests']}; {report['commands_model_free_answers']} of the "
        f"{report['requests']['commands']} command answers were fully forced by their schema (no model step). "
        f"Peak RSS of the workload processes (MB): "
        + ", ".join(f"{s} {mb:.0f}" for s, mb in report["peak_rss_mb"].items())
        + ".",
        "Divergent greedy answers (first differing token, plain decoding's logit gap between the two tokens):",
    ]
    for key, items in causes.items():
        gaps = [f"{d['logit_gap']:.2f}" for d in items if "logit_gap" in d]
        lines.append(f"- {key}: {len(items)} answers; gaps {', '.join(gaps) or '—'}")
    tf = report.get("teacher_forced_agreement") or {}
    if tf:
        lines.append(
            "Teacher-forced agreement (a batched verification forward picks plain decoding's token): "
            + ", ".join(f"{wl} {100 * v['agreement']:.1f} % of {v['tokens']}" for wl, v in tf.items())
            + "."
        )
    lines += [
        "",
        *variant_table(long, q),
        (
            f"\nfp32 reference: ppl {q['fp32']['ppl']:.2f} over {q['fp32']['tokens']} tokens; variant table: one "
            f"{next(iter(long.values()))['prompt_tokens']}-token prompt, {VARIANT_TOKENS} greedy tokens, cold prefill, "
            "each system in a fresh process (its load time and peak RSS)."
        ),
    ]
    table = "\n".join(lines)
    (HERE / "results" / "bench_decode.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
