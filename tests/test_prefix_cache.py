"""PrefixCache: token-prefix KV reuse, identical to uncached prefill."""

import threading

import numpy as np
import pytest

from edgellm_sdk import Engine
from edgellm_sdk.cache import PrefixCache
from edgellm_sdk.prefill import PREFILL_CHUNK, turn_end

SYSTEM = [{"role": "system", "content": "hello world " * 30}]
QUESTIONS = ["hello there", "the world", "hello hello world", "world"]


def conversation(q):
    return SYSTEM + [{"role": "user", "content": q}]


@pytest.fixture(params=["q8", "q4"])
def engines(request, tiny_store):
    """A cached engine and an uncached reference, on a quantized variant (int8-rounded activations)."""
    kw = {"store": tiny_store, "variant": request.param, "max_context": 256, "threads": 1}
    with Engine.load("tiny", **kw) as cached, Engine.load("tiny", prefix_cache=False, **kw) as plain:
        yield cached, plain


def test_cached_outputs_identical_to_uncached(engines):
    cached, plain = engines
    n = cached.warm(SYSTEM)
    system_ids = cached.tokenizer.encode(cached.render(SYSTEM, add_generation_prompt=False))
    # the whole system turn is cached, up to its end-of-turn token (not only its aligned chunks)
    assert n == turn_end(system_ids, cached.tokenizer.eos_ids) == len(system_ids) - 1
    assert n % PREFILL_CHUNK != 0
    for q in QUESTIONS:
        plain.reset()  # every reference answer is a cold prefill
        want = plain.complete(conversation(q), max_tokens=8).token_ids
        before = cached.prefill_tokens
        got = cached.complete(conversation(q), max_tokens=8).token_ids
        assert got == want
        assert cached.prefill_tokens - before < len(cached.prompt_ids(conversation(q))) - n + PREFILL_CHUNK
    assert cached.prefix_cache.stats.hits >= len(QUESTIONS)


def test_shared_head_is_learned_without_warming(tiny_store):
    with Engine.load("tiny", store=tiny_store, variant="q8", max_context=256, threads=1) as e:
        e.complete(conversation(QUESTIONS[0]), max_tokens=2)
        e.complete(conversation(QUESTIONS[1]), max_tokens=2)  # diverges after the system prompt
        entries = e.prefix_cache.stats.entries
        before = e.prefill_tokens
        e.complete(conversation(QUESTIONS[2]), max_tokens=2)
        full = len(e.prompt_ids(conversation(QUESTIONS[2])))
        assert e.prefill_tokens - before < full - 64
        assert e.prefix_cache.stats.entries == entries  # a known head: nothing new stored


def test_budget_evicts_least_recently_used():
    cache = PrefixCache(max_bytes=3 * (4 * 10 + 8 * 10 * 4))
    kv = [np.ones((1, 1, 10, 8), np.float32)]
    for i in range(5):
        assert cache.put([i] * 10, kv)
        assert cache.stats.bytes <= cache.max_bytes
    assert cache.stats.entries == 3 and cache.stats.evictions == 2
    assert cache.longest([0] * 10)[0] == 0  # evicted
    assert cache.longest([4] * 10)[0] == 10
    assert not PrefixCache(max_bytes=10).put([1, 2, 3], [np.ones((1, 1, 3, 8), np.float32)])


def test_lookup_compares_tokens_not_hashes():
    cache = PrefixCache()
    cache.put([1, 2, 3, 4], [np.zeros((1, 1, 4, 2), np.float32)])
    assert cache.longest([1, 2, 9, 9])[0] == 2
    assert cache.longest([1, 2, 3, 4, 5])[0] == 4
    assert cache.longest([7])[0] == 0


def test_bad_budget_is_a_value_error():
    with pytest.raises(ValueError, match="max_bytes must be"):
        PrefixCache(max_bytes=-1)


