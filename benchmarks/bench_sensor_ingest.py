"""Sensor ingest throughput: CSV lines through a pseudo-terminal (opened like a USB port) and
QoS-1 messages through a real mosquitto broker, each written as fast as possible and read
by open_source() with a consumer that keeps up.

Checks that nothing is lost: every line written is a reading the consumer got, a reading the
queue dropped, a malformed line, or a skipped line (the CSV header), all counted in
source.stats; and every sequence number arrives.

    .venv/bin/python benchmarks/bench_sensor_ingest.py   # writes benchmarks/results/bench_sensor_ingest.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from machine import describe, machine
from sensor_fixtures import FakeArduino, Mosquitto, Publisher, mosquitto_binary, wait_until

from edgellm_sdk.sensors import open_source

TARGET_LINES_PER_S = 1000
MALFORMED_EVERY = 1000  # one line in 1000 is garbage, to check it is counted, not lost


class Consumer(threading.Thread):
    """Takes readings as they come, remembering the sequence numbers seen."""

    def __init__(self, source):
        super().__init__(daemon=True)
        self.source, self.seen, self.received = source, set(), 0
        self.last_at = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            reading = self.source.get(timeout=0.1)
            if reading is not None:
                self.received += 1
                self.seen.add(int(reading.values["seq"]))
                self.last_at = time.perf_counter()


def report(name: str, source, consumer: Consumer, written: int, expected_seqs: int, seconds: float) -> dict:
    stats = source.stats
    accounted = consumer.received + stats.dropped + stats.malformed_total + stats.skipped
    result = {
        "written": written,
        "received": consumer.received,
        "readings": stats.readings,
        "dropped": stats.dropped,
        "malformed": stats.malformed,
        "skipped": stats.skipped,
        "lost": written - accounted,
        "missing_sequence_numbers": expected_seqs - len(consumer.seen),
        "seconds": round(seconds, 3),
        "lines_per_s": round(written / seconds),
        "reconnects": stats.reconnects,
    }
    result["ok"] = (
        result["lost"] == 0
        and result["lines_per_s"] >= TARGET_LINES_PER_S
        and (result["missing_sequence_numbers"] == stats.dropped)
    )
    print(
        f"{name:>6}: {written} written in {seconds:.2f} s = {result['lines_per_s']:,} lines/s; "
        f"received {consumer.received}, dropped {stats.dropped}, malformed {stats.malformed_total}, "
        f"skipped {stats.skipped}, lost {result['lost']}"
    )
    return result


def bench_serial(lines: int, workdir: Path) -> dict:
    arduino = FakeArduino(workdir / "ttyUSB0")
    body, seqs = [], 0
    for i in range(lines - 1):  # + the header = `lines` lines written
        if i % MALFORMED_EVERY == MALFORMED_EVERY - 1:
            body.append("21.5,nan,\x00garbage")
        else:
            body.append(f"{seqs},{20 + (i % 100) / 10:.1f},{40 + i % 30}")
            seqs += 1
    payload = ("seq,temp_c,humidity\r\n" + "".join(line + "\r\n" for line in body)).encode()
    try:
        with open_source(f"serial://{arduino.path}?baud=115200&format=csv&name=bench") as source:
            consumer = Consumer(source)
            consumer.start()
            started = time.perf_counter()
            for offset in range(0, len(payload), 8192):  # as fast as the pty takes it
                arduino.write(payload[offset : offset + 8192])
            done = wait_until(lambda: source.stats.lines >= lines and len(source._queue) == 0, 60, 0.005)
            time.sleep(0.05)
            seconds = (consumer.last_at or time.perf_counter()) - started
            consumer.stop.set()
            consumer.join(2)
            result = report("serial", source, consumer, lines, seqs, seconds)
            result["completed"] = done
            return result
    finally:
        arduino.close()


def bench_mqtt(messages: int, workdir: Path) -> dict:
    broker = Mosquitto(workdir).start()
    publisher = Publisher(broker.port)
    try:
        with open_source(f"mqtt://127.0.0.1:{broker.port}/bench/#?qos=1&name=bench") as source:
            consumer = Consumer(source)
            consumer.start()
            payloads, seqs = [], 0
            for i in range(messages):
                if i % MALFORMED_EVERY == MALFORMED_EVERY - 1:
                    payloads.append(b"\xff not json")
                else:
                    payloads.append(json.dumps({"seq": seqs, "temp_c": 20 + (i % 100) / 10}).encode())
                    seqs += 1
            started = time.perf_counter()
            infos = [publisher.publish("bench/gh1", payload, qos=1, wait=False) for payload in payloads]
            for info in infos:
                info.wait_for_publish(timeout=30)
            done = wait_until(lambda: source.stats.lines >= messages and len(source._queue) == 0, 60, 0.005)
            time.sleep(0.05)
            seconds = (consumer.last_at or time.perf_counter()) - started
            consumer.stop.set()
            consumer.join(2)
            result = report("mqtt", source, consumer, messages, seqs, seconds)
            result["completed"] = done
            result["qos"] = 1
            return result
    finally:
        publisher.close()
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_sensor_ingest.json")
    args = parser.parse_args()

    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "target_lines_per_s": TARGET_LINES_PER_S,
        "malformed_every": MALFORMED_EVERY,
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["serial_pty_csv"] = bench_serial(args.lines, Path(tmp))
        if mosquitto_binary():
            results["mqtt_qos1_json"] = bench_mqtt(args.messages, Path(tmp))
        else:
            print("mqtt: skipped, mosquitto is not installed (apt-get install mosquitto)")
            results["mqtt_qos1_json"] = {"skipped": "mosquitto not installed"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(results["machine"]))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r.get("ok", True) for r in results.values() if isinstance(r, dict) and "ok" in r) else 1


if __name__ == "__main__":
    sys.exit(main())
