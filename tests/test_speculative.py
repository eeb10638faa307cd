"""Speculative decoding: prompt lookup, constraint fast-forward and a draft model give the same
answers as plain decoding, and everything around generation behaves exactly as without them.

The tiny random model repeats itself, so prompt lookup drafts a lot; ``EAGER`` drafts whenever a
source has tokens (no cost model), so every test below really verifies drafted tokens."""

import json
import shutil
import threading
import time

import numpy as np
import pytest

from edgellm_sdk import Engine, ResponseCache, Sampling, VocabularyMismatch
from edgellm_sdk.models.manifest import Manifest, write_manifest
from edgellm_sdk.sampling import distribution
from edgellm_sdk.speculative import DraftModel, Speculative, resolve_speculative
from edgellm_sdk.speculative.verify import verify

EAGER = Speculative(adaptive=False, max_draft=6)
PROMPTS = ["hello world", "the world hello there", "hello hello world world the hello"]


@pytest.fixture(scope="module")
def q8(tiny_store):
    with Engine.load("tiny", store=tiny_store, variant="q8", max_context=256, threads=1, speculative=EAGER) as engine:
        yield engine


@pytest.fixture(scope="module")
def with_draft(tiny_store):
    """fp32 target, its q8 variant as the draft model (same tokenizer, slightly different weights)."""
    with Engine.load(
        "tiny",
        store=tiny_store,
        variant="fp32",
        max_context=256,
        threads=1,
        draft="tiny",
        draft_variant="q8",
        speculative=Speculative(adaptive=False, lookup=False, max_draft=4),
    ) as e:
        yield e


def kv_consistent(engine) -> bool:
    return engine.backend.position == len(engine._kv_ids)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_lookup_matches_plain_decoding(q8, prompt):
    plain = q8.complete(prompt, max_tokens=40, speculative="off")
    fast = q8.complete(prompt, max_tokens=40)
    assert fast.token_ids == plain.token_ids and fast.text == plain.text
    assert fast.usage.drafted_tokens > 10 and 0 < fast.usage.accepted_tokens <= fast.usage.drafted_tokens
    assert plain.usage.drafted_tokens == 0
    assert kv_consistent(q8)


@pytest.mark.parametrize("prompt", PROMPTS[:2])
def test_greedy_draft_model_matches_plain_decoding(with_draft, prompt):
    plain = with_draft.complete(prompt, max_tokens=30, speculative="off")
    fast = with_draft.complete(prompt, max_tokens=30)
    assert fast.token_ids == plain.token_ids
    assert fast.usage.drafted_tokens > 0 and fast.usage.accepted_tokens > 0
    assert kv_consistent(with_draft)


def test_answer_history_drafts_an_earlier_answers_phrasing(tiny_store):
    spec = Speculative(adaptive=False, lookup=False, history=True, max_draft=6)  # the history alone
    with Engine.load("tiny", store=tiny_store, variant="q8", max_context=256, threads=1, speculative=spec) as e:
        first = e.complete(PROMPTS[0], max_tokens=30)
        assert first.usage.drafted_tokens == 0 and len(e.answer_history) == 31  # the answer + its end
        again = e.complete(PROMPTS[0], max_tokens=30)  # a repeated request: its earlier answer drafts it
        assert again.token_ids == first.token_ids and again.usage.accepted_tokens >= 20
        assert e.speculation.drafted["history"] > 0 and e.speculation.accepted["history"] > 0
        e.answer_history.clear()
        assert len(e.answer_history) == 0


def test_max_tokens_is_exact_when_a_round_could_overshoot(q8):
    for n in (1, 2, 3, 7, 13):
        c = q8.complete(PROMPTS[0], max_tokens=n)
        assert c.finish_reason == "length" and len(c.token_ids) == n == c.usage.completion_tokens
        assert kv_consistent(q8)


