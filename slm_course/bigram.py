"""A count-based bigram language model: the baseline every GPT in the course has to beat.

It predicts the next token from the previous one alone, by counting. With add-alpha smoothing
(every pair gets ``alpha`` pretend sightings, so no token is ever impossible):

    P(next = b | previous = a) = (count(a, b) + alpha) / (count(a) + alpha * V)

where count(a) is how often a is followed by anything and V the vocabulary size. Training is one
pass of counting, with no gradient and no parameters to tune except ``alpha``.

The counts are kept *sparse*: only the pairs that occur, as sorted codes ``a * V + b``. A dense
V x V table would take 8 * 50,257**2 bytes, about 20 GB, for GPT-2's vocabulary, while a few
million tokens of stories contain only a few hundred thousand distinct pairs.

Losses come in two units (see :func:`bits_per_byte`): nats per token, what training minimises,
and bits per byte, the one that can be compared between tokenizers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

DENSE_LIMIT = 4096  # the largest vocabulary dense_counts() builds a V x V table for (128 MB)


@dataclass(frozen=True)
class BigramModel:
    """Bigram counts of a token stream and the smoothing that turns them into probabilities.

    Build one with :meth:`fit`. ``pairs`` holds the sorted codes ``a * vocab_size + b`` of the
    pairs (a, b) seen in training and ``pair_counts`` how often each was seen; ``row_counts[a]``
    is how often a was followed by any token.
    """

    vocab_size: int
    alpha: float
    pairs: np.ndarray
    pair_counts: np.ndarray
    row_counts: np.ndarray

    @classmethod
    def fit(cls, tokens: np.ndarray, vocab_size: int, alpha: float = 0.1) -> BigramModel:
        """Count every pair of neighbouring tokens in ``tokens`` (a 1-D array of ids).

        Example: tokens ``[0, 1, 0, 1]``, vocab 2 -> pairs (0, 1) twice and (1, 0) once.
        """
        tokens = _check_tokens(tokens, vocab_size, "tokens")
        _check_alpha(alpha)
        codes = tokens[:-1] * vocab_size + tokens[1:]
        pairs, pair_counts = np.unique(codes, return_counts=True)
        row_counts = np.bincount(tokens[:-1], minlength=vocab_size).astype(np.int64)
        return cls(vocab_size, float(alpha), pairs, pair_counts.astype(np.int64), row_counts)

    def with_alpha(self, alpha: float) -> BigramModel:
        """The same counts with another smoothing strength (no recounting)."""
        _check_alpha(alpha)
        return dataclasses.replace(self, alpha=float(alpha))

    def counts(self, prev: np.ndarray, next_: np.ndarray) -> np.ndarray:
        """How often each pair (prev[i], next_[i]) was seen in training (0 if never)."""
        codes = np.asarray(prev, dtype=np.int64) * self.vocab_size + np.asarray(next_, dtype=np.int64)
        where = np.searchsorted(self.pairs, codes)
        found = where < len(self.pairs)
        found[found] = self.pairs[where[found]] == codes[found]
        return np.where(found, self.pair_counts[np.minimum(where, len(self.pairs) - 1)], 0)

    def nll(self, tokens: np.ndarray) -> np.ndarray:
        """-ln P(tokens[t + 1] | tokens[t]) for every t: one loss in nats per predicted token."""
        tokens = _check_tokens(tokens, self.vocab_size, "tokens")
        prev, next_ = tokens[:-1], tokens[1:]
        numerator = self.counts(prev, next_) + self.alpha
        denominator = self.row_counts[prev] + self.alpha * self.vocab_size
        return np.log(denominator) - np.log(numerator)

    def next_token_probs(self, prev: int) -> np.ndarray:
        """The whole distribution P(next | prev) over the vocabulary, summing to 1."""
        probs = np.full(self.vocab_size, self.alpha, dtype=np.float64)
        lo, hi = np.searchsorted(self.pairs, [prev * self.vocab_size, (prev + 1) * self.vocab_size])
        probs[self.pairs[lo:hi] - prev * self.vocab_size] += self.pair_counts[lo:hi]
        return probs / probs.sum()

    def dense_counts(self) -> np.ndarray:
        """The V x V table of counts, ``table[a, b]`` = how often b followed a (small vocabularies)."""
        if self.vocab_size > DENSE_LIMIT:
            raise ValueError(f"a dense table of {self.vocab_size:,}^2 counts is too large; use counts() "
                             f"(sparse) for vocabularies above {DENSE_LIMIT:,}")
        table = np.zeros(self.vocab_size * self.vocab_size, dtype=np.int64)
        table[self.pairs] = self.pair_counts
        return table.reshape(self.vocab_size, self.vocab_size)

    def sample(self, start: int, max_new_tokens: int, rng: np.random.Generator, stop: int | None = None) -> list[int]:
        """Draw up to ``max_new_tokens`` tokens after ``start``, each from P(next | previous one);
        ``stop`` (usually ``<|endoftext|>``) ends the sample and is not included.

        Exact for the smoothed distribution without building it: with probability
        count(a) / (count(a) + alpha * V) the next token is drawn from the seen successors of a
        in proportion to their counts, otherwise uniformly from the whole vocabulary.
        """
        out, prev = [], int(start)
        for _ in range(max_new_tokens):
            lo, hi = np.searchsorted(self.pairs, [prev * self.vocab_size, (prev + 1) * self.vocab_size])
            seen = int(self.row_counts[prev])
            if rng.random() * (seen + self.alpha * self.vocab_size) < seen:
                cumulative = np.cumsum(self.pair_counts[lo:hi])
                pick = int(np.searchsorted(cumulative, rng.integers(seen), side="right"))
                token = int(self.pairs[lo + pick] - prev * self.vocab_size)
            else:
                token = int(rng.integers(self.vocab_size))
            if token == stop:
                break
            out.append(token)
            prev = token
        return out


def bits_per_byte(nll: np.ndarray, targets: np.ndarray, byte_lengths: np.ndarray) -> float:
    """Total loss over total text: sum of nats / sum of UTF-8 bytes / ln 2.

    ``nll[i]`` is the loss (nats) of predicting token ``targets[i]``; ``byte_lengths`` comes from
    ``slm_course.tokenizer.token_byte_lengths`` and is 0 for special tokens, whose predictions are
    left out of both sums (``<|endoftext|>`` stands for no text). A tokenizer with longer tokens
    makes fewer, harder predictions per story: nats per token goes up, but the cost of the whole
    text, per byte of it, is what the models are really being compared on.

    Example: two tokens of 4 and 2 bytes, losses 3.0 and 1.0 nats -> 4.0 / 6 / ln 2 = 0.962 bits/byte
    """
    nll, targets = np.asarray(nll, dtype=np.float64), np.asarray(targets)
    if nll.shape != targets.shape:
        raise ValueError(f"nll {nll.shape} and targets {targets.shape} must have one loss per target")
    lengths = np.asarray(byte_lengths)[targets]
    text = lengths > 0
    n_bytes = int(lengths[text].sum())
    if n_bytes == 0:
        raise ValueError("the targets hold no text (only special tokens): bits per byte is undefined")
    return float(nll[text].sum() / n_bytes / math.log(2))


def _check_tokens(tokens: np.ndarray, vocab_size: int, name: str) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.size < 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of at least 2 integer token ids, got "
                         f"shape {tokens.shape} of {tokens.dtype}")
    if int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size:
        raise ValueError(f"{name} holds ids outside the vocabulary [0, {vocab_size}): "
                         f"min {int(tokens.min())}, max {int(tokens.max())}")
    return tokens.astype(np.int64)


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number (0 would make unseen pairs impossible), got {alpha!r}")
