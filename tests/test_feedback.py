"""FeedbackLog: approved examples on disk, redacted, bounded, readable by the fine-tuning toolchain."""

import json
import os
import subprocess
import sys
import threading

import pytest

from edgellm_sdk import MissingDependency
from edgellm_sdk.feedback import FeedbackLog
from edgellm_sdk.toolchain.data import read_examples

pytest.importorskip("presidio_analyzer")
SYSTEM = "You turn requests into robot commands as JSON."


def test_lines_are_redacted_task_examples(tmp_path):
    log = FeedbackLog(tmp_path / "feedback.jsonl", system=SYSTEM)
    log.add_turn("remind me to call Anna on 13812345678", "OK, I will remind you to call <PERSON>.")
    log.add_command(
        "drive to 12 Oak Lane and text John Smith", {"command": "drive", "to": "12 Oak Lane", "notify": "John Smith"}
    )
    log.add_narration(
        "temperature=23.5 humidity=61", "It is 23.5 °C and fairly humid.", system="Describe the readings."
    )
    raw = (tmp_path / "feedback.jsonl").read_text(encoding="utf-8")
    assert "13812345678" not in raw and "Anna" not in raw and "John Smith" not in raw and "Oak Lane" not in raw
    examples = read_examples(tmp_path / "feedback.jsonl", need_target=True)  # what `edgellm finetune --data` reads
    assert [e.match for e in examples] == ["exact", "json", "exact"]
    assert examples[0].messages == (
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "remind me to call <PERSON> on <PHONE>"},
    )
    assert json.loads(examples[1].target) == {"command": "drive", "to": "<ADDRESS>", "notify": "<PERSON>"}
    assert examples[2].messages[0]["content"] == "Describe the readings." and "23.5 °C" in examples[2].target
    assert [x["kind"] for x in log.examples()] == ["turn", "command", "narration"] and len(log) == 3
    assert os.stat(tmp_path / "feedback.jsonl").st_mode & 0o077 == 0  # readable by the owner only


def test_opt_out_keeps_text_as_given(tmp_path):
    log = FeedbackLog(tmp_path / "f.jsonl", redact_pii=False)
    log.add_turn("call Anna on 13812345678", "Calling Anna.")
    assert "13812345678" in (tmp_path / "f.jsonl").read_text(encoding="utf-8")


def test_byte_budget_drops_the_oldest_lines(tmp_path):
    log = FeedbackLog(tmp_path / "f.jsonl", max_bytes=2048, redact_pii=False)
    for i in range(40):
        log.add_turn(f"question number {i}", f"answer number {i}")
    assert log.nbytes <= 2048 and log.dropped > 0
    kept = [x["target"] for x in log.examples()]
    assert kept[-1] == "answer number 39" and kept == [f"answer number {i}" for i in range(40 - len(kept), 40)]
    with pytest.raises(ValueError, match="exceeds max_bytes"):
        log.add_turn("x" * 3000, "y")


def test_a_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.jsonl"
    log = FeedbackLog(path, redact_pii=False)
    log.add_turn("first", "one")
    before = path.read_bytes()

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        log.add_turn("second", "two")
    monkeypatch.undo()
    assert path.read_bytes() == before and len(read_examples(path, need_target=True)) == 1


def test_threads_and_processes_lose_no_lines(tmp_path):
    path = tmp_path / "f.jsonl"
    log = FeedbackLog(path, redact_pii=False)
    code = (
        "import sys; from edgellm_sdk.feedback import FeedbackLog; log = FeedbackLog(sys.argv[1], redact_pii=False)\n"
        "for i in range(20): log.add_turn(f'process {i}', 'ok')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)])
    threads = [
        threading.Thread(target=lambda n=n: [log.add_turn(f"thread {n} {i}", "ok") for i in range(10)])
        for n in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert proc.wait(timeout=60) == 0
    assert len(read_examples(path, need_target=True)) == 50


def test_bad_input_and_missing_extra(tmp_path, monkeypatch):
    log = FeedbackLog(tmp_path / "f.jsonl", redact_pii=False)
    with pytest.raises(ValueError, match="kind must be one of"):
        log.add("a", "b", kind="gossip")
    with pytest.raises(ValueError, match="non-empty"):
        log.add_turn("  ", "b")
    with pytest.raises(ValueError, match="target must be"):
        log.add_turn("a", "")
    monkeypatch.setattr("edgellm_sdk.feedback.privacy_available", lambda: False)
    with pytest.raises(MissingDependency, match=r"edgellm-sdk\[privacy\].*redact_pii=False"):
        FeedbackLog(tmp_path / "g.jsonl")
