"""Checkers for the exercises at the end of each lesson.

Every ``check_...(answer)`` prints either "✓ Correct!" or "✗ Not quite" with a hint, and never the
solution: the point is for the learner to get there. Expected answers are computed from the package
(or from a stated formula) rather than typed in, so they stay right if the model code changes.
Checkers return nothing, so a notebook cell ending in ``check_...(answer)`` shows only the verdict.

Convention for adding a checker: put it under its lesson's header, state the question in the
docstring exactly as the lesson asks it, and build it from the helpers below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from slm_course.config import GPTConfig
from slm_course.model import GPT, Block

CORRECT = "✓ Correct!"
WRONG = "✗ Not quite."
UNANSWERED = "✗ No answer yet: replace None with your answer and run the cell again."


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


# --- Lesson 06: training and mixed precision ----------------------------------------------------


def check_lr_midway(answer: Any) -> None:
    """A run has lr = 1e-3, min_lr = 1e-4, warmup_iters = 100 and max_iters = 1100. What is the
    learning rate at step 600, halfway through the cosine decay?"""
    from slm_course.config import TrainConfig
    from slm_course.optim import lr_at

    config = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=1100)
    _check_number(
        answer,
        lr_at(600, config),
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
    from slm_course.sample import top_p_filter

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
