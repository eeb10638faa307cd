"""`edgellm eval` and `edgellm tradeoff`: the evaluation half of the optimization toolchain."""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="perplexity, task accuracy, top-1 agreement and KL against a reference model")
    p.add_argument("model", help="installed model name or model directory")
    p.add_argument("--variant", help="onnx variant (default: the manifest's default)")
    _add_eval_args(p)
    p.add_argument(
        "--max-answer-tokens", type=int, help="answer budget per task example (default: 2x the target + 16 tokens)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "tradeoff",
        help="evaluate + benchmark variants: JSON, Markdown table, PNG plot, Pareto "
        "front, a variant per device profile",
    )
    p.add_argument("models", nargs="+", metavar="MODEL[:VARIANT]", help="a model alone means all its variants")
    _add_eval_args(p)
    p.add_argument("--out", default="tradeoff", help="output directory (default ./tradeoff)")
    p.add_argument("--runs", type=int, default=3, help="benchmark runs per variant (median)")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens generated per benchmark run")
    p.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        metavar="PROFILE",
        help="device profile to recommend for (name or .toml; repeatable; default: all shipped)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_tradeoff)


def _add_eval_args(p) -> None:
    p.add_argument("--ppl", metavar="TEXT", help="UTF-8 text file for perplexity")
    p.add_argument(
        "--task",
        metavar="JSONL",
        help='task file: {"prompt" | "messages", "target", "match": "exact" | "json" | "contains" | "number" | '
        '"yesno" | "refusal", "category"} per line',
    )
    p.add_argument(
        "--reference",
        metavar="MODEL[:VARIANT]",
        help="compare with this model on the --ppl text (':fp32' = the same model's fp32 variant)",
    )
    p.add_argument("--max-ppl-tokens", type=int, default=1024, help="tokens of the text scored (default 1024)")
    p.add_argument("--threads", type=int, help="CPU threads (default: min(4, cores))")


def _progress():
    """A (stage, done, total) callback drawing a tqdm bar per stage on stderr (plain lines without tqdm)."""
    bars = {}
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        tqdm = None

    def update(stage: str, done: int, total: int) -> None:
        if tqdm is None:
            if done == total:
                print(f"{stage}: {total} done", file=sys.stderr)
            return
        bar = bars.get(stage) or bars.setdefault(
            stage,
            tqdm(total=total, desc=stage, file=sys.stderr, leave=False, unit="tok" if "perplexity" in stage else "ex"),
        )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def cmd_eval(args) -> int:
    from .evaluate import evaluate, split_model

    ref, ref_variant = split_model(args.reference) if args.reference else (None, None)
    report = evaluate(
        args.model,
        args.variant,
        ppl_text=args.ppl,
        task=args.task,
        reference=ref or None,
        reference_variant=ref_variant,
        max_ppl_tokens=args.max_ppl_tokens,
        threads=args.threads,
        max_answer_tokens=args.max_answer_tokens,
        progress=None if args.json else _progress(),
    )
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else report.summary())
    return 0


def cmd_tradeoff(args) -> int:
    from .tradeoff import tradeoff

    report = tradeoff(
        args.models,
        ppl_text=args.ppl,
        task=args.task,
        reference=args.reference,
        runs=args.runs,
        max_tokens=args.max_tokens,
        out_dir=args.out,
        max_ppl_tokens=args.max_ppl_tokens,
        threads=args.threads,
        profiles=args.profiles,
        progress=None if args.json else _progress(),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    from pathlib import Path

    print((Path(args.out) / "tradeoff.md").read_text(encoding="utf-8"))
    files = ["tradeoff.json", "tradeoff.md"] + ([report["plot"]] if report["plot"] else [])
    print(f"wrote {', '.join(str(Path(args.out) / f) for f in files)}", file=sys.stderr)
    return 0
