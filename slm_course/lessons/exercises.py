"""Checkers for the exercises at the end of each lesson.

Every ``check_...(answer)`` prints either "✓ Correct!" or "✗ Not quite" with a hint, and never the
solution: the point is for the learner to get there. Expected answers are computed from the package
(or from a stated formula) rather than typed in, so they stay right if the model code changes.
Checkers return nothing, so a notebook cell ending in ``check_...(answer)`` shows only the verdict.

Two kinds of exercise. A *number or choice* exercise passes the answer (``None`` until the learner
writes one). A *code* exercise passes a function the learner wrote: ``check_...(my_fn)`` runs it on
cases it never shows (random shapes and seeds, and the edge cases where implementations go wrong),
stops at the first case that fails, names that case and what was wrong with the result, and gives a
hint. A stub whose body is still ``...`` returns None, and the checker says the exercise is not
done yet. No checker raises on a wrong, unfinished or crashing answer: it prints, so a lesson run
top to bottom (and nbval) goes on. The cases come from a fixed seed, so a verdict is repeatable.
Solutions live in ``slm_course.lessons.solutions``; nothing here imports it.

Convention for adding a checker: put it under its lesson's header, state the question in the
docstring exactly as the lesson asks it, and build it from the helpers below.
"""

from __future__ import annotations

import copy
import math
import random
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slm_course.bigram import BigramModel
from slm_course.bpe_train import iter_merges_naive, merge_pair
from slm_course.config import GPTConfig, TrainConfig
from slm_course.data import get_batch
from slm_course.model import GPT, Block
from slm_course.sample import top_p_filter

CORRECT = "✓ Correct!"
WRONG = "✗ Not quite."
UNANSWERED = "✗ No answer yet: replace None with your answer and run the cell again."
NOT_DONE = "✗ Not done yet: {name} returns None. Write its body (replace the ...) and run the cell again."


def _verdict(correct: bool, hint: str, praise: str = "") -> None:
    """Print the verdict; on a wrong answer print only the hint (never the solution)."""
    if correct:
        print(f"{CORRECT} {praise}".rstrip())
    else:
        print(f"{WRONG} Hint: {hint}")


def _as_number(answer: Any) -> float | None:
    """The answer as a float, or None after printing why it isn't a usable number."""
    if answer is None:
        print(UNANSWERED)
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or math.isnan(answer):
        print(f"✗ Expected a number, got {answer!r} ({type(answer).__name__}).")
        return None
    return float(answer)


def _check_number(answer: Any, expected: float, hint: str, rel_tol: float = 0.0, abs_tol: float = 0.0,
                  praise: str = "") -> None:
    """Check a numeric answer against ``expected`` within the given tolerances (exact by default)."""
    value = _as_number(answer)
    if value is not None:
        _verdict(math.isclose(value, expected, rel_tol=rel_tol, abs_tol=abs_tol), hint, praise)


def _check_choice(answer: Any, expected: str, choices: Sequence[str], hint: str, praise: str = "") -> None:
    """Check a one-word answer (case and surrounding spaces ignored) from a fixed set of choices."""
    if answer is None:
        print(UNANSWERED)
        return
    word = str(answer).strip().lower()
    if word not in choices:
        print(f"✗ Expected one of {list(choices)}, got {answer!r}.")
        return
    _verdict(word == expected, hint, praise)


# --- code exercises: run the learner's function on hidden cases ------------------------------------

Judge = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class _Case:
    """One hidden test of a learner's function.

    ``make()`` builds fresh arguments (the learner may change them in place) and a judge that
    returns what is wrong with the function's result, or None if it is right. ``name`` describes
    the case without giving its answer; it is what the learner reads when the case fails.
    """

    name: str
    make: Callable[[], tuple[tuple, Judge]]


def _check_function(fn: Any, cases: Sequence[_Case], hint: str, praise: str = "") -> None:
    """Run ``fn`` on every case in order; print the verdict of the first one that fails, or praise."""
    if fn is None:
        print("✗ No answer yet: pass the function you wrote, e.g. check_...(my_function).")
        return
    if not callable(fn):
        print(f"✗ Expected a function, got {fn!r} ({type(fn).__name__}).")
        return
    name = getattr(fn, "__name__", "your function")
    for number, case in enumerate(cases, start=1):
        args, judge = case.make()
        where = f"Case {number} of {len(cases)} ({case.name})"
        try:
            result = fn(*args)
        except Exception as error:  # the learner's code may raise anything: report it, don't crash
            print(f"{WRONG} {where}: {name} raised {type(error).__name__}: {error}{_raised_at(error)}")
            print(f"Hint: {hint}")
            return
        if result is None and number == 1:
            print(NOT_DONE.format(name=name))
            return
        problem = judge(result)
        if problem and result is None:
            problem = "it returned None"
        if problem:
            print(f"{WRONG} {where}: {problem}.")
            print(f"Hint: {hint}")
            return
    print(f"{CORRECT} All {len(cases)} cases pass. {praise}".rstrip())


