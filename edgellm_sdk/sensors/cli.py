"""`edgellm sensors`: a source -> facts -> narrated status and alerts, on the terminal."""

from __future__ import annotations

import json
import sys
import time

from ..cli.common import add_model_args, cancel_on_sigint, duration, engine_from_args
from ..errors import SensorError


def add_parser(sub) -> None:
    p = sub.add_parser("sensors", help="narrate sensor data: serial://, mqtt://, file:// sources")
    p.add_argument(
        "--source",
        required=True,
        help="e.g. serial:///dev/ttyUSB0?format=csv, mqtt://localhost:1883/farm/#, file://log.csv?rate=10",
    )
    p.add_argument("--rules", help="thresholds, targets and labels (TOML, or YAML with PyYAML)")
    p.add_argument("--every", type=duration, default=60.0, help="status interval (default 60s)")
    p.add_argument("--for", dest="run_for", type=duration, help="stop after this long (default: until the source ends)")
    p.add_argument("--language", choices=("en", "zh"), default="en")
    p.add_argument("--context", default="", help="what the sensors are, for the narration")
    p.add_argument("--ask", action="append", help="a question answered from the facts at the end (repeatable)")
    p.add_argument("--no-model", action="store_true", help="template sentences only (no language model)")
    add_model_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per narration")
    p.set_defaults(func=cmd_sensors)


def cmd_sensors(args) -> int:
    from . import FactBook, Narrator, RuleSet, SensorAssistant, SensorPipeline, open_source

    rules = RuleSet.load(args.rules) if args.rules else RuleSet()
    engine = None
    if not args.no_model:
        engine = engine_from_args(args)
    source = open_source(args.source)
    facts = FactBook(rules, clock=None if source.kind == "file" else time.time)
    narrator = Narrator(engine, context=args.context, language=args.language)

    def printer(kind: str):
        def show(n) -> None:
            if args.json:
                print(
                    json.dumps(
                        {
                            "kind": kind,
                            "text": n.text,
                            "origin": n.origin,
                            "rejected": list(n.rejected),
                            "latency_s": round(n.latency_s, 3),
                        },
                        ensure_ascii=False,
                    ),
                    flush=True,
                )
            else:
                print(f"[{kind}] {n.text}" + (" (template)" if n.origin == "template" else ""), flush=True)

        return show

    cancel = cancel_on_sigint()
    with source:
        stats = SensorPipeline(
            source, narrator, facts, every_s=args.every, on_status=printer("status"), on_alert=printer("alert")
        ).run(duration_s=args.run_for, cancel=cancel)
        for question in args.ask or ():
            if engine is None:
                raise SensorError("--ask needs the language model: drop --no-model")
            printer("answer")(SensorAssistant(engine, facts, language=args.language).ask(question))
        s = source.stats
    print(
        f"{stats.readings} readings ({s.malformed_total} malformed, {s.dropped} dropped), {stats.statuses} "
        f"statuses, {stats.alerts} alerts, {stats.template_fallbacks} template fallbacks",
        file=sys.stderr,
    )
    if engine is not None:
        engine.close()
    return 0
