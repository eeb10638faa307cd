import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_chat_stream_example_runs(default_store):
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "chat_stream.py"), "What is the capital of France? Answer in one sentence."],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout and "tok/s" in r.stdout


def test_robot_commands_example_runs(default_store):
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "robot_commands.py"), "turn left 90 degrees", "move forward 50 meters"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "EXECUTE {'command': 'turn'" in lines[0] and "REFUSED" in lines[1]


def test_sensor_narrator_example_runs(default_store):
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "sensor_narrator.py")], capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stderr
    assert "ALERT:" in r.stdout and "STATUS:" in r.stdout and "greenhouse 2 temperature is 31.2 °C" in r.stdout


def test_voice_assistant_example_runs(default_store, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "voice_assistant.py"),
            str(EXAMPLES / "data" / "question.wav"),
            str(tmp_path / "answer.wav"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=EXAMPLES.parent,
    )
    assert r.returncode == 0, r.stderr
    assert "heard: What is the capital of France?" in r.stdout and (tmp_path / "answer.wav").stat().st_size > 10000