def _raised_at(error: Exception) -> str:
    """Where in the learner's code the error was raised: the last frame outside this package."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "slm_course" not in f.filename]
    if not frames or not frames[-1].line:
        return ""
    return f"\n  (at the line `{frames[-1].line.strip()}`)"


def _tensor_problem(result: Any, expected: torch.Tensor, what: str = "the result", atol: float = 1e-5,
                    rtol: float = 1e-4, dtype: bool = False) -> str | None:
    """What is wrong with a tensor result: its type, shape, dtype (if ``dtype``) or values."""
    if isinstance(result, np.ndarray):
        result = torch.from_numpy(result)
    if not isinstance(result, torch.Tensor):
        return f"{what} should be a tensor, got {type(result).__name__}"
    if tuple(result.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(result.shape)}; expected shape {tuple(expected.shape)}"
    if dtype and result.dtype != expected.dtype:
        return f"{what} has dtype {result.dtype}; expected {expected.dtype}"
    if result.is_floating_point() or expected.is_floating_point():
        got, want = result.detach().double(), expected.detach().double()
        if not torch.isfinite(got).all() and torch.isfinite(want).all():
            return f"{what} contains inf or NaN"
        if not torch.allclose(got, want, atol=atol, rtol=rtol):
            return f"{what} has the right shape but wrong values (largest difference {(got - want).abs().max():.3g})"
    elif not torch.equal(result.cpu(), expected.cpu()):
        return f"{what} has the right shape but wrong values"
    return None


def _float(result: Any) -> float | None:
    """A Python float from a number or a one-element tensor; None if it is neither."""
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        return float(result.item())
    if isinstance(result, (int, float, np.floating, np.integer)) and not isinstance(result, bool):
        return float(result)
    return None


def _count_params(config: GPTConfig) -> int:
    """Parameters of a GPT with this config, counted on the meta device (no memory, no init time)."""
    with torch.device("meta"):
        return GPT(config).num_params()


# --- Lesson 00: what makes a model small -------------------------------------------------------

PARAM_COUNT_CONFIG = GPTConfig(vocab_size=8192, block_size=256, n_layer=4, n_head=4, n_embd=256, dropout=0.0)


def check_param_count(answer: Any) -> None:
    """How many parameters does ``GPT(PARAM_COUNT_CONFIG)`` have (vocab 8192, context 256,
    4 layers, 4 heads, 256 dims, biases, tied head)? Count with the formula, not with ``GPT``."""
    _check_number(
        answer,
        _count_params(PARAM_COUNT_CONFIG),
        "token table V*C + position table T*C + n_layer * (12*C**2 + 13*C) + the final LayerNorm's 2*C. "
        "The lm_head adds nothing: it is tied to the token table.",
        praise="You can size any GPT-2-style model on the back of an envelope now.",
    )


def check_training_memory_gb(answer: Any) -> None:
    """In fp32, how many GB (1 GB = 1e9 bytes) do GPT-2 small's weights + gradients + AdamW's two
    moment buffers take (activations not included)?"""
    n = _count_params(GPTConfig.gpt2())
    _check_number(
        answer,
        n * 4 * 4 / 1e9,
        "count how many fp32 numbers AdamW training keeps per parameter (weight, gradient, and two "
        "moments), multiply by 4 bytes each and by GPT-2 small's parameter count.",
        rel_tol=0.03,
        praise="That's why even a 124M model wants a few GB before a single activation is stored.",
    )


def check_training_flops(answer: Any) -> None:
    """With the 6*N*D rule, how many FLOPs does training the seed model
    (``GPTConfig.seed()``) on one billion tokens take?"""
    n = _count_params(GPTConfig.seed())
    _check_number(
        answer,
        6 * n * 1e9,
        "N is the seed model's parameter count (about 30 million), D = 1e9 tokens; "
        "write the answer in scientific notation, e.g. 1.2e17.",
        rel_tol=0.05,
        praise="Divide by your machine's FLOP/s to turn that into time.",
    )


def check_count_params(fn: Any) -> None:
    """Write ``count_params(config) -> int``: the parameters of ``GPT(config)`` from the config
    alone, for ``bias=True`` *and* ``bias=False`` (no biases in any Linear or LayerNorm)."""
    rng = random.Random(0)

    def case(config: GPTConfig) -> tuple[tuple, Judge]:
        expected = _count_params(config)

        def judge(result: Any) -> str | None:
            value = _float(result)
            if value is None:
                return f"it returned {type(result).__name__}, not a whole number"
            if value != expected:
                return f"it counted {value:,.0f} parameters, which is {'too many' if value > expected else 'too few'}"
            return None

        return (config,), judge

    def random_config(bias: bool) -> GPTConfig:
        n_head = rng.choice([1, 2, 4])
        return GPTConfig(vocab_size=rng.randint(50, 9000), block_size=rng.randint(8, 512), n_layer=rng.randint(1, 8),
                         n_head=n_head, n_embd=n_head * rng.randint(4, 64), dropout=0.0, bias=bias)

    configs = [("the seed model", GPTConfig.seed()), ("GPT-2 small without biases", GPTConfig.gpt2().replace(bias=False))]
    configs += [(f"a random config with bias={bias}", random_config(bias)) for bias in (True, False, True, False)]
    _check_function(
        fn,
        [_Case(name, lambda c=config: case(c)) for name, config in configs],
        "start from the table: V*C + T*C + L*(12*C**2 + 13*C) + 2*C. With bias=False, every Linear loses "
        "its bias vector and every LayerNorm its bias (it keeps its weight): which of the 13*C and 2*C "
        "terms are biases?",
        praise="You can size a GPT from its config without building it.",
    )


# --- Lesson 01: tokenization and BPE ------------------------------------------------------------

UTF8_TEXT = "naïve 🙂"
FIRST_MERGE_TEXT = "aaabdaaabac"


def check_utf8_bytes(answer: Any) -> None:
    """How many bytes does the string ``"naïve 🙂"`` take in UTF-8?"""
    _check_number(
        answer,
        len(UTF8_TEXT.encode("utf-8")),
        "go character by character: ASCII characters (plain letters, the space) take 1 byte, "
        "accented Latin letters 2, and emoji 4. Check yourself with len(text.encode('utf-8')).",
        praise="Characters and bytes are different units: tokenizers count bytes.",
    )


def check_num_merges(answer: Any) -> None:
    """A byte-level BPE has a vocabulary of 1,024 tokens, one of which is the special token
    ``<|endoftext|>``. How many merges did its training learn?"""
    _check_number(
        answer,
        1024 - 256 - 1,
        "the vocabulary is the byte tokens, plus one token per merge, plus the special tokens. "
        "How many byte tokens are there?",
        praise="Every merge adds exactly one token to the vocabulary.",
    )


def check_first_merge(answer: Any) -> None:
    """Which pair does BPE merge first in the text ``"aaabdaaabac"``? Answer with the two
    characters as one string, e.g. ``"xy"``."""
    if answer is None:
        print(UNANSWERED)
        return
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        answer = "".join(chr(a) if isinstance(a, int) else str(a) for a in answer)
    if not isinstance(answer, str) or len(answer) != 2:
        print(f"✗ Expected two characters as one string, like 'xy', got {answer!r}.")
        return
    counts: dict[str, int] = {}
    for a, b in zip(FIRST_MERGE_TEXT, FIRST_MERGE_TEXT[1:]):
        counts[a + b] = counts.get(a + b, 0) + 1
    best = min(counts, key=lambda pair: (-counts[pair], pair))
    _verdict(
        answer == best,
        "write down every pair of neighbouring characters (they overlap: 'abc' has 'ab' and 'bc') "
        "and count how often each occurs; the most frequent one is merged first.",
        praise="Overlapping pairs count separately when counting, even though a merge can't use both.",
    )


def check_best_pair(fn: Any) -> None:
    """Write ``best_pair(ids) -> tuple[int, int] | None``: the most frequent pair of neighbouring
    ids, a tie going to the smallest pair (compare the tuples), None if ``ids`` has no pair."""
    rng = random.Random(1)

    def case(ids: list[int]) -> tuple[tuple, Judge]:
        counts: dict[tuple[int, int], int] = {}
        for pair in zip(ids, ids[1:]):
            counts[pair] = counts.get(pair, 0) + 1

        def judge(result: Any) -> str | None:
            if not counts:
                return None if result is None else f"it returned {result!r}, but a list this short has no pair"
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                return f"it returned {result!r}; expected a pair of two ids like (97, 98)"
            pair = (result[0], result[1])
            best = max(counts.values())
            if pair not in counts:
                return f"it returned {pair}, which never occurs as neighbours in the list"
            if counts[pair] < best:
                return f"the pair it returned occurs {counts[pair]} times, but another pair occurs more often"
            if pair != min(p for p, n in counts.items() if n == best):
                return f"{pair} is tied for most frequent, but a smaller pair is tied with it"
            return None

        return (list(ids),), judge

    def random_ids(n: int, alphabet: int) -> list[int]:
        return [rng.randrange(97, 97 + alphabet) for _ in range(n)]

    cases = [_Case("a list with one clear winner", lambda: case([1, 2, 3, 1, 2, 4, 1, 2]))]
    cases += [_Case(f"{n} random ids from {a} values, with ties", lambda ids=random_ids(n, a): case(ids))
              for n, a in ((6, 3), (12, 4), (30, 3), (40, 6))]
    cases += [
        _Case("a run of one id, whose pairs overlap", lambda: case([5, 5, 5, 5])),
        _Case("a pair that only ties with a smaller one that comes later", lambda: case([9, 8, 1, 2, 9, 8, 1, 2])),
        _Case("a single id", lambda: case([7])),
        _Case("an empty list", lambda: case([])),
    ]
    _check_function(
        fn,
        cases,
        "count every pair with zip(ids, ids[1:]), then pick the pair with the highest count; among "
        "pairs with the same count take min() of them. A list with fewer than two ids has no pairs.",
        praise="Deterministic tie-breaking is what lets two BPE trainers learn exactly the same merges.",
    )


def check_encode(fn: Any) -> None:
    """Write ``encode(ids, merges) -> list[int]`` the way fast tokenizers do: while some pair of
    neighbours is in ``merges`` (``{pair: new_id}``), merge the pair with the *smallest new id*
    everywhere, and stop when no neighbouring pair is in ``merges``."""
    rng = random.Random(2)
    training_text = "the cat sat on the mat with the hat; that cat ate that rat at the mall " * 3
    merges = {pair: 256 + k for k, (pair, _) in zip(range(40), iter_merges_naive([list(training_text.encode())]))}

    def replay(ids: list[int], table: dict[tuple[int, int], int]) -> list[int]:
        for pair, new_id in table.items():  # in the order learned, like lesson 01's encode
            ids = merge_pair(ids, pair, new_id)
        return ids

    def case(text: str, table: dict[tuple[int, int], int]) -> tuple[tuple, Judge]:
        ids = list(text.encode("utf-8"))
        expected = replay(ids, table)

        def judge(result: Any) -> str | None:
            if not isinstance(result, (list, tuple)):
                return f"it returned {type(result).__name__}; expected a list of ids"
            result = list(result)
            if result == expected:
                return None
            if len(result) != len(expected):
                return (f"it returned {len(result)} ids for a text of {len(ids)} bytes, "
                        f"{'more' if len(result) > len(expected) else 'fewer'} than the merges give")
            first = next(i for i, (a, b) in enumerate(zip(result, expected)) if a != b)
            return f"the right number of ids, but they differ from position {first} on"

        return (ids, dict(table)), judge

    words = training_text.split()
    random_text = " ".join(rng.choice(words) for _ in range(12))
    _check_function(
        fn,
        [
            _Case("a text the merges were learned on", lambda: case("the cat sat on the mat", merges)),
            _Case("random words from that text", lambda: case(random_text, merges)),
            _Case("a text with bytes the merges have never seen", lambda: case("Thé bat! 🐈 that mat", merges)),
            _Case("a text in which a merge needs an earlier one", lambda: case("that hat", merges)),
            _Case("two merges that overlap, the lower-ranked one on the right",
                  lambda: case("abcabc", {(98, 99): 256, (97, 98): 257, (97, 256): 258})),
            _Case("no merges at all", lambda: case("the cat", {})),
            _Case("a single byte", lambda: case("t", merges)),
            _Case("an empty text", lambda: case("", merges)),
        ],
        "in a loop: collect the neighbouring pairs that are in merges; if there are none, stop; "
        "otherwise take the one with the smallest merges[pair] and replace every occurrence of it "
        "(left to right) with its new id, as merge() does.",
        praise="Lowest rank first gives the same ids as replaying every merge, without touching the merges "
               "that can't apply: that is how tiktoken encodes with 50,000 of them.",
    )


# --- Lesson 02: the data pipeline ---------------------------------------------------------------

TARGET_STREAM = [3, 5, 9, 2, 7, 4, 1]  # x is the window [5, 9, 2, 7]


def check_targets(answer: Any) -> None:
    """The token stream is ``[3, 5, 9, 2, 7, 4, 1]`` and a batch row has inputs
    ``x = [5, 9, 2, 7]``. What are its targets ``y``? (A list of 4 ids.)"""
    if answer is None:
        print(UNANSWERED)
        return
    try:
        values = [int(v) for v in (answer.tolist() if isinstance(answer, torch.Tensor) else answer)]
    except (TypeError, ValueError):
        print(f"✗ Expected a list of 4 token ids, got {answer!r}.")
        return
    start = TARGET_STREAM.index(5)
    _verdict(
        values == TARGET_STREAM[start + 1 : start + 5],
        "y[t] is the token that comes right after x[t] in the stream, for every position t.",
        praise="Every position of a window is a training example: predict the next token.",
    )


def check_predictions_per_batch(answer: Any) -> None:
    """With ``batch_size = 16`` and ``block_size = 64``, how many next-token predictions does the
    loss of one batch average over?"""
    _check_number(
        answer,
        16 * 64,
        "each row of the batch is a window of block_size tokens, and the model predicts the next "
        "token at every position of the window.",
        praise="That's why a causal model learns so much from one window.",
    )


def check_token_file_gb(answer: Any) -> None:
    """A training split holds 470 million tokens of a 50,257-token vocabulary. How many GB
    (1 GB = 1e9 bytes) does its ``.bin`` file take?"""
    _check_number(
        answer,
        470e6 * 2 / 1e9,
        "prepare() stores each id in the smallest unsigned integer type that holds the whole "
        "vocabulary. How many bytes is that?",
        rel_tol=0.02,
        praise="Small enough to memory-map on any laptop.",
    )


def check_get_batch(fn: Any) -> None:
    """Write ``get_batch(tokens, batch_size, block_size, generator) -> (x, y)`` without a Python
    loop: int64 tensors of shape (batch_size, block_size), ``y`` the windows shifted by one, drawing
    the same windows as ``slm_course.data.get_batch`` given the same generator."""
    rng = np.random.default_rng(3)

    def case(tokens: np.ndarray, batch_size: int, block_size: int, seed: int) -> tuple[tuple, Judge]:
        x_ref, y_ref = get_batch(tokens, batch_size, block_size, "cpu", generator=torch.Generator().manual_seed(seed))

        def judge(result: Any) -> str | None:
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                return f"it returned {type(result).__name__}; expected a pair (x, y)"
            x, y = result
            for name, got, want in (("x", x, x_ref), ("y", y, y_ref)):
                problem = _tensor_problem(got, want, what=name, dtype=True)
                if problem:
                    if "wrong values" in problem and name == "y" and torch.equal(torch.as_tensor(y), x_ref):
                        return "y is the same as x: the targets must be the windows moved one token to the right"
                    if "wrong values" in problem and name == "x":
                        return problem + ": not the windows data.get_batch draws with the same generator"
                    return problem
            return None

        return (tokens, batch_size, block_size, torch.Generator().manual_seed(seed)), judge

    def tokens(n: int) -> np.ndarray:
        return rng.integers(0, 1000, size=n).astype(np.uint16)

    shapes = [(200, 4, 8), (57, 1, 16), (1000, 8, 1), (300, 5, 30)]
    cases = [_Case(f"{n} tokens, batch {b}, block {t}", lambda a=tokens(n), b=b, t=t, s=k: case(a, b, t, s))
             for k, (n, b, t) in enumerate(shapes)]
    cases.append(_Case("a stream just one token longer than a window", lambda a=tokens(9): case(a, 3, 8, 7)))
    _check_function(
        fn,
        cases,
        "draw all the start positions with a single torch.randint call made exactly as lesson 02's "
        "get_batch_naive makes it (same upper bound, same size, same generator), so that the generator "
        "gives the same numbers; then build one index array of shape (batch_size, block_size + 1) by "
        "broadcasting, read the tokens once, and cut x and y out of it.",
        praise="One fancy-indexing read per batch: that is how the package reads a memmap.",
    )


def check_bigram_counts(fn: Any) -> None:
    """Write ``bigram_counts(tokens, vocab_size) -> array`` of shape (vocab_size, vocab_size):
    entry [a, b] is how often token b comes right after token a in ``tokens``."""
    rng = np.random.default_rng(4)

    def case(tokens: np.ndarray, vocab_size: int) -> tuple[tuple, Judge]:
        expected = torch.from_numpy(BigramModel.fit(tokens, vocab_size).dense_counts())

        def judge(result: Any) -> str | None:
            if not isinstance(result, (np.ndarray, torch.Tensor)):
                return f"it returned {type(result).__name__}; expected a numpy array or a tensor"
            got = torch.as_tensor(np.asarray(result) if isinstance(result, np.ndarray) else result).double()
            problem = _tensor_problem(got, expected.double(), what="the table", atol=0, rtol=0)
            if problem and "wrong values" in problem:
                if torch.equal(got.T, expected.double()):
                    return "rows and columns are swapped: row = the token before, column = the token after"
                if got.sum() < expected.sum():
                    return (f"the table holds {got.sum():.0f} pairs but the list has {len(tokens) - 1}: "
                            f"some repeated pairs were counted only once")
            return problem

        return (tokens.copy(), vocab_size), judge

    _check_function(
        fn,
        [
            _Case("a list of 6 ids", lambda: case(np.array([0, 1, 2, 0, 1, 3]), 4)),
            _Case("the same pair many times", lambda: case(np.array([2, 1, 2, 1, 2, 1, 2]), 3)),
            _Case("300 random ids from a vocabulary of 12", lambda a=rng.integers(0, 12, 300): case(a, 12)),
            _Case("uint16 ids, as in a token file", lambda a=rng.integers(0, 50, 2000).astype(np.uint16): case(a, 50)),
            _Case("two ids", lambda: case(np.array([3, 3]), 5)),
        ],
        "add 1 to table[a, b] for every neighbouring pair (a, b) in zip(tokens, tokens[1:]). If you "
        "vectorise it, beware: table[prev, next] += 1 with index arrays adds 1 only once per distinct "
        "pair; look for a NumPy function that accumulates repeated indices.",
        praise="That table is the whole bigram model: normalise each row and you can sample stories.",
    )


# --- Lesson 03: attention -----------------------------------------------------------------------


def check_dot_product_std(answer: Any) -> None:
    """q and k have 64 independent entries, each with mean 0 and variance 1. What is the standard
    deviation of the dot product q·k?"""
    _check_number(
        answer,
        math.sqrt(64),
        "q·k is a sum of 64 independent products, each with variance 1; variances of independent "
        "terms add up, and the std is the square root of the variance.",
        rel_tol=0.02,
        praise="That's exactly the factor attention divides the scores by.",
    )


def check_equal_scores_weights(answer: Any) -> None:
    """Three tokens, every attention score equal (say all 0), causal mask applied. Write the 3 x 3
    matrix of attention weights (a nested list or a tensor; row = query, column = key)."""
    if answer is None:
        print(UNANSWERED)
        return
    try:
        weights = torch.as_tensor(answer, dtype=torch.float64)
    except (TypeError, ValueError):
        print(f"✗ Expected a 3 x 3 nested list or tensor of numbers, got {answer!r}.")
        return
    if weights.shape != (3, 3):
        print(f"✗ Expected a 3 x 3 matrix, got shape {tuple(weights.shape)}.")
        return
    scores = torch.zeros(3, 3, dtype=torch.float64)
    future = torch.ones(3, 3, dtype=torch.bool).triu(diagonal=1)
    expected = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    _verdict(
        torch.allclose(weights, expected, atol=1e-2),
        "query t may only see keys 0..t, and softmax of equal scores spreads the weight evenly over "
        "the keys it can see; every row must sum to 1.",
        praise="With nothing to prefer, causal attention is a running average of the past.",
    )


def check_causal_pairs(answer: Any) -> None:
    """In one causal attention head over T = 128 tokens, how many (query, key) pairs get a
    non-zero weight?"""
    T = 128
    _check_number(
        answer,
        T * (T + 1) // 2,
        "query 0 sees 1 key, query 1 sees 2 keys, ..., query 127 sees 128 keys. Add them up.",
        praise="Just over half of the T x T matrix: the rest is masked.",
    )


def check_split_heads(fn: Any) -> None:
    """Write ``split_heads(x, n_head) -> tensor``: queries (or keys, or values) ``x`` of shape
    (B, T, C) to (B, n_head, T, C // n_head), head h holding features h * head_size ...
    (h + 1) * head_size of every token, as ``CausalSelfAttention.split_heads`` lays them out."""
    generator = torch.Generator().manual_seed(5)

    def case(B: int, T: int, n_head: int, head_size: int) -> tuple[tuple, Judge]:
        x = torch.randn(B, T, n_head * head_size, generator=generator)
        expected = x.view(B, T, n_head, head_size).transpose(1, 2)

        def judge(result: Any) -> str | None:
            problem = _tensor_problem(result, expected, atol=0, rtol=0)
            if problem and "wrong values" in problem:
                return problem + ": head h must hold features h*head_size:(h+1)*head_size of each token"
            return problem

        return (x.clone(), n_head), judge

    shapes = [(2, 5, 4, 3), (1, 7, 2, 8), (3, 1, 6, 4), (4, 9, 1, 5), (2, 16, 8, 2)]
    _check_function(
        fn,
        [_Case(f"B={b}, T={t}, {h} heads of size {d}", lambda s=(b, t, h, d): case(*s)) for b, t, h, d in shapes],
        "a token's C features are stored head after head, so first split the last dimension "
        "(view it as (B, T, n_head, head_size)), then swap the head and time axes. Viewing straight "
        "to (B, n_head, T, head_size) cuts the wrong numbers into heads.",
        praise="view splits a dimension where the numbers already lie; transpose moves the axis.",
    )


def check_causal_attention(fn: Any) -> None:
    """Write ``causal_attention(q, k, v) -> tensor``: for q, k, v of shape (B, n_head, T, d),
    softmax(q k^T / sqrt(d)) v with the causal mask, computed for every batch entry and head at once."""
    generator = torch.Generator().manual_seed(6)

    def case(B: int, H: int, T: int, d: int, scale: float = 1.0) -> tuple[tuple, Judge]:
        q, k, v = (torch.randn(B, H, T, d, generator=generator, dtype=torch.float64) * scale for _ in range(3))
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def judge(result: Any) -> str | None:
            return _tensor_problem(result, expected, atol=1e-6)

        return (q.clone(), k.clone(), v.clone()), judge

    shapes = [(1, 1, 4, 8), (2, 3, 6, 16), (1, 2, 1, 4), (3, 4, 10, 64), (2, 1, 7, 5)]
    cases = [_Case(f"B={b}, n_head={h}, T={t}, d={d}", lambda s=(b, h, t, d): case(*s))
             for b, h, t, d in shapes]
    cases.append(_Case("large scores (entries of size 10)", lambda: case(1, 2, 8, 16, scale=10.0)))
    _check_function(
        fn,
        cases,
        "three things to get right: the scale (the square root of the head size, the last dimension "
        "of q); the mask (only keys *after* the query are hidden: the diagonal stays visible), applied "
        "as -inf before the softmax; and the softmax's dimension (over the keys).",
        praise="That is F.scaled_dot_product_attention(q, k, v, is_causal=True), written out.",
    )


# --- Lesson 04: the transformer block -----------------------------------------------------------


def check_block_params(answer: Any) -> None:
    """How many parameters does one ``Block`` with n_embd = 512 (and biases) have?"""
    with torch.device("meta"):
        block = Block(GPTConfig(n_embd=512, n_head=8, dropout=0.0))
    _check_number(
        answer,
        sum(p.numel() for p in block.parameters()),
        "attention has a C x 3C and a C x C matrix, the MLP a C x 4C and a 4C x C; add one bias per "
        "output feature and a weight + bias per LayerNorm (two of them).",
        praise="12*C**2 + 13*C: the C**2 terms dominate as the model widens.",
    )


def check_layernorm_stats(answer: Any) -> None:
    """A LayerNorm has weight 2.0 and bias 0.5 in every feature. What are the mean and standard
    deviation of each token's output vector? Answer as a pair ``(mean, std)``."""
    if answer is None:
        print(UNANSWERED)
        return
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        print(f"✗ Expected a pair (mean, std), got {answer!r}.")
        return
    mean, std = (_as_number(value) for value in answer)
    if mean is None or std is None:
        return
    _verdict(
        math.isclose(mean, 0.5, abs_tol=0.02) and math.isclose(std, 2.0, rel_tol=0.02),
        "after normalising, every token has mean 0 and std 1; then each feature is multiplied by "
        "the weight and shifted by the bias. What do scaling and shifting do to a mean and a std?",
        praise="The learned weight and bias let the model undo the normalisation where that helps.",
    )


def check_changed_positions(answer: Any) -> None:
    """A sequence has 6 tokens (positions 0 to 5). You change the input at position 2 only. At which
    positions does the output of the causal self-attention sub-layer change? Answer with a list."""
    if answer is None:
        print(UNANSWERED)
        return
    try:
        positions = {int(p) for p in answer}
    except (TypeError, ValueError):
        print(f"✗ Expected a list of positions such as [0, 1], got {answer!r}.")
        return
    if not positions <= set(range(6)):
        print(f"✗ Positions run from 0 to 5; got {sorted(positions)}.")
        return
    T, changed = 6, 2
    expected = {query for query in range(T) if changed <= query}  # query t reads keys 0..t
    _verdict(
        positions == expected,
        "the output at position t is a weighted average over positions 0..t. Which positions' "
        "averages include position 2?",
        praise="Attention moves information forward in time; the MLP and LayerNorm work token by token.",
    )


def check_rms_norm(fn: Any) -> None:
    """Write ``rms_norm(x, weight, eps) -> tensor``, the RMSNorm of Llama-style models: divide each
    token's vector by the root of its mean square (plus ``eps``, inside the root), then multiply by
    ``weight``. Unlike LayerNorm it subtracts no mean and adds no bias."""
    generator = torch.Generator().manual_seed(7)

    def case(shape: tuple[int, ...], eps: float, offset: float = 0.0, scale: float = 1.0) -> tuple[tuple, Judge]:
        x = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale + offset
        weight = torch.randn(shape[-1], generator=generator, dtype=torch.float64)
        expected = x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight

        def judge(result: Any) -> str | None:
            return _tensor_problem(result, expected, atol=1e-7)

        return (x.clone(), weight.clone(), eps), judge

    _check_function(
        fn,
        [
            _Case("2 tokens of 8 features", lambda: case((2, 8), 1e-5)),
            _Case("a (batch, tokens, features) tensor", lambda: case((3, 5, 16), 1e-6)),
            _Case("tokens whose features are far from mean 0", lambda: case((4, 12), 1e-5, offset=3.0)),
            _Case("tiny inputs and a large eps", lambda: case((2, 6), 0.1, scale=0.01)),
            _Case("one token with one feature", lambda: case((1, 1), 1e-5)),
        ],
        "mean over the last dimension only, keepdim=True so that it broadcasts back; square first, "
        "take the mean, add eps, then the square root. Do not subtract the mean: that would be LayerNorm.",
        praise="RMSNorm does LayerNorm's job with less work: no mean, no bias.",
    )


def check_swiglu(fn: Any) -> None:
    """Write ``swiglu(x, w_gate, w_up, w_down) -> tensor``, the MLP of Llama-style models:
    (silu(x @ w_gate) * (x @ w_up)) @ w_down, where silu(z) = z * sigmoid(z)."""
    generator = torch.Generator().manual_seed(8)

    def case(shape: tuple[int, ...], hidden: int) -> tuple[tuple, Judge]:
        C = shape[-1]
        x = torch.randn(*shape, generator=generator, dtype=torch.float64)
        w_gate, w_up = (torch.randn(C, hidden, generator=generator, dtype=torch.float64) for _ in range(2))
        w_down = torch.randn(hidden, C, generator=generator, dtype=torch.float64)
        expected = (F.silu(x @ w_gate) * (x @ w_up)) @ w_down

        def judge(result: Any) -> str | None:
            return _tensor_problem(result, expected, atol=1e-6)

        return (x.clone(), w_gate.clone(), w_up.clone(), w_down.clone()), judge

    _check_function(
        fn,
        [
            _Case("4 tokens, C=8, hidden 20", lambda: case((4, 8), 20)),
            _Case("a (batch, tokens, C) input", lambda: case((2, 3, 6), 16)),
            _Case("one token, hidden smaller than C", lambda: case((1, 10), 4)),
        ],
        "three matrix products: a gate (x @ w_gate) passed through silu, an up projection "
        "(x @ w_up) left linear, their element-wise product, then the down projection. silu is "
        "torch.nn.functional.silu, or z * torch.sigmoid(z); it is not GELU.",
        praise="A gated MLP: one projection decides, feature by feature, how much of the other gets through.",
    )


# --- Lesson 05: the GPT model -------------------------------------------------------------------


def check_init_loss(answer: Any) -> None:
    """At initialisation, roughly what cross-entropy loss do you expect from a model with a
    vocabulary of 4096 tokens?"""
    _check_number(
        answer,
        math.log(4096),
        "a freshly initialised model spreads its probability almost evenly over the vocabulary; "
        "what is -log(p) for the right token if every token gets p = 1 / vocab_size?",
        abs_tol=0.02,
        praise="If your loss at step 0 is far from this, suspect the initialisation.",
    )


def check_tying_savings(answer: Any) -> None:
    """How many parameters does weight tying save in GPT-2 small (``GPTConfig.gpt2()``)?"""
    config = GPTConfig.gpt2()
    _check_number(
        answer,
        config.vocab_size * config.n_embd,
        "without tying, the lm_head would be a separate matrix. What is its shape?",
        praise="Almost a third of GPT-2 small.",
    )


def check_cross_entropy(fn: Any) -> None:
    """Write ``cross_entropy(logits, targets) -> tensor``: logits (N, V), targets (N,) token ids;
    the mean over the N rows of -log softmax(logits)[target], skipping rows whose target is -1,
    and stable for large logits (``F.cross_entropy(logits, targets, ignore_index=-1)``)."""
    generator = torch.Generator().manual_seed(9)

    def case(N: int, V: int, scale: float = 1.0, ignored: int = 0) -> tuple[tuple, Judge]:
        logits = torch.randn(N, V, generator=generator, dtype=torch.float64) * scale
        targets = torch.randint(V, (N,), generator=generator)
        targets[torch.randperm(N, generator=generator)[:ignored]] = -1
        expected = F.cross_entropy(logits, targets, ignore_index=-1)

        def judge(result: Any) -> str | None:
            value = _float(result)
            if value is None:
                return f"it returned {type(result).__name__} of shape {tuple(getattr(result, 'shape', ()))}; expected one number"
            if not math.isfinite(value):
                return f"it returned {value}: exp() of large logits overflows"
            if not math.isclose(value, expected.item(), rel_tol=1e-6, abs_tol=1e-8):
                return f"it returned {value:.4f}, which is not the mean loss of these rows"
            return None

        return (logits.clone(), targets.clone()), judge

    _check_function(
        fn,
        [
            _Case("3 rows, a vocabulary of 5", lambda: case(3, 5)),
            _Case("64 rows, a vocabulary of 1,000", lambda: case(64, 1000)),
            _Case("one row", lambda: case(1, 7)),
            _Case("logits in the hundreds", lambda: case(8, 50, scale=300.0)),
            _Case("some targets are -1 (padding)", lambda: case(10, 20, ignored=4)),
        ],
        "log softmax(z)_i = z_i - log(sum_j exp(z_j)), and exp of a large logit overflows unless "
        "you subtract the row's largest logit first (it cancels out). Take each row's entry at its "
        "target, and average only over the rows whose target is not -1.",
        praise="Now you know every number inside the loss at step 0.",
    )


# --- Lesson 06: training and mixed precision ----------------------------------------------------


def _lr_closed_form(step: int, c: TrainConfig) -> float:
    """The package's schedule, written out here so that the checkers depend on no trainer module."""
    if step < c.warmup_iters:
        return c.lr * (step + 1) / (c.warmup_iters + 1)
    progress = (step - c.warmup_iters) / (c.max_iters - c.warmup_iters)
    return c.min_lr + (c.lr - c.min_lr) * (1 + math.cos(math.pi * progress)) / 2


def check_lr_midway(answer: Any) -> None:
    """A run has lr = 1e-3, min_lr = 1e-4, warmup_iters = 100 and max_iters = 1100. What is the
    learning rate at step 600, halfway through the cosine decay?"""
    config = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=1100)
    _check_number(
        answer,
        _lr_closed_form(600, config),
        "after warmup, lr(step) = min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2, where "
        "progress runs from 0 to 1 over the decay. What is cos(pi / 2)?",
        rel_tol=0.01,
        praise="Halfway through the decay the LR is halfway between lr and min_lr.",
    )


