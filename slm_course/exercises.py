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


def check_mixing_sublayer(answer: Any) -> None:
    """Which sub-layer of a block moves information between positions:
    'attention', 'mlp' or 'layernorm'?"""
    _check_choice(
        answer,
        "attention",
        ("attention", "mlp", "layernorm"),
        "change the input at one position and ask which sub-layer's output changes at *other* "
        "positions. Two of the three work on each token separately.",
        praise="Attention mixes across positions; the MLP and LayerNorm work token by token.",
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
