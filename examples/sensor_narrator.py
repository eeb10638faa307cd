"""Sensor numbers -> short sentences: replay a recorded greenhouse log (or any source URL).

python examples/sensor_narrator.py                                    # the bundled log, fast
python examples/sensor_narrator.py "mqtt://localhost:1883/farm/#"     # live, Ctrl-C to stop
"""

import sys
import time
from pathlib import Path

from edgellm_sdk import Engine
from edgellm_sdk.sensors import FactBook, Narrator, RuleSet, SensorAssistant, SensorPipeline, open_source

DATA = Path(__file__).resolve().parent / "data"
url = sys.argv[1] if len(sys.argv) > 1 else f"file://{DATA / 'greenhouse2.csv'}?rate=0&name=greenhouse2"

with Engine.load("smollm2-135m") as engine, open_source(url) as source:
    live_clock = None if source.kind == "file" else time.time  # a replay runs on recorded time
    facts = FactBook(RuleSet.load(DATA / "greenhouse_rules.toml"), clock=live_clock)
    narrator = Narrator(engine, context="A greenhouse with a vent motor.")  # instructions prefilled once
    SensorPipeline(
        source,
        narrator,
        facts,
        every_s=60,
        on_status=lambda n: print("STATUS:", n.text),
        on_alert=lambda n: print("ALERT: ", n.text),
    ).run()
    print("FACTS:\n" + facts.facts().text())  # every number above comes from here
    print("Q&A:   ", SensorAssistant(engine, facts).ask("Is greenhouse 2 too hot?").text)