def check_scale_after_overflows(answer: Any) -> None:
    """A GradScaler starts at a scale of 2**16 with growth_interval = 2000. The first 3 steps
    overflow; the 2000 steps after them don't. What is the scale now?"""
    _check_number(
        answer,
        2.0**16 * 0.5**3 * 2.0 ** (2000 // 2000),
        "every overflow skips the step and halves the scale; every growth_interval good steps in a "
        "row double it.",
        praise="The scale settles just below the level at which gradients overflow.",
    )


def check_needs_grad_scaler(answer: Any) -> None:
    """Which compute dtype needs a GradScaler: 'float32', 'bfloat16' or 'float16'?"""
    _check_choice(
        answer,
        "float16",
        ("float32", "bfloat16", "float16"),
        "loss scaling exists to keep small gradients from rounding to zero. Which of the three "
        "formats has the smallest range (compare torch.finfo(dtype).smallest_normal)?",
        praise="bf16 keeps fp32's exponent, so it needs no scaler.",
    )


def check_lr_at(fn: Any) -> None:
    """Write ``lr_at(step, config) -> float``, the package's schedule for update ``step`` (0-based)
    of a ``TrainConfig``: linear warmup from lr / (warmup_iters + 1) at step 0 to lr at step
    warmup_iters, then half a cosine from lr down to min_lr, reached at step max_iters."""
    rng = random.Random(10)

    def case(step: int, config: TrainConfig) -> tuple[tuple, Judge]:
        def judge(result: Any) -> str | None:
            got = _float(result)
            if got is None:
                return f"it returned {type(result).__name__}, not a number"
            if not math.isclose(got, _lr_closed_form(step, config), rel_tol=1e-6, abs_tol=1e-12):
                return f"the rate is wrong (this step is in the {'warmup' if step < config.warmup_iters else 'cosine decay'})"
            return None

        return (step, config), judge

    def random_config(warmup: int) -> TrainConfig:
        lr = 10 ** rng.uniform(-4, -2)
        max_iters = warmup + rng.randint(1, 400)
        return TrainConfig(lr=lr, min_lr=lr * rng.uniform(0, 0.5), warmup_iters=warmup, max_iters=max_iters)

    cases = []
    for warmup in (100, 7, 0, 1, 30):
        config = random_config(warmup)
        last = config.max_iters
        label = "no warmup" if warmup == 0 else f"{warmup} warmup steps"
        for step in sorted({0, max(warmup - 1, 0), warmup, (warmup + last) // 2, last - 1, last}):
            cases.append(_Case(f"{label}, {last} updates, step {step}", lambda s=step, c=config: case(s, c)))
    _check_function(
        fn,
        cases,
        "check the two phases separately. At step 0 the warmup gives lr / (warmup_iters + 1), not 0, "
        "and reaches lr at step warmup_iters; the cosine's progress runs from 0 at step warmup_iters "
        "to 1 at step max_iters. With warmup_iters = 0 there is no warmup phase at all.",
        praise="Your schedule is the package's lr_at, step for step.",
    )


def check_train_step(fn: Any) -> None:
    """Write ``train_step(model, optimizer, batches, grad_clip) -> float``: one optimizer update
    with gradient accumulation. For each (x, y) in ``batches`` run the model and backpropagate its
    loss divided by the number of batches; then clip the gradient norm to ``grad_clip`` (if it is
    > 0), step the optimizer, zero the gradients, and return the mean of the batches' losses."""

    def reference(model: GPT, optimizer: torch.optim.Optimizer, batches: list, grad_clip: float) -> float:
        total = 0.0
        for x, y in batches:
            _, loss = model(x, y)
            (loss / len(batches)).backward()
            total += loss.item()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total / len(batches)

    def case(seed: int, n_batches: int, grad_clip: float, adamw: bool) -> tuple[tuple, Judge]:
        torch.manual_seed(seed)
        model = GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
        generator = torch.Generator().manual_seed(seed)
        batches = [tuple(torch.randint(64, (2, 2, 8), generator=generator)) for _ in range(n_batches)]
        twin = copy.deepcopy(model)

        def make_optimizer(m: GPT) -> torch.optim.Optimizer:
            return torch.optim.AdamW(m.parameters(), lr=1e-2) if adamw else torch.optim.SGD(m.parameters(), lr=0.5)

        expected_loss = reference(twin, make_optimizer(twin), batches, grad_clip)

        def judge(result: Any) -> str | None:
            loss = _float(result)
            if loss is None:
                return f"it returned {type(result).__name__}; expected the mean loss as a number"
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()):
                return "the gradients are still there after the step: zero them, or the next step adds to them"
            for (name, got), want in zip(model.named_parameters(), twin.parameters()):
                if not torch.allclose(got, want, rtol=1e-4, atol=1e-6):
                    return f"after the step, {name} differs from what one correct update gives"
            if not math.isclose(loss, expected_loss, rel_tol=1e-5):
                return "the weights are right, but the returned loss is not the mean of the batches' losses"
            return None

        return (model, make_optimizer(model), [tuple(t.clone() for t in b) for b in batches], grad_clip), judge

    _check_function(
        fn,
        [
            _Case("one batch, SGD, no clipping", lambda: case(0, 1, 0.0, adamw=False)),
            _Case("three accumulated batches, SGD, no clipping", lambda: case(1, 3, 0.0, adamw=False)),
            _Case("two batches, SGD, a clip that bites (grad_clip=0.05)", lambda: case(2, 2, 0.05, adamw=False)),
            _Case("two batches, AdamW, grad_clip=1.0", lambda: case(3, 2, 1.0, adamw=True)),
        ],
        "backward() adds into .grad, so backpropagating each batch's loss divided by the number of "
        "batches leaves the mean gradient there; clip, step and zero the gradients once, after the "
        "last batch (clip_grad_norm_ only when grad_clip > 0); average the losses as floats (loss.item()).",
        praise="That is the heart of every training loop, and of the package's trainer.",
    )


# --- Lesson 07: sampling ------------------------------------------------------------------------

TEMPERATURE_LOGITS = [2.0, 1.0, 0.0]
TOP_P_PROBS = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]


def check_temperature_probability(answer: Any) -> None:
    """Three tokens have logits [2.0, 1.0, 0.0]. At temperature 0.5, what is the probability of
    the first token?"""
    _check_number(
        answer,
        torch.softmax(torch.tensor(TEMPERATURE_LOGITS, dtype=torch.float64) / 0.5, dim=0)[0].item(),
        "divide every logit by the temperature first, then take the softmax: exp(z_i) / sum_j exp(z_j).",
        abs_tol=0.005,
        praise="Halving the temperature doubles the gaps between logits: the favourite gets more.",
    )


def check_top_p_kept(answer: Any) -> None:
    """The next-token probabilities are [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]. How many tokens does
    top-p sampling with p = 0.75 keep?"""
    kept = top_p_filter(torch.tensor([TOP_P_PROBS], dtype=torch.float64), 0.75)
    _check_number(
        answer,
        int((kept > 0).sum()),
        "take the most likely tokens one by one and add up their probabilities; stop as soon as the "
        "total reaches p. Count the tokens you took.",
        praise="Top-p adapts: a flatter distribution would keep more tokens.",
    )


def check_kv_cache_positions(answer: Any) -> None:
    """Without a KV cache, each step runs the model over the whole sequence so far. Starting from a
    10-token prompt, how many token positions are processed in total to generate 20 new tokens?"""
    prompt, new = 10, 20
    _check_number(
        answer,
        sum(prompt + step for step in range(new)),
        "the first step reads the 10 prompt tokens, the second 11 (the prompt and one new token), "
        "and so on: add them up over the 20 steps.",
        praise="With a cache it would be 10 + 19 = 29: one position per step after the prompt.",
    )


def check_top_p_filter(fn: Any) -> None:
    """Write ``top_p_filter(probs, p) -> tensor`` for a whole batch at once, without a Python loop:
    probs (B, V), each row a distribution; keep in each row the smallest set of most likely tokens
    whose probabilities reach ``p``, zero the others, renormalise each row to sum to 1."""
    generator = torch.Generator().manual_seed(11)

    def case(probs: torch.Tensor, p: float) -> tuple[tuple, Judge]:
        expected = top_p_filter(probs, p)

        def judge(result: Any) -> str | None:
            problem = _tensor_problem(result, expected, atol=1e-9)
            if problem and "wrong values" in problem:
                kept, want = torch.as_tensor(result) > 0, expected > 0
                if torch.equal(kept, want):
                    return "the right tokens are kept, but the rows don't sum to 1 (renormalise)"
                row = int((kept != want).any(dim=-1).nonzero()[0])
                n, n_right = int(kept[row].sum()), int(want[row].sum())
                amount = "too many" if n > n_right else "too few" if n < n_right else "the wrong ones"
                return f"row {row} keeps {n} token{'' if n == 1 else 's'}: {amount}"
            return problem

        return (probs.clone(), p), judge

    def random_probs(B: int, V: int, sharpness: float) -> torch.Tensor:
        return torch.softmax(torch.randn(B, V, generator=generator, dtype=torch.float64) * sharpness, dim=-1)

    _check_function(
        fn,
        [
            _Case("one row, sorted most likely first", lambda: case(torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64), 0.75)),
            _Case("one row in no particular order", lambda: case(torch.tensor([[0.1, 0.05, 0.5, 0.35]], dtype=torch.float64), 0.8)),
            _Case("4 random rows of 50 tokens", lambda: case(random_probs(4, 50, 2.0), 0.9)),
            _Case("a row whose favourite alone reaches p", lambda: case(torch.tensor([[0.05, 0.9, 0.05]], dtype=torch.float64), 0.6)),
            _Case("a set that reaches p exactly", lambda: case(torch.tensor([[0.25, 0.5, 0.25 - 2**-10, 2**-10]], dtype=torch.float64), 0.75)),
            _Case("p = 1 keeps everything", lambda: case(random_probs(3, 20, 1.0), 1.0)),
            _Case("8 sharp rows of 1,000 tokens, small p", lambda: case(random_probs(8, 1000, 4.0), 0.3)),
        ],
        "sort each row in descending order (torch.sort returns the order too); a token is needed if "
        "the probability of the tokens ranked *before* it is still below p (a cumulative sum minus the "
        "token itself); map that mask back to the original positions (scatter, or index with the "
        "order), zero the rest and divide each row by its sum.",
        praise="Batched top-p: the same few tensor ops for one row or a thousand.",
    )


