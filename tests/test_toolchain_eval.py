"""`edgellm eval` / `edgellm tradeoff` on the tiny model (real onnxruntime sessions), and one
perplexity check on the real default model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgellm_sdk.errors import ToolchainError
from edgellm_sdk.profiles import PROFILE_DIR
from edgellm_sdk.toolchain.evaluate import evaluate, split_model, windows
from edgellm_sdk.toolchain.tradeoff import markdown, pareto, plot, tradeoff

REPO = Path(__file__).resolve().parents[1]
TEXT = "hello world, the robot says hello to the world and the world says hello back. " * 2


@pytest.fixture(scope="module")
def tiny(tiny_store) -> str:
    return str(tiny_store.path("tiny"))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "text.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def task_file(tiny, tmp_path_factory) -> Path:
    """A task whose targets are the tiny model's own greedy answers (so the expected accuracy is known)."""
    from edgellm_sdk import Engine

    prompts = [
        {"prompt": "hello"},
        {"prompt": "turn left"},
        {"prompt": "the world", "system": "Be terse."},
        {"messages": [{"role": "user", "content": "say hello"}]},
    ]
    with Engine.load(tiny, variant="fp32", threads=1) as engine:
        for p in prompts:
            messages = p.get("messages") or [{"role": "user", "content": p["prompt"]}]
            if "system" in p:
                messages = [{"role": "system", "content": p["system"]}, *messages]
            p["target"] = engine.complete(messages, max_tokens=6).text
    path = tmp_path_factory.mktemp("eval") / "task.jsonl"
    path.write_text(
        "# tiny task: targets are the model's own answers\n" + "".join(json.dumps(p) + "\n" for p in prompts)
    )
    return path


def test_windows_predict_every_token_once():
    spans = windows(10, 4, 100)
    assert spans == [(0, 4), (3, 7), (6, 10)]
    targets = [t for s, e in spans for t in range(s + 1, e)]
    assert targets == list(range(1, 10))
    assert [t for s, e in windows(10, 4, 5) for t in range(s + 1, e)] == [1, 2, 3, 4, 5]  # max_predictions


def test_perplexity_is_exp_mean_nll_of_the_model_logits(tiny, tiny_store, text_file):
    from edgellm_sdk.backends.ort import OrtBackend
    from edgellm_sdk.tokenizer import Tokenizer

    report = evaluate(tiny, "fp32", ppl_text=text_file, window=48, threads=1)
    ids = Tokenizer.from_dir(tiny).encode(TEXT)
    assert report.ppl_tokens == len(ids) - 1 and report.ppl_text_tokens == len(ids)
    # independently: batched logits of each window, numpy log-softmax, mean NLL
    nll = []
    for start in range(0, len(ids) - 1, 47):
        chunk = ids[start : start + 48]
        backend = OrtBackend(tiny_store.path("tiny") / "onnx/model.onnx", max_context=64, threads=1)
        logits = backend.forward(chunk, all_logits=True).astype(np.float64)
        logp = logits - logits.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        nll += [-logp[i, chunk[i + 1]] for i in range(len(chunk) - 1)]
        backend.close()
    assert len(nll) == report.ppl_tokens
    assert report.nll == pytest.approx(np.mean(nll), rel=1e-4)
    assert report.ppl == pytest.approx(np.exp(np.mean(nll)), rel=1e-3)


def test_reference_agreement_and_kl(tiny, text_file):
    same = evaluate(tiny, "fp32", ppl_text=text_file, reference_variant="fp32", threads=1)
    assert same.reference == "tiny:fp32"
    assert same.top1_agreement == 1.0 and same.kl_mean == pytest.approx(0, abs=1e-12)
    assert same.reference_ppl == pytest.approx(same.ppl, rel=1e-9)

    q4 = evaluate(tiny, "q4", ppl_text=text_file, reference=tiny, reference_variant="fp32", threads=1)
    assert q4.kl_mean > 0 and 0 < q4.top1_agreement <= 1
    assert q4.reference_ppl == pytest.approx(same.ppl, rel=1e-6)  # the reference scored the same text


