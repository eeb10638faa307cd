"""The real default model's tokenizer, and the streaming detokenizer."""

import pytest

from edgellm_sdk.tokenizer import Tokenizer

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Robot arm: move 12.5 cm left, then rotate 90°.",
    "你好，世界！今天的温度是二十一度。",
    "こんにちは、ロボットです。",
    "안녕하세요",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "Emoji: 🤖🔋⚡ and a family 👨‍👩‍👧 and flags 🇫🇷",
    "Combining: e\u0301 n\u0303 a\u0308 — café naïve",
    "  leading spaces\n\ttabs and\r\nCRLF  ",
    "<|im_start|>user\nhi<|im_end|>",
    "x = {'a': [1, 2, 3]}  # code",
]


@pytest.fixture(scope="module")
def tok(default_store):
    return Tokenizer.from_dir(default_store.path("smollm2-135m"))


def test_special_ids(tok):
    assert tok.eos_ids == {2}
    assert tok.encode("<|im_start|><|im_end|><|endoftext|>") == [1, 2, 0]
    assert tok.vocab_size == 49152


@pytest.mark.parametrize("text", CORPUS)
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text), skip_special=False) == text


@pytest.mark.parametrize("text", CORPUS)
def test_stream_emits_only_whole_characters(tok, text):
    stream = tok.stream()
    pieces = [stream.step(i) for i in tok.encode(text)]
    pieces.append(stream.flush())
    assert "".join(pieces) == tok.decode(tok.encode(text))
    assert all("\ufffd" not in p for p in pieces)
    for p in pieces:
        p.encode("utf-8")  # no lone surrogates
    if any(ord(c) > 0x7FF for c in text):
        assert "" in pieces[:-1]  # multi-byte characters spanning tokens were held back


def test_stream_stop_string_spanning_tokens(tok):
    text = "The answer is 42. END of story"
    ids = tok.encode(text)
    stream = tok.stream(stop=["END"])
    out = ""
    for i in ids:
        out += stream.step(i)
        if stream.stopped:
            break
    assert stream.stopped == "END"
    assert out == "The answer is 42. "


def test_stream_holds_back_possible_stop_prefix(tok):
    stream = tok.stream(stop=["<STOP>"])
    out = [stream.step(i) for i in tok.encode("abc <ST")]
    assert "".join(out) == "abc "  # "<ST" might begin "<STOP>"
    assert stream.flush() == "<ST"