def check_kv_cache_step(fn: Any) -> None:
    """Write ``kv_cache_step(q, k, v, k_cache, v_cache) -> (out, k_cache, v_cache)``, one step of
    cached attention: q, k, v (B, n_head, 1, d) are the newest token's; the caches (B, n_head, t, d)
    hold the t earlier positions (t may be 0). Append k and v to the caches, attend the new query
    over all t + 1 positions, return its output (B, n_head, 1, d) and the grown caches."""
    generator = torch.Generator().manual_seed(12)

    def case(B: int, H: int, t: int, d: int) -> tuple[tuple, Judge]:
        q, k, v = (torch.randn(B, H, t + 1, d, generator=generator, dtype=torch.float64) for _ in range(3))
        full = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # attention without any cache

        def judge(result: Any) -> str | None:
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                return f"it returned {type(result).__name__}; expected (out, k_cache, v_cache)"
            out, k_new, v_new = result
            for what, got, want in (("k_cache", k_new, k), ("v_cache", v_new, v)):
                problem = _tensor_problem(got, want, what=f"the new {what}", atol=0, rtol=0)
                if problem:
                    return problem + " (the old cache, then the new token, along the time axis)"
            return _tensor_problem(out, full[:, :, -1:], what="out", atol=1e-9)

        return (q[:, :, -1:].clone(), k[:, :, -1:].clone(), v[:, :, -1:].clone(),
                k[:, :, :-1].clone(), v[:, :, :-1].clone()), judge

    shapes = [(1, 1, 3, 4), (2, 3, 7, 8), (1, 2, 0, 4), (3, 4, 20, 16), (2, 2, 1, 5)]
    _check_function(
        fn,
        [_Case(f"B={b}, n_head={h}, {t} cached positions, d={d}", lambda s=(b, h, t, d): case(*s))
         for b, h, t, d in shapes],
        "the newest token attends to itself too, so its key and value go into the caches *before* "
        "attending; the caches grow along the time axis (dim 2), old positions first. A single query "
        "that may see every position needs no mask, but still the 1 / sqrt(d) scale.",
        praise="Each step now costs one token's work instead of the whole sequence's.",
    )


