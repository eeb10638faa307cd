"""Constrained decoding (llguidance masks) on real onnxruntime models."""

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from edgellm_sdk import Engine, ResponseCache
from edgellm_sdk.constrain import ConstraintError


@pytest.fixture(scope="module")
def tiny(tiny_store):
    with Engine.load("tiny", store=tiny_store, variant="q8", max_context=256, threads=1) as e:
        yield e


# --- random schemas: a random-weights model must still produce conforming JSON ---------------
def field_schemas():
    integer = st.tuples(st.integers(-50, 50), st.integers(0, 60)).map(
        lambda t: {"type": "integer", "minimum": t[0], "maximum": t[0] + t[1]}
    )
    # multipleOf bounds the digits: without it a number may legally run on forever ("1.000…")
    number = st.tuples(st.integers(-10, 10), st.integers(1, 20)).map(
        lambda t: {"type": "number", "minimum": t[0], "maximum": t[0] + t[1], "multipleOf": 0.01}
    )
    string = st.integers(1, 8).map(lambda n: {"type": "string", "maxLength": n})
    enum = st.lists(
        st.sampled_from(["left", "right", "stop", "go", "on", "off"]), min_size=1, max_size=4, unique=True
    ).map(lambda v: {"enum": v})
    return st.one_of(integer, number, string, enum, st.just({"type": "boolean"}))


schemas = st.dictionaries(
    st.sampled_from(["a", "speed", "name", "mode", "x", "y"]), field_schemas(), min_size=1, max_size=3
).map(lambda props: {"type": "object", "properties": props, "required": sorted(props), "additionalProperties": False})


def conforms(value, schema) -> bool:
    if "enum" in schema:
        return value in schema["enum"]
    t = schema["type"]
    if t == "object":
        return (
            isinstance(value, dict)
            and set(value) == set(schema["required"])
            and all(conforms(value[k], s) for k, s in schema["properties"].items())
        )
    if t == "boolean":
        return isinstance(value, bool)
    if t == "string":
        return isinstance(value, str) and len(value) <= schema["maxLength"]
    if t == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if t == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return False
    if "multipleOf" in schema and abs(round(value / schema["multipleOf"]) * schema["multipleOf"] - value) > 1e-9:
        return False
    return schema["minimum"] <= value <= schema["maximum"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=schemas)
def test_random_schemas_always_conform(tiny, schema):
    c = tiny.complete("hello world", schema=schema, max_tokens=200)
    assert c.finish_reason == "stop", c
    assert conforms(json.loads(c.text), schema), (c.text, schema)


def test_regex_and_lark_grammar(tiny):
    assert tiny.complete("hello", regex=r"(yes|no)", max_tokens=10).text in ("yes", "no")
    c = tiny.complete("hello", grammar='start: "go " DIR\nDIR: "left" | "right"', max_tokens=20)
    assert c.text in ("go left", "go right")


def test_unicode_string_fields(tiny):
    schema = {"type": "object", "properties": {"名字": {"type": "string", "maxLength": 6}}, "required": ["名字"]}
    value = json.loads(tiny.complete("你好", schema=schema, max_tokens=200).text)
    assert set(value) == {"名字"} and isinstance(value["名字"], str)


def test_bad_constraints_are_clear_errors(tiny):
    with pytest.raises(ConstraintError):
        tiny.complete("hello", regex="(unclosed", max_tokens=5)
    with pytest.raises(ConstraintError, match="schema must be"):
        tiny.complete("hello", schema=[1, 2], max_tokens=5)
    with pytest.raises(ValueError, match="exactly one of"):
        tiny.complete("hello", schema={"type": "string"}, regex="a", max_tokens=5)


def test_cancel_and_deadline_during_constrained_generation(tiny):
    schema = {"type": "object", "properties": {"note": {"type": "string", "maxLength": 200}}, "required": ["note"]}
    cancel = threading.Event()
    out = []
    for tok in tiny.generate("hello", schema=schema, max_tokens=200, cancel=cancel):
        out.append(tok)
        if len(out) == 3:
            cancel.set()
    assert out[-1].finish_reason == "cancelled"
    assert tiny.complete("hello", schema=schema, max_tokens=200, deadline_s=0.005).finish_reason in ("deadline", "stop")


def test_response_cache_key_includes_the_constraint(tiny_store):
    with Engine.load(
        "tiny", store=tiny_store, variant="q8", max_context=256, threads=1, response_cache=ResponseCache()
    ) as e:
        e.complete("hello", regex="(yes|no)", max_tokens=5)
        assert e.complete("hello", regex="(yes|no)", max_tokens=5).cached
        assert not e.complete("hello", regex="(on|off)", max_tokens=5).cached


class Move(BaseModel):
    action: str = Field(pattern="^(move|turn|stop)$")
    distance_m: float = Field(ge=0, le=5)


def test_default_model_fills_a_pydantic_schema(engine):
    system = {"role": "system", "content": "Convert the robot command to JSON."}
    c = engine.chat([system, {"role": "user", "content": "Move forward two meters."}], schema=Move, max_tokens=40)
    move = Move.model_validate_json(c.text)
    assert move.action == "move" and move.distance_m == 2
