"""`edgellm tradeoff`: accuracy vs speed vs memory of model variants, the Pareto front, and a
variant recommended per device profile.

For every variant: ``evaluate`` (in this process) and a decode benchmark (``bench.measure``:
TTFT, decode tok/s, peak RSS) in a child process of its own, so each peak RSS is that
variant's alone. Writes ``tradeoff.json``, ``tradeoff.md`` and ``tradeoff.png`` (matplotlib,
optional).

Accuracy is the task accuracy when a task file is given, else perplexity (lower is better).
A variant is on the Pareto front when no other variant is at least as accurate, as fast and
as small in peak RSS, and strictly better in one of them.

Recommendation per profile: among Pareto variants whose memory fits the profile's budget
(both the memory guard's estimate at the profile's context and the RSS measured here), the
fastest one whose accuracy is within ``acc_tolerance`` (task accuracy, absolute) or
``ppl_tolerance`` (perplexity, relative; 2 % is the toolchain's int8/int4 target) of the most
accurate fitting variant. With tolerances of 0 it is simply the most accurate one: a variant
that is 0.1 % better in perplexity but twice as slow is rarely what a device wants, and
differences that small are within the noise of a short evaluation.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ToolchainError
from .evaluate import Progress, evaluate, split_model

BENCH_TIMEOUT_S = 900


def expand(models: Iterable, store=None) -> list[tuple]:
    """Items "MODEL", "MODEL:VARIANT", (model, variant) or (model, None) -> [(manifest, variant)];
    a model without a variant means all of its variants."""
    from ..models.store import ModelStore

    store = store or ModelStore()
    out, seen = [], set()
    for item in models:
        model, variant = split_model(str(item)) if not isinstance(item, (tuple, list)) else item
        manifest = store.resolve(model)
        for v in [variant] if variant else sorted(manifest.variants, key=manifest.variant_bytes, reverse=True):
            manifest.variant_path(v)  # ValueError naming the available variants
            if (manifest.root, v) not in seen:
                seen.add((manifest.root, v))
                out.append((manifest, v))
    if not out:
        raise ToolchainError("no model variants to compare; name at least one MODEL or MODEL:VARIANT")
    return out


def bench_variant(
    root: str | Path,
    variant: str,
    *,
    runs: int = 3,
    max_tokens: int = 64,
    threads: int | None = None,
    timeout_s: float = BENCH_TIMEOUT_S,
) -> dict:
    """``bench.measure`` of one variant in a fresh child process (its own peak RSS)."""
    args = [
        sys.executable,
        "-m",
        "edgellm_sdk.toolchain.tradeoff",
        "--bench-child",
        str(root),
        variant,
        str(runs),
        str(max_tokens),
        str(threads or 0),
    ]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"the benchmark took longer than {timeout_s:g} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if isinstance(result, dict) and (proc.returncode == 0 or "error" in result):
        return result
    killed = proc.returncode in (-9, 137)
    return {
        "error": "killed (out of memory?)"
        if killed
        else (proc.stderr.strip()[-500:] or f"the benchmark process exited with code {proc.returncode}")
    }


def pareto(points: Sequence[Sequence[float]]) -> list[bool]:
    """For points whose every coordinate is better when larger: which ones no other point dominates."""

    def dominates(a, b) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [not any(dominates(q, p) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)]


def tradeoff(
    models: Iterable,
    *,
    ppl_text: str | Path | None = None,
    task: str | Path | None = None,
    reference: str | tuple | None = None,
    runs: int = 3,
    max_tokens: int = 64,
    out_dir: str | Path = "tradeoff",
    max_ppl_tokens: int = 1024,
    threads: int | None = None,
    profiles: Sequence[str] | None = None,
    acc_tolerance: float = 0.01,
    ppl_tolerance: float = 0.02,
    store=None,
    progress: Progress | None = None,
    log=None,
) -> dict:
    """Evaluate and benchmark every variant of ``models``; write the report files into ``out_dir``.

    ``reference``: "MODEL[:VARIANT]" or (model, variant) every variant is compared with on
    ``ppl_text`` (top-1 agreement, KL). ``profiles``: device profile names or TOML paths to
    recommend for (default: every shipped profile). ``log``: a callable taking one line of
    progress text. Returns the report written to ``tradeoff.json``.
    """
    from .. import profiles as profiles_mod

    if ppl_text is None and task is None:
        raise ToolchainError("the trade-off needs an accuracy measure: give --ppl text.txt and/or --task task.jsonl")
    if runs < 1 or max_tokens < 2:
        raise ValueError(f"runs must be >= 1 and max_tokens >= 2, got {runs} and {max_tokens}")
    ref_model, ref_variant = split_model(reference) if isinstance(reference, str) else reference or (None, None)
    variants = expand(models, store)
    device_profiles = [profiles_mod.DeviceProfile.load(p) for p in (profiles or profiles_mod.available())]
    say = log or (lambda line: None)
    rows = []
    for n, (manifest, variant) in enumerate(variants, 1):
        key = f"{manifest.name}:{variant}"
        say(f"[{n}/{len(variants)}] {key}: evaluating")
        stage = (lambda s, d, t, key=key: progress(f"{key} {s}", d, t)) if progress else None
        rep = evaluate(
            manifest.root,
            variant,
            ppl_text=ppl_text,
            task=task,
            reference=ref_model or None,
            reference_variant=ref_variant,
            max_ppl_tokens=max_ppl_tokens,
            threads=threads,
            store=store,
            progress=stage,
        )
        say(f"[{n}/{len(variants)}] {key}: benchmarking ({runs} runs of {max_tokens} tokens, own process)")
        bench = bench_variant(manifest.root, variant, runs=runs, max_tokens=max_tokens, threads=threads)
        rows.append(
            {
                "key": key,
                "model": manifest.name,
                "variant": variant,
                "path": str(manifest.root),
                "file_mb": round(manifest.variant_bytes(variant) / 2**20, 1),
                "ppl": rep.ppl,
                "task_accuracy": rep.task_accuracy,
                "answer_ppl": rep.answer_ppl,
                "top1_agreement": rep.top1_agreement,
                "kl_mean": rep.kl_mean,
                "reference_ppl": rep.reference_ppl,
                "decode_tok_s": bench.get("decode_tok_s"),
                "ttft_ms": bench.get("ttft_ms"),
                "peak_rss_mb": bench.get("peak_rss_mb"),
                "bench_error": bench.get("error"),
                "eval": rep.to_dict(),
                "bench": bench,
            }
        )
    metric = "task_accuracy" if task is not None else "ppl"
    ok = [r for r in rows if r["bench_error"] is None]
    for r in rows:
        r["accuracy"] = r[metric] if metric == "task_accuracy" else -r["ppl"]
        r["pareto"] = False
    for r, front in zip(ok, pareto([(r["accuracy"], r["decode_tok_s"], -r["peak_rss_mb"]) for r in ok])):
        r["pareto"] = front
    manifests = {str(m.root): m for m, _ in variants}
    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "metric": metric,
        "settings": {
            "ppl_text": str(ppl_text) if ppl_text else None,
            "task": str(task) if task else None,
            "reference": rows[0]["eval"]["reference"] if rows else None,
            "runs": runs,
            "max_tokens": max_tokens,
            "max_ppl_tokens": max_ppl_tokens,
            "threads": threads,
            "acc_tolerance": acc_tolerance,
            "ppl_tolerance": ppl_tolerance,
        },
        "rows": rows,
        "pareto": [r["key"] for r in rows if r["pareto"]],
        "recommendations": {
            p.name: recommend(ok, p, manifests, metric, acc_tolerance, ppl_tolerance) for p in device_profiles
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report["plot"] = plot(report, out / "tradeoff.png")
    if report["plot"] is None:
        say("tradeoff.png skipped: the plot needs matplotlib (pip install matplotlib)")
    (out / "tradeoff.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / "tradeoff.md").write_text(markdown(report))
    return report


def recommend(
    rows: list[dict], profile, manifests: dict, metric: str, acc_tolerance: float, ppl_tolerance: float
) -> dict:
    """The variant for ``profile`` and why (see the module docstring)."""
    from ..models.plan import LoadPlan

    budget = profile.memory_budget_mb  # the device's, not EDGELLM_MAX_RSS_MB of this host
    fits: list[tuple[dict, float, int]] = []  # (row, the guard's estimate, context)
    too_big: list[tuple[dict, float, int]] = []
    for r in rows:
        plan = LoadPlan.resolve(manifests[r["path"]], profile, variant=r["variant"])  # as Engine.load would
        need = plan.memory.total_mb
        r_need = max(need, r["peak_rss_mb"])
        (fits if r_need <= budget else too_big).append((r, need, plan.max_context))
    base = {"profile": profile.name, "budget_mb": budget}
    if not fits:
        smallest = min(too_big, key=lambda t: max(t[1], t[0]["peak_rss_mb"]), default=None)
        why = (
            "no variant was measured"
            if smallest is None
            else (
                f"nothing fits the {budget} MB budget: the smallest, {smallest[0]['key']}, needs about "
                f"{max(smallest[1], smallest[0]['peak_rss_mb']):.0f} MB at {smallest[2]} tokens of context; use a "
                "smaller model (distill or prune) or a shorter max_context in the profile"
            )
        )
        return {**base, "variant": None, "why": why}
    pool = [t for t in fits if t[0]["pareto"]] or fits
    best = max(t[0]["accuracy"] for t in pool)
    if metric == "task_accuracy":
        close = [t for t in pool if t[0]["accuracy"] >= best - acc_tolerance]
        slack = f"within {100 * acc_tolerance:g} percentage point(s) of the best task accuracy that fits"
    else:
        close = [t for t in pool if -t[0]["accuracy"] <= -best * (1 + ppl_tolerance)]
        slack = f"within {100 * ppl_tolerance:g} % of the best perplexity that fits"
    r, need, context = max(close, key=lambda t: (t[0]["decode_tok_s"], t[0]["accuracy"]))
    acc = (
        f"task accuracy {100 * r['task_accuracy']:.1f} %" if metric == "task_accuracy" else f"perplexity {r['ppl']:.3f}"
    )
    why = (
        f"{'Pareto variant' if r['pareto'] else 'variant (no Pareto variant fits)'}; {acc} ({slack}); "
        f"{r['decode_tok_s']} tok/s here; needs about {max(need, r['peak_rss_mb']):.0f} MB (guard estimate "
        f"{need:.0f} MB at {context} tokens of context, measured peak {r['peak_rss_mb']:.0f} MB) of {budget} MB"
    )
    return {**base, "variant": r["key"], "estimate_mb": round(need, 1), "peak_rss_mb": r["peak_rss_mb"], "why": why}


def _fmt(value, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    return "—" if value is None else f"{value * scale:{spec}}{suffix}"


def markdown(report: dict) -> str:
    rows, ref = report["rows"], report["settings"]["reference"]
    s = report["settings"]
    lines = ["# Accuracy / speed trade-off", ""]
    what = []
    if s["task"]:
        what.append(f"task accuracy and answer perplexity (the targets teacher-forced) on `{s['task']}`")
    if s["ppl_text"]:
        what.append(f"perplexity on `{s['ppl_text']}`" + (f", top-1 agreement and KL vs `{ref}`" if ref else ""))
    speed = (
        f"median of {s['runs']} greedy run(s) of {s['max_tokens']} tokens per variant, each variant in its "
        f"own process on this {report['host']} host ({report['created']}); the tok/s are this machine's, "
        "not a device's"
    )
    lines += [f"Accuracy: {'; '.join(what)}. Speed: {speed}.", ""]
    header = [
        "variant",
        "file MB",
        "task acc",
        "answer ppl",
        "ppl",
        "top-1",
        "KL nats",
        "decode tok/s",
        "TTFT ms",
        "peak RSS MB",
        "Pareto",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        ppl = _fmt(r["ppl"], ".3f")
        if r["ppl"] is not None and r["reference_ppl"]:
            ppl += f" ({100 * (r['ppl'] / r['reference_ppl'] - 1):+.1f} %)"
        timing = [_fmt(r["decode_tok_s"], ".1f"), _fmt(r["ttft_ms"], ".0f"), _fmt(r["peak_rss_mb"], ".0f")]
        if r["bench_error"]:
            timing = ["error", "error", "error"]
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{r['key']}`",
                    _fmt(r["file_mb"], ".1f"),
                    _fmt(r["task_accuracy"], ".1f", 100, " %"),
                    _fmt(r.get("answer_ppl"), ".3f"),
                    ppl,
                    _fmt(r["top1_agreement"], ".1f", 100, " %"),
                    _fmt(r["kl_mean"], ".3g"),
                    *timing,
                    "**yes**" if r["pareto"] else "",
                ]
            )
            + " |"
        )
    if ref:
        lines += ["", f"ppl Δ is relative to the reference `{ref}`."]
    errors = [r for r in rows if r["bench_error"]]
    for r in errors:
        lines.append(f"- `{r['key']}` benchmark failed: {r['bench_error']}")
    lines += [
        "",
        "## Recommended variant per device profile",
        "",
        "| profile | budget MB | variant | why |",
        "|---|---|---|---|",
    ]
    for name, rec in report["recommendations"].items():
        lines.append(
            f"| {name} | {rec['budget_mb']} | {'`' + rec['variant'] + '`' if rec['variant'] else '—'} | {rec['why']} |"
        )
    if report.get("plot"):
        lines += ["", f"![accuracy vs decode speed]({report['plot']})"]
    else:
        lines += ["", "No plot: `pip install matplotlib` to get tradeoff.png."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> str | None:
    """Accuracy vs decode tok/s, bubble area = peak RSS, the Pareto front outlined in red.
    Returns the file name, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in report["rows"] if not r["bench_error"]]
    task = report["metric"] == "task_accuracy"

    def y(r):
        return 100 * r["task_accuracy"] if task else r["ppl"]

    models = {r["model"] for r in rows}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    largest = max((r["peak_rss_mb"] for r in rows), default=1) or 1
    for i, r in enumerate(rows):
        ax.scatter(
            r["decode_tok_s"],
            y(r),
            s=1500 * r["peak_rss_mb"] / largest,
            alpha=0.45,
            edgecolors="crimson" if r["pareto"] else "grey",
            linewidths=2.5 if r["pareto"] else 1,
        )
        label = r["variant"] if len(models) == 1 else r["key"]
        ax.annotate(
            f"{label}\n{r['peak_rss_mb']:.0f} MB",
            (r["decode_tok_s"], y(r)),
            fontsize=8,
            ha="center",
            va="center",
            textcoords="offset points",
            xytext=(0, 22 if i % 2 else -22),
        )
    # the front is 3-D (accuracy, speed, RAM): outlined points, not a line in this 2-D view
    ax.scatter([], [], s=60, facecolors="none", edgecolors="crimson", linewidths=2.5, label="Pareto front")
    ax.scatter([], [], s=60, facecolors="none", edgecolors="grey", label="dominated")
    ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("decode tokens/s (this host)")
    if task:
        ax.set_ylabel("task accuracy (%)")
    else:
        ax.set_ylabel("perplexity (lower is better)")
        ppls = [y(r) for r in rows if y(r)]
        if ppls and max(ppls) > 10 * min(ppls):
            ax.set_yscale("log")  # one broken variant must not flatten all the others
        ax.invert_yaxis()
    ax.set_title(("" if len(models) != 1 else f"{next(iter(models))}: ") + "accuracy vs speed (bubble area = peak RSS)")
    ax.margins(0.25)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def _bench_child(argv: list[str]) -> int:
    """Child process: one variant's ``bench.measure`` as a JSON line on stdout."""
    from types import SimpleNamespace

    from ..bench import measure
    from ..errors import EdgeLLMError

    root, variant, runs, max_tokens, threads = argv
    # measure() takes its thread count from a profile; a bare namespace sets only that
    profile = SimpleNamespace(threads=int(threads)) if int(threads) else None
    try:
        print(json.dumps(measure(root, variant, profile, int(runs), int(max_tokens))))
    except (EdgeLLMError, ValueError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--bench-child"]:
    sys.exit(_bench_child(sys.argv[2:]))
