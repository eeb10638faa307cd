import numpy as np
import pytest

from edgellm_sdk.sampling import Sampling, sample

LOGITS = np.array([1.0, 3.0, 2.0, -1.0, 2.9], np.float32)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": -0.1}, "temperature must be in"),
        ({"top_k": -1}, "top_k must be"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, "top_p must be"),
        ({"repetition_penalty": 0}, "repetition_penalty must be"),
        ({"seed": "x"}, "seed must be"),
    ],
)
def test_bad_values_raise_value_error_with_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sampling(**kwargs)


def test_greedy_is_argmax():
    assert sample(LOGITS, Sampling(), np.random.default_rng()) == 1


def test_top_k_one_and_tiny_top_p_reduce_to_argmax():
    rng = np.random.default_rng(0)
    assert {sample(LOGITS, Sampling(temperature=1.0, top_k=1), rng) for _ in range(50)} == {1}
    assert {sample(LOGITS, Sampling(temperature=1.0, top_p=0.01), rng) for _ in range(50)} == {1}


def test_seed_makes_sampling_reproducible():
    s = Sampling(temperature=1.0, seed=7)
    a = [sample(LOGITS, s, np.random.default_rng(7)) for _ in range(1)]
    b = [sample(LOGITS, s, np.random.default_rng(7)) for _ in range(1)]
    assert a == b
    seq = lambda: [sample(LOGITS, s, r) for r in [np.random.default_rng(7)] for _ in range(30)]
    assert seq() == seq()


def test_temperature_sampling_follows_softmax():
    rng = np.random.default_rng(1)
    draws = np.bincount([sample(LOGITS, Sampling(temperature=1.0), rng) for _ in range(4000)], minlength=5) / 4000
    p = np.exp(LOGITS - LOGITS.max())
    p /= p.sum()
    assert np.abs(draws - p).max() < 0.03


def test_top_k_excludes_tokens_outside_k():
    rng = np.random.default_rng(2)
    assert {sample(LOGITS, Sampling(temperature=5.0, top_k=2), rng) for _ in range(200)} == {1, 4}


def test_repetition_penalty_demotes_seen_tokens():
    assert sample(LOGITS, Sampling(repetition_penalty=2.0), np.random.default_rng(), history=[1]) == 4
    assert sample(LOGITS, Sampling(repetition_penalty=1.0), np.random.default_rng(), history=[1]) == 1
