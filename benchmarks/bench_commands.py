"""Robot command parsing on benchmarks/data/commands_dev.jsonl (211 requests; 40 to refuse:
20 out of range ("unsafe"), 20 not robot commands ("nonsense")).

For each variant: constrained with retrieved few-shot examples by sentence embedding
(CommandParser with an Embedder, the recommended set-up), constrained with lexical
retrieval only (no embedder), and unconstrained (the same prompt, free text, then
json.loads). Reports exact-match accuracy, valid-JSON rate, refusal precision/recall,
unsafe commands accepted, and latency per command (p50 over all requests, and over those the model
had to decide: with speculative decoding a request whose schema forces the whole answer needs
no model step). The recommended set-up also runs with speculation off (the decode loop before it). The few-shot pool (DEMO_COMMANDS.examples)
shares no request with the dev set (checked below).

    .venv/bin/python benchmarks/bench_commands.py [--variants q4,q8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from machine import describe, machine

from edgellm_sdk import Engine
from edgellm_sdk.commands import Command, CommandParser, Refusal
from edgellm_sdk.embed import Embedder
from edgellm_sdk.robot_demo import DEMO_COMMANDS
from edgellm_sdk.speculative import resolve_speculative

HERE = Path(__file__).resolve().parent
SETS = {  # dev: thresholds were chosen on it; adversarial: written outside the parser, then used to tune it;
    # heldout2: written after tuning and scored once before any change, then used to tune (2026-12-06);
    # heldout3: written 2026-12-06 without seeing the parser, scored before and after that change only
    "dev": "commands_dev.jsonl",
    "adversarial": "commands_adversarial.jsonl",
    "heldout2": "commands_heldout2.jsonl",
    "heldout3": "commands_heldout3.jsonl",
}


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / "data" / SETS[name]).read_text(encoding="utf-8").splitlines()]


ROWS = load("dev")


def same(expected: dict, command: Command) -> bool:
    got = command.as_dict()
    if set(got) != set(expected):
        return False
    return all(
        abs(got[k] - v) < 1e-6 if isinstance(v, (int, float)) and not isinstance(v, bool) else got[k] == v
        for k, v in expected.items()
    )


def run(engine, parser: CommandParser, constrained: bool, rows: list[dict] = ROWS) -> dict:
    stats = Counter()
    latency, errors = [], []
    model_latency = []  # requests the model had to decide (not fully forced by their schema)
    for row in rows:
        prefilled = engine.prefill_tokens
        t = time.perf_counter()
        if constrained:
            result = parser.parse(row["text"])
            stats["valid_json"] += 1
        else:
            c = engine.chat(parser.plan(row["text"])[0], max_tokens=64)
            try:
                result = DEMO_COMMANDS.validate(json.loads(c.text.strip()))
                stats["valid_json"] += 1
            except ValueError:
                result = Refusal("invalid JSON")
        latency.append(time.perf_counter() - t)
        if engine.prefill_tokens > prefilled:
            model_latency.append(latency[-1])
        expected = row["expected"]
        if expected.get("refuse"):
            stats["refusals_expected"] += 1
            if isinstance(result, Refusal):
                stats["refusals_correct"] += 1
                stats["exact"] += 1
            else:
                stats[f"{expected['refuse']}_accepted"] += 1
                stats["wrong_actions"] += 1
                errors.append((row["text"], result.as_dict()))
        elif isinstance(result, Command) and same(expected, result):
            stats["exact"] += 1
            stats["in_domain_exact"] += 1
        else:
            stats["wrong_actions"] += isinstance(result, Command)
            stats["needs_confirmation"] += isinstance(result, Refusal) and result.needs_confirmation
            stats["refused_wrongly"] += isinstance(result, Refusal)
            errors.append((row["text"], result.as_dict() if isinstance(result, Command) else result.reason))
    n = len(rows)
    in_domain = n - stats["refusals_expected"]
    refused = stats["refusals_correct"] + stats["refused_wrongly"]
    return {
        "n": n,
        "exact_match": stats["exact"] / n,
        "valid_json": stats["valid_json"] / n,
        "refusal_precision": stats["refusals_correct"] / refused if refused else 1.0,
        "refusal_recall": stats["refusals_correct"] / stats["refusals_expected"],
        "wrong_actions": stats["wrong_actions"],  # a command executed that was not asked for
        "unsafe_accepted": stats["unsafe_accepted"],
        "nonsense_accepted": stats["nonsense_accepted"] + stats["ood_accepted"],
        "in_domain_exact": stats["in_domain_exact"] / in_domain,
        "in_domain_needs_confirmation": stats["needs_confirmation"],
        "latency_ms_p50": 1000 * statistics.median(latency),
        "model_decided": len(model_latency),
        "latency_ms_p50_model_decided": 1000 * statistics.median(model_latency) if model_latency else None,
        "errors_sample": errors[:12],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m", help="installed model name or model directory")
    ap.add_argument("--variants", default="q4")
    ap.add_argument("--constrained-only", action="store_true")
    ap.add_argument("--sets-only", action="store_true", help="only the recommended set-up, on every set")
    ap.add_argument("--sets", default=",".join(SETS), help="which evaluation sets (comma-separated)")
    ap.add_argument("--out", help="results file (default: results/bench_commands[_sets].json)")
    args = ap.parse_args()
    pool = {t.lower() for t, _ in DEMO_COMMANDS.examples}
    for name in SETS:
        overlap = pool & {r["text"].lower() for r in load(name)}
        assert not overlap, f"few-shot examples must not be {name} requests: {overlap}"
    report = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "machine": machine(2), "results": {}}
    print(describe(report["machine"]))
    embedder = Embedder.load()
    for variant in args.variants.split(","):
        with Engine.load(args.model, variant=variant, threads=2) as engine:
            recommended = CommandParser(engine, DEMO_COMMANDS, embedder=embedder)
            setups = [
                ("constrained+embedder", recommended, True, "auto"),
                ("constrained+embedder, speculation off", recommended, True, "off"),
                ("constrained", CommandParser(engine, DEMO_COMMANDS), True, "auto"),
            ]
            if not args.constrained_only:
                setups.append(("unconstrained", recommended, False, "auto"))
            if args.sets_only:
                setups = []
            for set_name in [s for s in args.sets.split(",") if s != "dev" or args.sets_only]:  # dev: the set-ups below
                engine.speculative = resolve_speculative("auto")
                key = f"{variant}/constrained+embedder/{set_name}"
                report["results"][key] = r = run(engine, recommended, True, load(set_name))
                print(
                    key, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "errors_sample"}
                )
            for name, parser, constrained, speculative in setups:
                key = f"{variant}/{name}"
                engine.speculative = resolve_speculative(speculative)
                report["results"][key] = r = run(engine, parser, constrained)
                print(
                    key, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "errors_sample"}
                )
    suffix = "" if args.model == "smollm2-135m" else f"_{Path(args.model).name}"
    out = args.out or HERE / "results" / f"bench_commands{'_sets' if args.sets_only else ''}{suffix}.json"
    Path(out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