def test_shared_cache_across_threads_and_engines(tiny_store):
    shared = PrefixCache()
    kw = {"store": tiny_store, "variant": "q8", "max_context": 256, "threads": 1, "prefix_cache": shared}
    with (
        Engine.load("tiny", **kw) as a,
        Engine.load("tiny", **kw) as b,
        Engine.load("tiny", store=tiny_store, variant="q8", max_context=256, threads=1, prefix_cache=False) as ref,
    ):
        want = {q: ref.complete(conversation(q), max_tokens=6).token_ids for q in QUESTIONS}
        got, errors = [], []

        def worker(engine, q):
            try:
                for _ in range(3):
                    got.append((q, engine.complete(conversation(q), max_tokens=6).token_ids))
            except Exception as e:  # noqa: BLE001 - surfaced by the assert below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(e, q)) for e in (a, b) for q in QUESTIONS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert len(got) == 24 and all(ids == want[q] for q, ids in got)


def test_persisted_cache_boots_warm(tmp_path, tiny_store):
    kw = {"store": tiny_store, "variant": "q8", "max_context": 256, "threads": 1}
    with Engine.load("tiny", **kw) as e:
        e.warm(SYSTEM)
        assert e.prefix_cache.save(tmp_path / "warm.npz", e.model_id, decode=e.tokenizer.decode) == 1
        want = e.complete(conversation("world"), max_tokens=6).token_ids
    with Engine.load("tiny", **kw) as e:
        assert e.prefix_cache.load(tmp_path / "warm.npz", e.model_id) == 1
        before = e.prefill_tokens
        assert e.complete(conversation("world"), max_tokens=6).token_ids == want
        assert e.prefill_tokens - before < PREFILL_CHUNK * 2
        with pytest.raises(ValueError, match="not 'other"):
            PrefixCache().load(tmp_path / "warm.npz", "other:model")


def test_prompts_with_pii_are_not_saved(tmp_path, tiny_store):
    pytest.importorskip("presidio_analyzer")
    kw = {"store": tiny_store, "variant": "q8", "max_context": 256, "threads": 1}
    secret = [{"role": "system", "content": "The owner is John Smith, phone 212-555-0147. " + "hello world " * 20}]
    path = tmp_path / "warm.npz"
    with Engine.load("tiny", **kw) as e:
        e.warm(SYSTEM)
        e.warm(secret)
        assert e.prefix_cache.stats.entries == 2
        assert e.prefix_cache.save(path, e.model_id, decode=e.tokenizer.decode) == 1  # the clean prompt only
        assert e.prefix_cache.stats.entries == 2  # both stay in memory
        with np.load(path) as data:
            saved = [e.tokenizer.decode(data[k].tolist()) for k in data.files if k.startswith("tokens_")]
        assert len(saved) == 1 and "212-555-0147" not in saved[0] and "hello world" in saved[0]
        with pytest.raises(ValueError, match="decode="):
            e.prefix_cache.save(path, e.model_id)
        assert e.prefix_cache.save(path, e.model_id, pii_on_disk=True) == 2
    with Engine.load("tiny", **kw) as e:
        assert e.prefix_cache.load(path, e.model_id) == 2


def test_saving_without_the_privacy_extra_says_how_to_fix(tmp_path, tiny_store, monkeypatch):
    import sys

    from edgellm_sdk import MissingDependency
    from edgellm_sdk.privacy import Redactor

    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    monkeypatch.delitem(sys.modules, "edgellm_sdk.privacy.recognizers", raising=False)
    cache = PrefixCache()
    cache.put([1, 2, 3], [np.zeros((1, 1, 3, 2), np.float32)])
    with pytest.raises(MissingDependency, match=r"edgellm-sdk\[privacy\].*pii_on_disk=True"):
        cache.save(tmp_path / "c.npz", "m", decode=lambda ids: "x", redactor=Redactor())
    assert not (tmp_path / "c.npz").exists()
    assert cache.save(tmp_path / "c.npz", "m", pii_on_disk=True) == 1


def test_profile_sets_threads_context_variant_and_cache_budget(tiny_store):
    from types import SimpleNamespace

    profile = SimpleNamespace(threads=1, max_context=96, variant="q8", prefix_cache_bytes=1 << 20)
    with Engine.load("tiny", store=tiny_store, profile=profile) as e:
        assert (e.max_context, e.variant, e.prefix_cache.max_bytes) == (96, "q8", 1 << 20)
