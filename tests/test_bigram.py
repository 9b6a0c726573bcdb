"""The bigram baseline: counts, smoothed probabilities, sampling and bits per byte, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slm_course.bigram import BigramModel, bits_per_byte
from slm_course.tokenizer import gpt2_encoding, token_byte_lengths


def test_fit_counts_every_neighbouring_pair():
    model = BigramModel.fit(np.array([0, 1, 0, 1, 2], dtype=np.uint16), vocab_size=3)
    table = model.dense_counts()
    assert table.tolist() == [[0, 2, 0], [1, 0, 1], [0, 0, 0]]
    assert model.row_counts.tolist() == [2, 2, 0]  # the last token is followed by nothing
    assert model.counts(np.array([0, 1, 2]), np.array([1, 1, 0])).tolist() == [2, 0, 0]


def test_dense_counts_match_a_hand_count_on_random_tokens():
    tokens = np.random.default_rng(0).integers(0, 30, 5000)
    expected = np.zeros((30, 30), dtype=np.int64)
    np.add.at(expected, (tokens[:-1], tokens[1:]), 1)
    assert np.array_equal(BigramModel.fit(tokens, 30).dense_counts(), expected)


def test_nll_is_the_smoothed_formula():
    tokens = np.array([0, 1, 0, 1, 2])
    model = BigramModel.fit(tokens, vocab_size=3, alpha=0.5)
    # P(1 | 0) = (2 + 0.5) / (2 + 1.5); P(2 | 1) = (1 + 0.5) / (2 + 1.5); P(0 | 2) = 0.5 / (0 + 1.5)
    held_out = np.array([0, 1, 2, 0])
    expected = [-math.log(2.5 / 3.5), -math.log(1.5 / 3.5), -math.log(0.5 / 1.5)]
    assert np.allclose(model.nll(held_out), expected)
    assert np.allclose(model.with_alpha(1.0).nll(held_out)[2], -math.log(1 / 3))


def test_next_token_probs_sum_to_one_and_agree_with_nll():
    tokens = np.random.default_rng(1).integers(0, 50, 3000)
    model = BigramModel.fit(tokens, 50, alpha=0.05)
    for prev in (0, 7, 49):
        probs = model.next_token_probs(prev)
        assert math.isclose(probs.sum(), 1.0)
        nxt = np.arange(50)
        pairs = np.stack([np.full(50, prev), nxt], axis=1).ravel()  # prev, b, prev, b, ...
        assert np.allclose(model.nll(pairs)[::2], -np.log(probs))


def test_sample_draws_from_the_smoothed_distribution():
    tokens = np.random.default_rng(2).integers(0, 6, 400)
    model = BigramModel.fit(tokens, 6, alpha=0.5)
    rng = np.random.default_rng(3)
    draws = [model.sample(start=2, max_new_tokens=1, rng=rng)[0] for _ in range(20_000)]
    frequencies = np.bincount(draws, minlength=6) / len(draws)
    assert np.allclose(frequencies, model.next_token_probs(2), atol=0.015)


def test_sample_stops_at_the_stop_token_and_is_repeatable():
    model = BigramModel.fit(np.array([0, 1, 2, 0, 1, 2, 0]), vocab_size=3, alpha=1e-9)
    assert model.sample(0, 10, np.random.default_rng(0), stop=2) == [1]
    a = model.with_alpha(1.0).sample(0, 20, np.random.default_rng(5))
    assert a == model.with_alpha(1.0).sample(0, 20, np.random.default_rng(5)) and len(a) == 20


def test_bits_per_byte_divides_total_nats_by_total_bytes_and_skips_special_tokens():
    lengths = np.array([4, 2, 0])  # token 2 is special: no text
    assert math.isclose(bits_per_byte(np.array([3.0, 1.0, 9.0]), np.array([0, 1, 2]), lengths), 4 / 6 / math.log(2))
    gpt2 = gpt2_encoding()
    ids = np.array(gpt2.encode("Once upon a time") + [gpt2.eot_token])
    n_bytes = len("Once upon a time".encode())
    nll = np.ones(len(ids))
    assert math.isclose(bits_per_byte(nll, ids, token_byte_lengths(gpt2)), (len(ids) - 1) / n_bytes / math.log(2))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: BigramModel.fit(np.array([0, 5]), vocab_size=3), "outside the vocabulary"),
        (lambda: BigramModel.fit(np.array([1]), vocab_size=3), "at least 2"),
        (lambda: BigramModel.fit(np.array([0.5, 1.0]), vocab_size=3), "integer"),
        (lambda: BigramModel.fit(np.array([0, 1]), vocab_size=3, alpha=0), "alpha must be a positive"),
        (lambda: BigramModel.fit(np.array([0, 1]), vocab_size=5000).dense_counts(), "too large"),
        (lambda: bits_per_byte(np.ones(2), np.array([2, 2]), np.array([1, 1, 0])), "only special tokens"),
        (lambda: bits_per_byte(np.ones(3), np.array([0, 1]), np.array([1, 1])), "one loss per target"),
    ],
)
def test_errors_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
