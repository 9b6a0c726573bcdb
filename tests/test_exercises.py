"""The lesson checkers: a right answer is praised, a wrong one gets a hint and never the solution.

Right answers here are worked out independently (by formula), not read from the checkers.
"""

from __future__ import annotations

import math

import pytest
import torch

from slm_course import exercises as ex


def verdict(capsys: pytest.CaptureFixture[str], checker, answer) -> str:
    """Run a checker and return what it printed."""
    assert checker(answer) is None, "checkers print their verdict and return nothing"
    return capsys.readouterr().out


def assert_correct(capsys, checker, answer) -> None:
    out = verdict(capsys, checker, answer)
    assert out.startswith(ex.CORRECT), out


def assert_hint_without_solution(capsys, checker, wrong, solution_text: str) -> None:
    out = verdict(capsys, checker, wrong)
    assert out.startswith(ex.WRONG) and "Hint:" in out, out
    assert solution_text not in out, f"the checker gave the solution away: {out}"


def block_params(C: int) -> int:
    return 12 * C**2 + 13 * C


# --- Lesson 00 ---


def param_count_formula() -> int:
    c = ex.PARAM_COUNT_CONFIG
    return c.vocab_size * c.n_embd + c.block_size * c.n_embd + c.n_layer * block_params(c.n_embd) + 2 * c.n_embd


def test_check_param_count(capsys):
    right = param_count_formula()
    assert_correct(capsys, ex.check_param_count, right)
    assert_hint_without_solution(capsys, ex.check_param_count, right + 8192 * 256, str(right))


def test_check_training_memory_gb(capsys):
    gpt2 = 50257 * 768 + 1024 * 768 + 12 * block_params(768) + 2 * 768
    right = gpt2 * 16 / 1e9
    assert_correct(capsys, ex.check_training_memory_gb, right)
    assert_correct(capsys, ex.check_training_memory_gb, round(right, 2))
    assert_hint_without_solution(capsys, ex.check_training_memory_gb, gpt2 * 8 / 1e9, f"{right:.2f}")


def test_check_training_flops(capsys):
    seed = 50257 * 384 + 128 * 384 + 6 * block_params(384) + 2 * 384
    assert_correct(capsys, ex.check_training_flops, 6 * seed * 1e9)
    assert_correct(capsys, ex.check_training_flops, 1.8e17)
    assert_hint_without_solution(capsys, ex.check_training_flops, 2 * seed * 1e9, "1.8e17")


# --- Lesson 03 ---


def test_check_dot_product_std(capsys):
    assert_correct(capsys, ex.check_dot_product_std, 8)
    assert_hint_without_solution(capsys, ex.check_dot_product_std, 64, "8")


def test_check_equal_scores_weights(capsys):
    right = [[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]]
    assert_correct(capsys, ex.check_equal_scores_weights, right)
    assert_correct(capsys, ex.check_equal_scores_weights, torch.tensor(right))
    uniform = [[1 / 3] * 3] * 3  # forgot the mask
    assert_hint_without_solution(capsys, ex.check_equal_scores_weights, uniform, "0.5")
    assert "3 x 3" in verdict(capsys, ex.check_equal_scores_weights, [[1, 0], [0.5, 0.5]])
    assert "nested list" in verdict(capsys, ex.check_equal_scores_weights, "rows")


def test_check_causal_pairs(capsys):
    assert_correct(capsys, ex.check_causal_pairs, sum(range(1, 129)))
    assert_hint_without_solution(capsys, ex.check_causal_pairs, 128 * 128, str(sum(range(1, 129))))


# --- Lesson 04 ---


def test_check_block_params(capsys):
    assert_correct(capsys, ex.check_block_params, block_params(512))
    assert_hint_without_solution(capsys, ex.check_block_params, 12 * 512**2, str(block_params(512)))


def test_check_layernorm_stats(capsys):
    assert_correct(capsys, ex.check_layernorm_stats, (0.5, 2.0))
    assert_correct(capsys, ex.check_layernorm_stats, [0.5, 2.0 * math.sqrt(384 / 383)])  # unbiased std
    assert_hint_without_solution(capsys, ex.check_layernorm_stats, (0.0, 1.0), "0.5")
    assert "pair" in verdict(capsys, ex.check_layernorm_stats, 0.5)


def test_check_mixing_sublayer(capsys):
    assert_correct(capsys, ex.check_mixing_sublayer, " Attention ")
    assert_hint_without_solution(capsys, ex.check_mixing_sublayer, "mlp", "attention")
    assert "Expected one of" in verdict(capsys, ex.check_mixing_sublayer, "embedding")


# --- Lesson 05 ---


def test_check_init_loss(capsys):
    assert_correct(capsys, ex.check_init_loss, math.log(4096))
    assert_correct(capsys, ex.check_init_loss, 8.32)
    assert_hint_without_solution(capsys, ex.check_init_loss, math.log(50257), "8.3")


def test_check_tying_savings(capsys):
    assert_correct(capsys, ex.check_tying_savings, 50257 * 768)
    assert_hint_without_solution(capsys, ex.check_tying_savings, 50257 * 768 * 2, str(50257 * 768))


# --- Behaviour shared by every checker ---

NUMERIC_CHECKERS = [
    ex.check_param_count,
    ex.check_training_memory_gb,
    ex.check_training_flops,
    ex.check_dot_product_std,
    ex.check_causal_pairs,
    ex.check_block_params,
    ex.check_init_loss,
    ex.check_tying_savings,
]


@pytest.mark.parametrize("checker", NUMERIC_CHECKERS, ids=lambda f: f.__name__)
def test_numeric_checkers_explain_bad_input(capsys, checker):
    assert verdict(capsys, checker, None) == ex.UNANSWERED + "\n"
    assert "Expected a number" in verdict(capsys, checker, "42")
    assert "Expected a number" in verdict(capsys, checker, float("nan"))


@pytest.mark.parametrize(
    "checker", [ex.check_equal_scores_weights, ex.check_layernorm_stats, ex.check_mixing_sublayer]
)
def test_other_checkers_say_when_unanswered(capsys, checker):
    assert verdict(capsys, checker, None) == ex.UNANSWERED + "\n"
