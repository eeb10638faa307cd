"""The edgellm command line, run as a real subprocess."""

import json
import os
import re
import subprocess
import sys

import pytest

from edgellm_sdk.models.store import DEFAULT_MODEL, KNOWN_MODELS


def run(*args, home=None, stdin=None, timeout=120):
    env = dict(os.environ)
    if home:
        env["EDGELLM_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "edgellm_sdk", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_pull_and_models(tmp_path, tiny_gguf):
    r = run("pull", str(tiny_gguf[0]), "--name", "tiny", home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "variants: fp32, q4, q8" in r.stdout
    r = run("models", "--json", home=tmp_path)
    listed = json.loads(r.stdout)
    assert listed[0]["name"] == "tiny" and set(listed[0]["variants"]) == {"fp32", "q8", "q4"}
    assert "tiny" in run("models", home=tmp_path).stdout


def test_unknown_model_is_a_clear_error(tmp_path):
    r = run("generate", "hi", "--model", "nope", home=tmp_path)
    assert r.returncode == 2
    known = ", ".join(sorted(KNOWN_MODELS))
    assert f"unknown model 'nope'; known models: {known} (or pass a model directory)" in r.stderr
    assert "gemma3-270m" in known and DEFAULT_MODEL in known
    r = run("generate", "hi", home=tmp_path)
    assert "edgellm pull smollm2-135m" in r.stderr


def test_bad_value_is_a_clear_error(default_store):
    r = run("generate", "hi", "--max-tokens", "-3")
    assert r.returncode == 2 and "max_tokens must be" in r.stderr


@pytest.mark.model
def test_generate_streams_answer_and_usage(default_store):
    r = run("generate", "What is the capital of France? Answer in one sentence.", "--max-tokens", "30")
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout
    assert re.search(r"finish=stop .* TTFT \d+ ms, decode [\d.]+ tok/s", r.stderr)


@pytest.mark.model
def test_chat_reads_piped_stdin(default_store):
    r = run(
        "chat", "--max-tokens", "30", stdin="What is the capital of France? Answer in one sentence.\nAnd of Italy?\n"
    )
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert "Paris" in lines[0] and "Rome" in r.stdout


def test_chat_stats_command(tmp_path, tiny_gguf):
    assert run("pull", str(tiny_gguf[0]), "--name", "tiny", home=tmp_path).returncode == 0
    r = run("chat", "--model", "tiny", "--max-tokens", "4", home=tmp_path, stdin="hello\n/stats\n")
    assert r.returncode == 0, r.stderr
    assert "prefix_cache: " in r.stdout and "response_cache: off" in r.stdout


def test_models_reports_variant_sizes_with_weights(tmp_path, tiny_gguf):
    assert run("pull", str(tiny_gguf[0]), "--name", "tiny", home=tmp_path).returncode == 0
    listed = json.loads(run("models", "--json", home=tmp_path).stdout)[0]["variants"]
    onnx_dir = tmp_path / "models" / "tiny" / "onnx"
    assert listed["fp32"] == sum(p.stat().st_size for p in onnx_dir.glob("model.onnx*"))


def test_generate_with_schema_file(tmp_path, default_store):
    schema = tmp_path / "cmd.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"action": {"enum": ["move", "stop"]}},
                "required": ["action"],
                "additionalProperties": False,
            }
        )
    )
    r = run("generate", "Stop the robot now.", "--schema", str(schema), "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["action"] in ("move", "stop")
    r = run("generate", "hi", "--schema", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "--schema" in r.stderr and "not a readable JSON file" in r.stderr
