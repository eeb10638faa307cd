"""SentenceSplitter: streamed LLM deltas in, complete sentences out as soon as they end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgellm_sdk.speech.sentences import SentenceSplitter, first_phrase, iter_sentences, split_sentences


def stream(text: str, size: int = 1) -> list[str]:
    """Sentences from ``text`` fed ``size`` characters at a time."""
    return list(iter_sentences(text[i : i + size] for i in range(0, len(text), size)))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Stop! Wait?! Go...  Now.", ["Stop!", "Wait?!", "Go...", "Now."]),
        ("It costs 3.5 dollars. Pi is 3.14159!", ["It costs 3.5 dollars.", "Pi is 3.14159!"]),
        ("Use sensors, e.g. lidar. Also i.e. cameras.", ["Use sensors, e.g. lidar.", "Also i.e. cameras."]),
        ("Dr. Smith met Mr. Jones. They talked.", ["Dr. Smith met Mr. Jones.", "They talked."]),
        ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
        ('He said "go now." Then left.', ['He said "go now."', "Then left."]),
        ("(This is aside.) Next.", ["(This is aside.)", "Next."]),
        ("1. Go forward.\n2. Turn left", ["1. Go forward.", "2. Turn left"]),
        ("I have 3. You have 4.", ["I have 3.", "You have 4."]),
        ("first line\nsecond line\n\n\nthird", ["first line", "second line", "third"]),
        ("你好。我是机器人！今天好吗？好", ["你好。", "我是机器人！", "今天好吗？", "好"]),
        ("他说：“好的。”然后走了。", ["他说：“好的。”", "然后走了。"]),
        ("我喜欢Python.它很好。", ["我喜欢Python.", "它很好。"]),
        ("Version 2.0.1 is out. Visit example.com now.", ["Version 2.0.1 is out.", "Visit example.com now."]),
        ("", []),
        ("   \n  ", []),
        ("no punctuation at all", ["no punctuation at all"]),
    ],
)
def test_split(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    assert stream(text) == expected  # char by char gives the same result
    assert stream(text, 4) == expected


def test_released_as_soon_as_the_sentence_ends() -> None:
    s = SentenceSplitter()
    assert s.feed("The door is") == []
    assert s.feed(" open.") == []  # "." could still be "open.5": wait for the next character
    assert s.feed(" The") == ["The door is open."]
    assert s.feed(" light is on!\n") == ["The light is on!"]
    assert s.feed("好的。") == []  # a closing quote could follow
    assert s.feed("走") == ["好的。"]
    assert s.feed("吧") == []
    assert s.flush() == ["走吧"]
    assert s.flush() == [] and s.pending == ""


def test_no_cut_across_delta_boundaries() -> None:
    s = SentenceSplitter()
    assert s.feed("It is 3.") == []
    assert s.feed("5 meters. Dr.") == ["It is 3.5 meters."]
    assert s.feed(" Who") == []  # "Dr." is not a sentence end
    assert s.flush() == ["Dr. Who"]


def test_long_run_on_text_is_cut_at_clauses_then_spaces() -> None:
    text = ", ".join(f"clause number {i} goes here" for i in range(40))  # ~1000 chars, no period
    parts = split_sentences(text, max_chars=120)
    assert len(parts) > 5 and all(len(p) <= 120 for p in parts)
    assert all(p.endswith(",") for p in parts[:-1])
    assert " ".join(parts) == text
    words = " ".join(["word"] * 200)
    assert all(len(p) <= 100 for p in split_sentences(words, max_chars=100))
    cjk = "机器人" * 100  # no spaces, no punctuation: hard cut
    parts = split_sentences(cjk, max_chars=50)
    assert "".join(parts) == cjk and max(map(len, parts)) == 50


def test_first_phrase_and_take_phrase() -> None:
    assert first_phrase("Turn left at the door, then stop near the dock.") == (
        "Turn left at the door,",
        "then stop near the dock.",
    )
    assert first_phrase("I found three red boxes on the second shelf.") == (
        "I found three red boxes",
        "on the second shelf.",
    )
    assert first_phrase("The battery is at eighty percent, so I can work.")[0] == "The battery is at eighty percent,"
    assert first_phrase("Yes, I can do it now, right after lunch.")[0] == "Yes, I can do it now,"  # "Yes," too short
    assert first_phrase("Okay, I am on my way.")[1] == ""  # six words: not worth a cut
    assert first_phrase("The big front door is open and closed.")[1] == ""  # tail too short
    assert first_phrase("It has 1,000 small parts inside the box.")[1] == ""  # not a clause mark
    assert first_phrase("今天天气很好，我们去公园散步吧。") == ("今天天气很好，", "我们去公园散步吧。")
    s = SentenceSplitter()
    s.feed("The kitchen is clear,")
    assert s.take_phrase() is None  # "clear,5" could still come
    s.feed(" and the")
    assert s.take_phrase() is None  # six words so far: the sentence may end soon
    s.feed(" door")
    assert s.take_phrase() == "The kitchen is clear,"
    assert s.take_phrase() is None
    s = SentenceSplitter()
    s.feed("I found three big red boxes an")
    assert s.take_phrase() is None  # "an" may become "and" or "answer"
    s.feed("d a")
    assert s.take_phrase() == "I found three big red boxes"
    assert s.feed(" cup. ") == ["and a cup."]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="str"):
        SentenceSplitter().feed(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_chars"):
        SentenceSplitter(max_chars=5)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab .!?。，,\n3e", max_size=80),
    st.lists(st.integers(min_value=1, max_value=7), max_size=20),
)
def test_streaming_equals_batch_and_loses_nothing(text: str, sizes: list[int]) -> None:
    deltas, i = [], 0
    for n in sizes + [len(text)]:
        deltas.append(text[i : i + n])
        i += n
    streamed = list(iter_sentences(deltas, max_chars=30))
    assert streamed == split_sentences(text, max_chars=30)
    assert "".join(streamed).replace(" ", "") == "".join(text.split()).replace(" ", "")
