"""The four decode workloads of bench_decode.py, built from the SDK's own prompts.

- chat: open questions a person asks a robot or speaker, answers up to 128 tokens;
- narration: the Narrator's prompts for greenhouse2.csv (a status every 20 readings and each
  alert) and robot status reports that restate every reading, up to 64 / 96 tokens;
- commands: CommandParser's prompts and schemas (few-shot examples by MiniLM retrieval) for
  every 9th request of commands_dev.jsonl, the JSON under its schema;
- voice: short questions with VoiceLoop's system prompt, up to 48 tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("chat", "narration", "commands", "voice")

CHAT = [
    "Explain in two sentences why robots need to run language models locally.",
    "Write a short friendly poem about a vacuum robot.",
    "What should I check before taking my drone out in the rain?",
    "Give me three tips for keeping a greenhouse healthy in summer.",
    "How does a robot vacuum find its way back to the dock?",
    "Tell me a fun fact about octopuses.",
]
REPORTS = [
    (
        "Battery 64 %, left motor current 2.1 A, right motor current 1.8 A, position x=3.2 m y=-1.5 m, heading 87 "
        "degrees. Report the robot status to the operator, restating every value."
    ),
    (
        "Kitchen 21.5 °C and 40 % humidity; bedroom 19 °C and 55 % humidity; garage 12 °C. Summarize each room with "
        "its readings."
    ),
    (
        "Delivery log: parcel A to room 204 at 09:15, parcel B to room 311 at 09:42, parcel C to room 118 at 10:05. "
        "Read the log back to the front desk."
    ),
]
VOICE = [
    "How many legs does a spider have?",
    "What is the boiling point of water?",
    "Is it safe to touch a hot stove?",
    "What day comes after Monday?",
    "How many minutes are in an hour?",
    "What color are bananas?",
    "What is two plus three?",
    "Say good night to the kids.",
]


def narration_messages() -> list[dict]:
    from edgellm_sdk.sensors import FactBook, RuleSet, open_source
    from edgellm_sdk.sensors.narrator import INSTRUCTIONS, PROMPTS, narration_data

    log = ROOT / "examples" / "data" / "greenhouse2.csv"
    book = FactBook(RuleSet.load(ROOT / "examples" / "data" / "greenhouse_rules.toml"), clock=None)
    system = {"role": "system", "content": INSTRUCTIONS["en"] + "\nContext: A greenhouse with a vent motor."}
    out = []
    with open_source(f"file://{log}?rate=0&name=greenhouse2") as source:
        for i, reading in enumerate(source, 1):
            alerts = tuple(e for e in book.add(reading) if e.severity == "alert")
            if alerts or i % 20 == 0:
                data = narration_data(book.facts(), alerts)
                out.append({"messages": [system, {"role": "user", "content": PROMPTS["en"] + data}], "max_tokens": 64})
    return out


def command_requests() -> list[dict]:
    from edgellm_sdk import Engine
    from edgellm_sdk.commands import CommandParser
    from edgellm_sdk.embed import Embedder
    from edgellm_sdk.robot_demo import DEMO_COMMANDS

    rows = [
        json.loads(line)
        for line in (ROOT / "benchmarks" / "data" / "commands_dev.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    with Engine.load("smollm2-135m", threads=2, prefix_cache=False) as engine:
        parser = CommandParser(engine, DEMO_COMMANDS, embedder=Embedder.load("minilm-l6"), max_tokens=64)
        out = []
        for row in rows[::9]:
            messages, schema = parser.plan(row["text"])
            out.append({"messages": messages, "schema": schema, "max_tokens": 64})
    return out


def build_workloads() -> dict[str, list[dict]]:
    user = lambda text: [{"role": "user", "content": text}]
    from edgellm_sdk.speech.voice import SYSTEM

    return {
        "chat": [{"messages": user(t), "max_tokens": 128} for t in CHAT],
        "narration": narration_messages() + [{"messages": user(t), "max_tokens": 96} for t in REPORTS],
        "commands": command_requests(),
        "voice": [{"messages": [{"role": "system", "content": SYSTEM}, *user(t)], "max_tokens": 48} for t in VOICE],
    }