def test_task_accuracy_exact_match_with_line_numbers(tiny, task_file, tmp_path):
    report = evaluate(tiny, "fp32", task=task_file, max_answer_tokens=6, threads=1)
    assert (report.task_accuracy, report.task_n, report.failures) == (1.0, 4, [])

    lines = task_file.read_text().splitlines()
    wrong = json.loads(lines[3])  # file line 4: the third example
    wrong["target"] = "certainly not " + wrong["target"]
    lines[3] = json.dumps(wrong)
    corrupted = tmp_path / "task.jsonl"
    corrupted.write_text("\n".join(lines) + "\n")
    report = evaluate(tiny, "fp32", task=corrupted, max_answer_tokens=6, threads=1)
    assert report.task_accuracy == pytest.approx(3 / 4) and report.task_correct == 3
    assert [f["line"] for f in report.failures] == [4]
    assert report.failures[0]["expected"].startswith("certainly not") and report.failures[0]["prompt"] == "the world"
    assert "line 4: expected" in report.summary()


def test_answer_perplexity_is_the_targets_nll_after_the_prompt(tiny, tiny_store, task_file, tmp_path):
    from edgellm_sdk import Engine
    from edgellm_sdk.backends.ort import OrtBackend
    from edgellm_sdk.toolchain.data import read_examples
    from edgellm_sdk.toolchain.evaluate import answer_ids

    report = evaluate(tiny, "fp32", task=task_file, max_answer_tokens=6, threads=1)
    # independently: one batched forward over prompt + answer per example, numpy log-softmax
    nll, n = 0.0, 0
    with Engine.load(tiny, variant="fp32", threads=1) as engine:
        for ex in read_examples(task_file, need_target=True):
            prompt = engine.prompt_ids(list(ex.messages))
            answer = answer_ids(engine, list(ex.messages), ex.target, prompt)
            assert answer[:-1] == engine.tokenizer.encode(ex.target) and answer[-1] in engine.tokenizer.eos_ids
            backend = OrtBackend(tiny_store.path("tiny") / "onnx/model.onnx", max_context=128, threads=1)
            logits = backend.forward(prompt + answer, all_logits=True).astype(np.float64)
            backend.close()
            logp = logits - logits.max(-1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
            nll -= sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(answer))
            n += len(answer)
    assert report.answer_tokens == n
    assert report.answer_nll == pytest.approx(nll / n, rel=1e-4)
    assert report.answer_ppl == pytest.approx(np.exp(nll / n), rel=1e-4)
    assert "answer ppl" in report.summary()

    wrong = [json.loads(line) for line in task_file.read_text().splitlines()[1:]]
    for ex in wrong:
        ex["target"] = "certainly not " + ex["target"]
    worse = tmp_path / "worse.jsonl"
    worse.write_text("".join(json.dumps(ex) + "\n" for ex in wrong))
    assert evaluate(tiny, "fp32", task=worse, max_answer_tokens=6, threads=1).answer_nll > report.answer_nll

    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"prompt": "hello", "target": "hello world " * 40}) + "\n")
    with pytest.raises(ToolchainError, match=r"line 1: the prompt and target are \d+ tokens, more than the 64"):
        evaluate(tiny, "fp32", task=long, max_context=64, threads=1)


