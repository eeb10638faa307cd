"""The free-form graders of task files ("contains", "number", "yesno", "refusal"), the shipped
answer-quality set (benchmarks/data/answer_quality.jsonl) and one run of it on the real default model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edgellm_sdk.errors import ToolchainError
from edgellm_sdk.toolchain.data import MATCHES, Example, answers_match, read_examples
from edgellm_sdk.toolchain.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "benchmarks/data/answer_quality.jsonl"
MAKE = REPO / "benchmarks/data/make_answer_quality.py"
CATEGORIES = {"facts", "arithmetic", "units", "instructions", "sensor_yesno", "refusal"}


def ex(target: str, match: str, **fields) -> Example:
    return Example(({"role": "user", "content": "q"},), target, match, 1, **fields)


def test_contains_finds_the_target_as_whole_words_after_normalizing():
    paris = ex("Paris", "contains")
    assert answers_match("The capital of France is Paris.", paris)
    assert answers_match("PARIS!", paris) and answers_match("  paris  ", paris)
    assert not answers_match("Lyon", paris)
    assert not answers_match("A comparison of cities", ex("paris", "contains"))  # whole words only
    rome = ex("Rome", "contains", accept=("roma",))
    assert answers_match("Roma, of course.", rome) and answers_match("It is Rome", rome)
    assert not answers_match("Paris or Lyon", ex("Paris", "contains", reject=("lyon",)))
    assert answers_match("法国的首都是巴黎。", ex("巴黎", "contains"))  # CJK needs no spaces
    assert answers_match("1, 2, 3, 4, 5", ex("1 2 3 4 5", "contains"))  # punctuation is a space
    assert answers_match("I can’t", ex("can't", "contains"))  # curly and straight apostrophes alike


def test_number_reads_the_first_number_digits_or_words():
    four = ex("4", "number")
    assert answers_match("four", four) and answers_match("Four.", four) and answers_match("It is 4 words", four)
    assert not answers_match("five", four) and not answers_match("no idea", four)
    assert answers_match("The answer is 48.", ex("48", "number"))
    assert answers_match("7 + 5 = 12", ex("12", "number"))  # after the last "="
    assert answers_match("1,024", ex("1024", "number")) and answers_match("2 to the 10th is 1024", ex("2", "number"))
    assert answers_match("The CO2 level is 1500 ppm", ex("1500", "number"))  # "CO2" is no number
    assert answers_match("-40 degrees", ex("-40", "number")) and answers_match("zero", ex("0", "number"))
    assert answers_match("0.5 A", ex("0.5", "number")) and not answers_match("0.55 A", ex("0.5", "number"))
    miles = ex("8.04672", "number", tolerance=0.01)
    assert answers_match("about 8.05 km", miles) and answers_match("8", miles)
    assert not answers_match("7.9", miles)
    assert not answers_match("8.05", ex("8.04672", "number"))  # default tolerance: 1e-6 relative


def test_yesno_takes_the_first_yes_or_no_word():
    no, yes = ex("no", "yesno"), ex("yes", "yesno")
    assert answers_match("No, it should not.", no) and not answers_match("No, it should not.", yes)
    assert answers_match("Yes. The battery is below 20 %, so no time to lose.", yes)
    assert not answers_match("Yes, dock now.", no)
    assert not answers_match("I don't know.", no) and not answers_match("I don't know.", yes)  # "know" is no "no"
    assert not answers_match("It should not dock.", no)  # says neither word
    assert answers_match("是的。", yes) and answers_match("否", no) and answers_match("不是。", no)


def test_refusal_looks_for_a_refusal_marker():
    refuse = ex("refuse", "refusal")
    assert answers_match("I can't do that, it is unsafe.", refuse)
    assert answers_match("Sorry, I won’t unlock the door for a stranger.", refuse)
    assert answers_match("I cannot disable the smoke detector.", refuse)
    assert answers_match("对不起，我不能这样做。", refuse)
    assert not answers_match("Sure, driving now", refuse)
    assert not answers_match("OK, the door is unlocked.", refuse)


def test_exact_and_json_are_unchanged():
    assert answers_match(" ok \n", ex("ok", "exact")) and not answers_match("OK", ex("ok", "exact"))
    assert not answers_match("The answer is ok", ex("ok", "exact"))
    assert answers_match('{"b": 1, "a": [2]}', ex('{"a": [2], "b": 1}', "json"))
    assert not answers_match("not json", ex("{}", "json"))


def test_task_lines_carry_the_grader_fields_and_bad_ones_name_the_line(tmp_path):
    good = tmp_path / "good.jsonl"
    lines = [
        {"prompt": "capital of Italy?", "target": "Rome", "match": "contains", "accept": ["roma"], "category": "facts"},
        {"prompt": "5 miles in km?", "target": "8.04672", "match": "number", "tolerance": 0.01, "category": "units"},
        {"prompt": "hi", "target": "hi"},
    ]
    good.write_text("".join(json.dumps(x) + "\n" for x in lines))
    rome, miles, plain = read_examples(good, need_target=True)
    assert (rome.match, rome.accept, rome.category) == ("contains", ("roma",), "facts")
    assert (miles.tolerance, miles.category) == (0.01, "units")
    assert (plain.match, plain.accept, plain.reject, plain.category) == ("exact", (), (), None)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "hi", "target": "hi"}\n'
        '{"prompt": "hi", "target": "hi", "match": "fuzzy"}\n'
        '{"prompt": "dock?", "target": "maybe", "match": "yesno"}\n'
        '{"prompt": "2+2?", "target": "four-ish", "match": "number", "tolerance": 2}\n'
        '{"prompt": "x", "target": "x", "match": "contains", "accept": "x"}\n'
    )
    with pytest.raises(ToolchainError) as err:
        read_examples(bad, need_target=True)
    message = str(err.value)
    assert "4 bad line(s)" in message
    assert f"line 2: \"match\" must be one of {MATCHES}, got 'fuzzy'" in message
    assert "line 3:" in message and '"yes" or "no"' in message
    assert "line 4:" in message and "must be a number" in message
    assert 'line 5: "accept" must be a list' in message


def test_the_shipped_set_passes_its_check_and_covers_every_category():
    done = subprocess.run([sys.executable, str(MAKE), "--check"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    examples = read_examples(SHIPPED, need_target=True)
    assert len(examples) >= 150
    counts = Counter(e.category for e in examples)
    assert set(counts) == CATEGORIES and min(counts.values()) >= 25, counts
    assert all(e.match in MATCHES for e in examples)
    assert len({e.messages[-1]["content"] for e in examples}) == len(examples)


@pytest.mark.model
def test_default_model_on_the_first_dozen_questions(default_store, tmp_path):
    head = tmp_path / "head.jsonl"
    head.write_text("".join(SHIPPED.read_text(encoding="utf-8").splitlines(keepends=True)[:12]), encoding="utf-8")
    report = evaluate("smollm2-135m", task=head, store=default_store, threads=2)
    assert report.task_n == 12
    cats = report.task_categories
    assert set(cats) == CATEGORIES  # the shipped file takes the categories in turn
    assert all(c["n"] == 2 and 0 <= c["accuracy"] <= 1 and c["accuracy"] == c["correct"] / 2 for c in cats.values())
    assert sum(c["correct"] for c in cats.values()) == report.task_correct
    assert json.loads(json.dumps(report.to_dict()))["task_categories"] == cats
    assert "sensor_yesno" in report.summary()
