"""Narration on the default model: latency and how often the model's text passes the checks.

Replays examples/data/greenhouse2.csv (180 readings, a temperature alert, a current spike) and
narrates the facts every 20 readings (status) and at each alert, then asks five questions.
For each narration: latency, origin (model / template / cache) and why the model's text was
rejected (a number the facts lack, no number of the facts, looping, deadline).

    .venv/bin/python benchmarks/bench_sensor_narration.py [--model smollm2-135m] [--variant q4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from machine import describe, machine

from edgellm_sdk import Engine
from edgellm_sdk.sensors import FactBook, Narrator, RuleSet, SensorAssistant, open_source
from edgellm_sdk.sensors.narrator import narration_data, unsupported_numbers

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "examples" / "data" / "greenhouse2.csv"
RULES = ROOT / "examples" / "data" / "greenhouse_rules.toml"
QUESTIONS = [
    "Is greenhouse 2 too hot?",
    "What is the humidity?",
    "Is the vent motor working normally?",
    "How fast is the temperature rising?",
    "温室太热了吗？",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m", help="installed model name or model directory")
    ap.add_argument("--variant", default="q4")
    ap.add_argument("--out", type=Path, help="default: results/bench_sensor_narration.json (default model)")
    args = ap.parse_args()
    rows = []
    with Engine.load(args.model, variant=args.variant, threads=2) as engine:
        for language in ("en", "zh"):
            book = FactBook(RuleSet.load(RULES), clock=None)
            narrator = Narrator(engine, context="A greenhouse with a vent motor.", language=language)
            with open_source(f"file://{LOG}?rate=0&name=greenhouse2") as source:
                for i, reading in enumerate(source, 1):
                    alerts = tuple(e for e in book.add(reading) if e.severity == "alert")
                    if alerts or i % 20 == 0:
                        facts = book.facts()
                        n = narrator.narrate(facts, events=alerts)
                        leaked = unsupported_numbers(n.text, narration_data(facts, alerts))
                        rows.append(
                            {
                                "kind": "alert" if alerts else "status",
                                "language": language,
                                "origin": n.origin,
                                "latency_s": n.latency_s,
                                "rejected_numbers": list(n.rejected),
                                "leaked_numbers": leaked,
                                "text": n.text,
                            }
                        )
        assistant = SensorAssistant(engine, book)
        for q in QUESTIONS:
            t = time.perf_counter()
            n = assistant.ask(q)
            rows.append(
                {
                    "kind": "answer",
                    "language": "en",
                    "origin": n.origin,
                    "latency_s": time.perf_counter() - t,
                    "rejected_numbers": list(n.rejected),
                    "leaked_numbers": unsupported_numbers(n.text, book.facts().text()),
                    "question": q,
                    "text": n.text,
                }
            )
    summary = {}
    for kind in ("status", "alert", "answer"):
        sel = [r for r in rows if r["kind"] == kind]
        generated = [r for r in sel if r["origin"] != "cache"]
        summary[kind] = {
            "n": len(sel),
            "model_text_used": sum(r["origin"] == "model" for r in sel),
            "template_fallbacks": sum(r["origin"] == "template" for r in sel),
            "rejected_for_numbers": sum(bool(r["rejected_numbers"]) for r in sel),
            "numbers_absent_from_facts": sum(len(r["leaked_numbers"]) for r in sel),
            "latency_s_median": statistics.median(r["latency_s"] for r in generated) if generated else None,
        }
    report = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "variant": args.variant, "summary": summary}
    report["rows"] = rows
    default = (
        "bench_sensor_narration.json"
        if args.model == "smollm2-135m"
        else f"bench_sensor_narration_{Path(args.model).name}.json"
    )
    out = args.out or ROOT / "benchmarks" / "results" / default
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for kind, s in summary.items():
        print(kind, s)


if __name__ == "__main__":
    main()