# --- Lesson 08: scaling laws -----------------------------------------------------------------------


def check_power_law_fit(fn: Any) -> None:
    """Write ``fit_power_law(x, y) -> (scale, exponent)``: the ``y = scale * x ** exponent`` that
    fits points ``x, y`` (1-D numpy arrays of positive numbers) best as a straight line on log-log
    axes, i.e. least squares on ``log y`` against ``log x``."""
    rng = np.random.default_rng(8)

    def case(x: np.ndarray, y: np.ndarray) -> tuple[tuple, Judge]:
        slope, intercept = np.polyfit(np.log(x), np.log(y), 1)

        def judge(result: Any) -> str | None:
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                return f"it returned {type(result).__name__}; expected a pair (scale, exponent)"
            scale, exponent = (_float(v) for v in result)
            if scale is None or exponent is None:
                return "scale and exponent should both be numbers"
            if not math.isclose(exponent, slope, rel_tol=1e-6, abs_tol=1e-9):
                return "the exponent is wrong"
            if not math.isclose(scale, math.exp(intercept), rel_tol=1e-6):
                return "the exponent is right but the scale is wrong"
            return None

        return (x.copy(), y.copy()), judge

    def law(scale: float, exponent: float, x: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
        return x, scale * x**exponent * np.exp(rng.normal(0, noise, len(x)))

    cases = [
        _Case("exact points of a falling law, compute from 1e12 to 1e15",
              lambda: case(*law(40.0, -0.07, np.logspace(12, 15, 6), 0.0))),
        _Case("noisy points, 9 of them", lambda: case(*law(3.0, -0.3, np.logspace(3, 7, 9), 0.05))),
        _Case("a rising law through two points", lambda: case(*law(0.5, 1.5, np.array([2.0, 50.0]), 0.0))),
        _Case("x not in increasing order", lambda: case(*law(7.0, -0.5, rng.permutation(np.logspace(0, 4, 7)), 0.1))),
    ]
    _check_function(
        fn,
        cases,
        "take logs first: log y = log scale + exponent * log x is a straight line, so a degree-1 "
        "least-squares fit (np.polyfit) of log y against log x gives the exponent as its slope and "
        "log scale as its intercept. Undo the log of the scale at the end.",
        praise="That is the fit behind every straight line on a log-log plot.",
    )