def test_bad_inputs_fail_before_loading_with_the_line(tiny, tmp_path, text_file):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "target": "x"}\n{"prompt": "oops", "target": \n{"prompt": "no target"}\n')
    with pytest.raises(ToolchainError, match=r"line 2: not valid JSON[\s\S]*line 3: needs \"target\""):
        evaluate(tiny, task=bad)
    with pytest.raises(ToolchainError, match="nothing to evaluate"):
        evaluate(tiny)
    with pytest.raises(ToolchainError, match="give --ppl"):
        evaluate(tiny, task=bad, reference_variant="fp32")
    with pytest.raises(ToolchainError, match="does not exist"):
        evaluate(tiny, ppl_text=tmp_path / "missing.txt")


def test_split_model():
    assert split_model("smollm2-135m:q4") == ("smollm2-135m", "q4")
    assert split_model(":fp32") == ("", "fp32")
    assert split_model("smollm2-135m") == ("smollm2-135m", None)
    assert split_model("./models/a:b/c") == ("./models/a:b/c", None)


def test_pareto_front():
    # (accuracy, speed, -rss): c is dominated by a; b trades accuracy for speed; d ties a exactly
    points = [(0.9, 10, -500), (0.8, 30, -300), (0.85, 9, -600), (0.9, 10, -500)]
    assert pareto(points) == [True, True, False, True]


def test_tradeoff_writes_json_markdown_png_and_recommends(tiny, tiny_store, text_file, task_file, tmp_path):
    board = (PROFILE_DIR / "rpi4.toml").read_text().replace('name = "rpi4"', 'name = "matchbox"')
    board = board.replace("budget_mb = 1024", "budget_mb = 64")
    (tmp_path / "matchbox.toml").write_text(board)
    out = tmp_path / "out"
    report = tradeoff(
        [tiny],
        ppl_text=text_file,
        task=task_file,
        reference=":fp32",
        runs=1,
        max_tokens=8,
        out_dir=out,
        max_ppl_tokens=64,
        threads=1,
        store=tiny_store,
        profiles=["rpi4", str(tmp_path / "matchbox.toml")],
    )
    saved = json.loads((out / "tradeoff.json").read_text())
    assert saved["pareto"] == report["pareto"] and saved["metric"] == "task_accuracy"
    rows = saved["rows"]
    assert sorted(r["variant"] for r in rows) == ["fp32", "q4", "q8"]
    for r in rows:
        assert r["bench_error"] is None, r["bench_error"]
        assert r["decode_tok_s"] > 0 and r["ttft_ms"] > 0 and r["peak_rss_mb"] > 50 and r["file_mb"] > 0
        assert r["eval"]["ppl_tokens"] == 64 and r["top1_agreement"] is not None
        assert r["answer_ppl"] == r["eval"]["answer_ppl"] > 1
    assert next(r for r in rows if r["variant"] == "fp32")["task_accuracy"] == 1.0
    front = pareto([(r["accuracy"], r["decode_tok_s"], -r["peak_rss_mb"]) for r in rows])
    assert [r["pareto"] for r in rows] == front and any(front)

    rpi4, matchbox = saved["recommendations"]["rpi4"], saved["recommendations"]["matchbox"]
    assert rpi4["variant"] in saved["pareto"] and "Pareto variant" in rpi4["why"] and "1024 MB" in rpi4["why"]
    assert matchbox["variant"] is None and "nothing fits the 64 MB budget" in matchbox["why"]

    md = (out / "tradeoff.md").read_text()
    assert (
        "| variant | file MB | task acc | answer ppl | ppl |" in md
        and "**yes**" in md
        and "| matchbox | 64 | — |" in md
    )
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "tradeoff.png" in md


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch, tmp_path):
    report = {
        "rows": [],
        "metric": "ppl",
        "settings": {"reference": None, "task": None, "ppl_text": "t.txt", "runs": 1, "max_tokens": 8},
        "host": "x86_64",
        "created": "now",
        "recommendations": {},
    }
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    report["plot"] = plot(report, tmp_path / "tradeoff.png")
    assert report["plot"] is None and not (tmp_path / "tradeoff.png").exists()
    assert "`pip install matplotlib`" in markdown(report)


def test_cli_eval_and_tradeoff(tiny, text_file, task_file, tmp_path, capsys):
    from edgellm_sdk.toolchain.cli_eval import add_parser

    parser = argparse.ArgumentParser(prog="edgellm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "eval",
            tiny,
            "--variant",
            "q8",
            "--ppl",
            str(text_file),
            "--task",
            str(task_file),
            "--reference",
            ":fp32",
            "--max-answer-tokens",
            "6",
            "--threads",
            "1",
            "--json",
        ]
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == "q8" and out["reference"] == "tiny:fp32" and out["task_n"] == 4 and out["ppl"] > 0

    args = parser.parse_args(
        [
            "tradeoff",
            f"{tiny}:q4",
            "--ppl",
            str(text_file),
            "--out",
            str(tmp_path / "t"),
            "--runs",
            "1",
            "--max-tokens",
            "4",
            "--max-ppl-tokens",
            "16",
            "--threads",
            "1",
            "--profile",
            "rpi5",
        ]
    )
    assert args.func(args) == 0
    assert "| `tiny:q4` |" in capsys.readouterr().out
    assert list(json.loads((tmp_path / "t" / "tradeoff.json").read_text())["recommendations"]) == ["rpi5"]


@pytest.mark.model
def test_default_model_q4_perplexity_within_a_few_percent_of_fp32(default_store):
    report = evaluate(
        "smollm2-135m",
        "q4",
        ppl_text=REPO / "benchmarks/data/heldout_en.txt",
        reference_variant="fp32",
        max_ppl_tokens=96,
        threads=2,
        store=default_store,
    )
    assert report.ppl_tokens == 96 and report.reference == "smollm2-135m:fp32"
    assert 5 < report.reference_ppl < 100  # a real model on English text, not a broken graph
    assert abs(report.ppl / report.reference_ppl - 1) < 0.03
    assert report.top1_agreement > 0.9 and 0 < report.kl_mean < 0.1
