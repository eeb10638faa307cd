"""The test seams and the real Engine both have the shape of EngineAPI (what adapters rely on)."""

import inspect

import pytest
from fakes import ScriptedEngine

from edgellm_sdk.engine_api import EngineAPI

METHODS = ["render", "prompt_ids", "warm", "generate", "complete", "chat"]


def parameters(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]


@pytest.mark.parametrize("name", METHODS)
def test_the_seam_and_the_engine_take_the_protocols_parameters(tiny_engine, name):
    wanted = parameters(getattr(EngineAPI, name))[1:]  # without self
    assert parameters(getattr(tiny_engine, name)) == wanted
    assert parameters(getattr(ScriptedEngine(), name)) == wanted


def test_both_are_engine_apis(tiny_engine):
    assert isinstance(tiny_engine, EngineAPI)
    assert isinstance(ScriptedEngine(tokenizer=tiny_engine.tokenizer), EngineAPI)
    assert not isinstance(object(), EngineAPI)


def test_the_seam_streams_and_completes_its_script(tiny_engine):
    fake = ScriptedEngine(["one two", "three"], finish="length", tokenizer=tiny_engine.tokenizer)
    tokens = list(fake.generate([{"role": "user", "content": "hi"}]))
    assert "".join(t.text for t in tokens) == "one two" and tokens[-1].finish_reason == "length"
    assert fake.complete([{"role": "user", "content": "again"}]).text == "three"
    assert [turn[-1]["content"] for turn in fake.seen] == ["hi", "again"]
    assert fake.prompt_ids("hello") == tiny_engine.tokenizer.encode("hello")