def test_stop_string_inside_an_accepted_draft(q8):
    plain = q8.complete(PROMPTS[1], max_tokens=30, speculative="off")
    stop = plain.text[len(plain.text) // 2 : len(plain.text) // 2 + 3]
    want = q8.complete(PROMPTS[1], max_tokens=30, stop=[stop], speculative="off")
    got = q8.complete(PROMPTS[1], max_tokens=30, stop=[stop])
    assert got.finish_reason == want.finish_reason == "stop"
    assert got.text == want.text and stop not in got.text
    assert kv_consistent(q8)
    assert q8.complete(PROMPTS[1], max_tokens=30).token_ids == plain.token_ids  # KV left usable


def test_cancel_mid_round_and_the_next_request_is_unaffected(q8):
    cancel = threading.Event()
    pieces = []
    for token in q8.generate(PROMPTS[0], max_tokens=60, cancel=cancel):
        pieces.append(token)
        if len(pieces) == 5:
            cancel.set()  # while later tokens of the same verified round are still to come
    assert pieces[-1].finish_reason == "cancelled" and len(pieces) <= 6
    assert kv_consistent(q8)
    assert (
        q8.complete(PROMPTS[0], max_tokens=20).token_ids
        == q8.complete(PROMPTS[0], max_tokens=20, speculative="off").token_ids
    )


def test_deadline_ends_with_finish_reason(q8):
    out = []
    for token in q8.generate(PROMPTS[2], max_tokens=200, deadline_s=0.05):
        out.append(token)
        time.sleep(0.01)  # a slow consumer: the deadline passes between tokens of a verified round
    assert out[-1].finish_reason == "deadline" and 1 <= len(out) < 200
    assert kv_consistent(q8)


def test_closing_the_stream_early_rolls_back_the_drafts(q8):
    stream = q8.generate(PROMPTS[0], max_tokens=50)
    for _, _ in zip(range(4), stream):
        pass
    stream.close()
    assert kv_consistent(q8)


def test_streamed_text_is_the_decoded_answer(q8):
    tokens = list(q8.generate(PROMPTS[1], max_tokens=40))
    text = "".join(t.text for t in tokens)
    ids = [t.id for t in tokens if t.id >= 0]
    assert text == q8.tokenizer.decode(ids) and "\ufffd" not in text


def test_prefix_cache_with_speculation_equals_cold_plain_decoding(tiny_store):
    system = [{"role": "system", "content": "hello world " * 20}]
    kw = {"store": tiny_store, "variant": "q8", "max_context": 256, "threads": 1}
    with (
        Engine.load("tiny", speculative=EAGER, **kw) as cached,
        Engine.load("tiny", prefix_cache=False, speculative="off", **kw) as plain,
    ):
        cached.warm(system)
        for q in ("hello there", "the world"):
            plain.reset()
            messages = system + [{"role": "user", "content": q}]
            assert (
                cached.complete(messages, max_tokens=12).token_ids == plain.complete(messages, max_tokens=12).token_ids
            )
        assert cached.prefix_cache.stats.hits >= 2 and cached.speculation.total_drafted > 0


def test_response_cache_serves_the_speculative_answer(tiny_store):
    with Engine.load(
        "tiny",
        store=tiny_store,
        variant="q8",
        max_context=256,
        threads=1,
        speculative=EAGER,
        response_cache=ResponseCache(),
    ) as e:
        first = e.complete(PROMPTS[0], max_tokens=16)
        again = e.complete(PROMPTS[0], max_tokens=16)
        assert not first.cached and again.cached and again.token_ids == first.token_ids
        assert first.usage.drafted_tokens > 0


def test_chat_session_full_kv_reuse(q8):
    session = q8.session(system="be brief")
    a = session.send("hello world", max_tokens=10)
    b = session.send("the world", max_tokens=10)
    assert a.finish_reason in ("stop", "length") and b.finish_reason in ("stop", "length")
    assert kv_consistent(q8)


def test_seeded_sampling_is_reproducible_with_speculation(q8):
    s = Sampling(temperature=0.9, top_k=40, seed=7)
    a, b = (q8.complete(PROMPTS[0], max_tokens=30, sampling=s) for _ in range(2))
    assert a.token_ids == b.token_ids and a.usage.drafted_tokens > 0


@pytest.mark.parametrize("draft_kind", ["lookup", "model"])
def test_rejection_sampling_keeps_the_target_distribution(draft_kind):
    """Whatever the draft proposes, verify() emits tokens distributed as the target's p."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(12).astype(np.float32) * 2
    sampling = Sampling(temperature=0.8, top_p=0.95)
    ids, p = distribution(logits, sampling)
    target = np.zeros(12)
    target[ids] = p
    draft_logits = logits + rng.standard_normal(12).astype(np.float32)  # a draft model that is a bit off
    q = distribution(draft_logits, sampling)
    counts = np.zeros(12)
    n = 40000
    for _ in range(n):
        if draft_kind == "lookup":
            drafted, dist = int(np.argmax(logits)) if rng.random() < 0.5 else 3, None
        else:
            drafted, dist = int(q[0][rng.choice(len(q[0]), p=q[1])]), q
        _, token = verify(logits, drafted, sampling, rng, q=dist)
        counts[token] += 1
    assert 0.5 * np.abs(counts / n - target).sum() < 0.015  # total variation: sampling noise only


def test_greedy_verify_accepts_exactly_the_argmax():
    logits = np.array([0.1, 2.0, 1.9, -1.0], np.float32)
    rng = np.random.default_rng(0)
    assert verify(logits, 1, Sampling(), rng) == (True, 1)
    assert verify(logits, 2, Sampling(), rng) == (False, 1)


def test_bad_settings_raise_value_error_with_the_range(tiny_store):
    for bad, words in [
        ({"max_draft": 0}, "[1, 32]"),
        ({"ngram_min": 5, "ngram_max": 3}, "[1, 3]"),
        ({"cooldown": -1}, "[0, 256]"),
        ({"lookup": "yes"}, "True or False"),
    ]:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            Speculative(**bad)
    with pytest.raises(ValueError, match="auto"):
        resolve_speculative("fast")
    with pytest.raises(ValueError, match="unknown speculative setting"):
        resolve_speculative({"draft_len": 3})
    with (
        Engine.load("tiny", store=tiny_store, variant="q8", max_context=64, threads=1) as e,
        pytest.raises(ValueError, match="max_draft"),
    ):
        e.complete("hello", max_tokens=3, speculative={"max_draft": 99})


def test_draft_with_another_tokenizer_is_refused_naming_both(tiny_store, tmp_path):
    other = tmp_path / "other-vocab"
    shutil.copytree(tiny_store.path("tiny"), other)
    tok = json.loads((other / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    vocab["hello"], vocab["Ġworld"] = vocab["Ġworld"], vocab["hello"]  # same strings, other ids
    (other / "tokenizer.json").write_text(json.dumps(tok))
    old = Manifest.load(other)
    write_manifest(other, name="other-vocab", variants=old.variants, default_variant=old.default_variant)
    with pytest.raises(VocabularyMismatch, match="other-vocab.*tiny"):
        Engine.load("tiny", store=tiny_store, variant="q8", max_context=64, threads=1, draft=other)


def test_a_failing_draft_falls_back_with_a_warning(tiny_store, with_draft):
    # a draft whose KV cache is too small for the request fails part-way through it
    small = DraftModel.load(tiny_store.path("tiny"), threads=1, max_context=12, variant="q8")
    with Engine.load(
        "tiny",
        store=tiny_store,
        variant="fp32",
        max_context=256,
        threads=1,
        draft=small,
        speculative=Speculative(adaptive=False, lookup=False, max_draft=4),
    ) as e:
        got = e.complete(PROMPTS[0], max_tokens=30)
        want = e.complete(PROMPTS[0], max_tokens=30, speculative="off")
    assert got.finish_reason == "length" and got.token_ids == want.token_ids
    assert any("draft model" in w and "continued without it" in w for w in got.usage.warnings)


def test_constraint_fast_forward_matches_plain_constrained_decoding(q8):
    schema = {
        "type": "object",
        "properties": {
            "greeting": {"enum": ["hello world", "hello there"]},
            "count": {"type": "integer", "minimum": 0, "maximum": 9},
        },
        "required": ["greeting", "count"],
        "additionalProperties": False,
    }
    plain = q8.complete(PROMPTS[0], max_tokens=40, schema=schema, speculative="off")
    fast = q8.complete(PROMPTS[0], max_tokens=40, schema=schema)
    assert fast.text == plain.text and json.loads(fast.text)["greeting"] in ("hello world", "hello there")
    assert fast.finish_reason == plain.finish_reason == "stop"
    assert fast.usage.accepted_tokens >= 5  # '{"greeting":"hello' and the rest are forced
    assert kv_consistent(q8)


def test_a_fully_forced_output_needs_no_model_step(q8):
    before = q8.prefill_tokens
    c = q8.complete(PROMPTS[0], max_tokens=20, regex="yes, hello world")
    assert c.text == "yes, hello world" and c.finish_reason == "stop"
    assert q8.prefill_tokens == before  # the grammar left nothing to choose
    assert q8.complete(PROMPTS[0], max_tokens=20, regex="yes, hello world", speculative="off").text == c.text
