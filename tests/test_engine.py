"""Engine behaviour on the tiny converted model (real onnxruntime, real converter output)."""

import threading
import time

import numpy as np
import pytest

from edgellm_sdk import ContextOverflow, Engine, EngineClosed, Sampling

PROMPT = "hello world"


def ids_of(engine, **kwargs):
    return engine.complete(PROMPT, **kwargs).token_ids


def test_max_tokens_ends_with_length(tiny_engine):
    c = tiny_engine.complete(PROMPT, max_tokens=5)
    assert c.finish_reason == "length"
    assert len(c.token_ids) == 5
    assert c.usage.prompt_tokens == len(tiny_engine.tokenizer.encode(PROMPT))
    assert c.usage.completion_tokens == 5 and c.usage.total_s >= c.usage.ttft_s > 0


def test_greedy_matches_step_by_step_reference(tiny_engine):
    """Each greedy token is the argmax of a fresh full forward over the sequence so far."""
    from edgellm_sdk.backends.ort import OrtBackend

    got = ids_of(tiny_engine, max_tokens=6)
    ref = OrtBackend(tiny_engine.backend.session._model_path, max_context=64, threads=1)
    seq = tiny_engine.tokenizer.encode(PROMPT)
    for token in got:
        ref.truncate(0)
        assert int(np.argmax(ref.forward(seq))) == token
        seq.append(token)


def test_prefix_reuse_gives_identical_results(tiny_engine):
    first = ids_of(tiny_engine, max_tokens=8)
    tiny_engine.complete("hello there, a different prompt", max_tokens=3)
    again = ids_of(tiny_engine, max_tokens=8)  # shares nothing but the start
    same = ids_of(tiny_engine, max_tokens=8)  # fully cached prompt
    assert first == again == same


def test_seeded_sampling_is_reproducible(tiny_engine):
    s = Sampling(temperature=1.0, top_p=0.9, seed=3)
    assert ids_of(tiny_engine, max_tokens=10, sampling=s) == ids_of(tiny_engine, max_tokens=10, sampling=s)


def test_stop_string_ends_generation_and_is_not_emitted(tiny_engine):
    full = tiny_engine.complete(PROMPT, max_tokens=20)
    target = next(
        (
            full.text[i : i + 2]
            for i in range(2, len(full.text) - 2)
            if full.text[i : i + 2].isprintable() and "\ufffd" not in full.text[i : i + 2]
        ),
        None,
    )
    assert target, "tiny model produced no printable text"
    c = tiny_engine.complete(PROMPT, max_tokens=20, stop=[target])
    assert c.finish_reason == "stop"
    assert c.text == full.text[: full.text.find(target)]


def test_cancel_ends_with_finish_reason(tiny_engine):
    cancel = threading.Event()
    tokens = []
    for tok in tiny_engine.generate(PROMPT, max_tokens=50, cancel=cancel):
        tokens.append(tok)
        if len(tokens) == 3:
            cancel.set()
    assert tokens[-1].finish_reason == "cancelled"
    assert len(tokens) == 4
    pre = threading.Event()
    pre.set()
    c = tiny_engine.complete(PROMPT, max_tokens=50, cancel=pre)
    assert c.finish_reason == "cancelled" and c.token_ids == ()


def test_deadline_ends_with_finish_reason(tiny_engine):
    slow = (tok for tok in tiny_engine.generate(PROMPT, max_tokens=100, deadline_s=0.05))
    out = []
    for tok in slow:
        out.append(tok)
        time.sleep(0.02)
    assert out[-1].finish_reason == "deadline"
    assert 1 <= len(out) < 100


def test_bad_arguments_raise_value_error(tiny_engine):
    with pytest.raises(ValueError, match="prompt is empty"):
        tiny_engine.complete("")
    with pytest.raises(ValueError, match=r"max_tokens must be an int in \[1, 128\]"):
        tiny_engine.complete(PROMPT, max_tokens=-1)
    with pytest.raises(ValueError, match="deadline_s must be"):
        tiny_engine.complete(PROMPT, deadline_s=0)
    with pytest.raises(ValueError, match="messages is empty"):
        tiny_engine.chat([])
    with pytest.raises(ValueError, match="a message must be"):
        tiny_engine.chat([{"role": "user"}])
    with pytest.raises(ValueError, match="token ids must be in"):
        tiny_engine.complete([10**6])


def test_context_overflow_names_the_numbers(tiny_engine):
    prompt = "hello " * 40
    n = len(tiny_engine.tokenizer.encode(prompt))
    with pytest.raises(ContextOverflow, match=f"prompt \\({n} tokens\\) \\+ max_tokens \\(100\\)") as e:
        tiny_engine.complete(prompt, max_tokens=100)
    assert e.value.context == 128


def test_concurrent_callers_are_queued_not_corrupted(tiny_engine):
    prompts = ["hello world", "the world", "hello hello hello", "world the hello"]
    expected = {p: tiny_engine.complete(p, max_tokens=12).token_ids for p in prompts}
    results, errors = {}, []

    def worker(p):
        try:
            for _ in range(3):
                results.setdefault(p, []).append(tiny_engine.complete(p, max_tokens=12).token_ids)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert all(r == [expected[p]] * 3 for p, r in results.items())


def test_waiting_caller_gives_up_at_its_deadline(tiny_engine):
    busy = tiny_engine.generate(PROMPT, max_tokens=5)
    next(busy)  # holds the engine
    got = []
    t = threading.Thread(target=lambda: got.append(tiny_engine.complete(PROMPT, max_tokens=5, deadline_s=0.2)))
    t.start()
    t.join(timeout=5)
    busy.close()
    assert got and got[0].finish_reason == "deadline" and got[0].token_ids == ()


def test_chat_session_keeps_system_prompt_and_drops_old_turns(tiny_store):
    with Engine.load("tiny", store=tiny_store, variant="fp32", max_context=96, threads=1) as engine:
        session = engine.session(system="sys")
        for i in range(6):
            session.send(f"hello world {i}", max_tokens=16)
        prompt = engine.render(
            [{"role": "system", "content": "sys"}, *[m.as_dict() for m in session.history]], add_generation_prompt=False
        )
        assert len(engine.tokenizer.encode(prompt)) <= 96
        assert session.history[-2].content == "hello world 5"
        assert all(m.content != "hello world 0" for m in session.history)


def test_closed_engine_raises(tiny_store):
    engine = Engine.load("tiny", store=tiny_store, variant="q8", max_context=64, threads=1)
    assert engine.complete(PROMPT, max_tokens=2).finish_reason == "length"
    engine.close()
    with pytest.raises(EngineClosed, match="this Engine was closed; load a new one"):
        engine.complete(PROMPT, max_tokens=2)
