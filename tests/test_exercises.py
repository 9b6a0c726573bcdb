"""The lesson checkers: a right answer is praised, a wrong one gets a hint and never the solution.

Right answers here are worked out independently (by formula), not read from the checkers.
"""

from __future__ import annotations

import math

import pytest
import torch

from slm_course.lessons import exercises as ex


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


# --- Lesson 01 ---


def test_check_utf8_bytes(capsys):
    # n, a, v, e, space: 1 byte each; ï (U+00EF): 2; 🙂 (U+1F642): 4
    assert_correct(capsys, ex.check_utf8_bytes, 5 + 2 + 4)
    assert_hint_without_solution(capsys, ex.check_utf8_bytes, 7, "11")


def test_check_num_merges(capsys):
    assert_correct(capsys, ex.check_num_merges, 767)
    assert_hint_without_solution(capsys, ex.check_num_merges, 768, "767")


def test_check_first_merge(capsys):
    # pairs of "aaabdaaabac": aa aa ab bd da aa aa ab ba ac -> "aa" 4 times
    assert_correct(capsys, ex.check_first_merge, "aa")
    assert_correct(capsys, ex.check_first_merge, ("a", "a"))
    assert_correct(capsys, ex.check_first_merge, (97, 97))
    assert_hint_without_solution(capsys, ex.check_first_merge, "ab", "'aa'")
    assert "two characters" in verdict(capsys, ex.check_first_merge, "abc")


# --- Lesson 02 ---


def test_check_targets(capsys):
    assert_correct(capsys, ex.check_targets, [9, 2, 7, 4])
    assert_correct(capsys, ex.check_targets, torch.tensor([9, 2, 7, 4]))
    assert_hint_without_solution(capsys, ex.check_targets, [5, 9, 2, 7], "[9, 2, 7, 4]")
    assert "list of 4" in verdict(capsys, ex.check_targets, 9)


def test_check_predictions_per_batch(capsys):
    assert_correct(capsys, ex.check_predictions_per_batch, 1024)
    assert_hint_without_solution(capsys, ex.check_predictions_per_batch, 16, "1024")


def test_check_token_file_gb(capsys):
    assert_correct(capsys, ex.check_token_file_gb, 0.94)
    assert_hint_without_solution(capsys, ex.check_token_file_gb, 1.88, "0.94")


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


def test_check_changed_positions(capsys):
    assert_correct(capsys, ex.check_changed_positions, [2, 3, 4, 5])
    assert_correct(capsys, ex.check_changed_positions, range(2, 6))
    assert_hint_without_solution(capsys, ex.check_changed_positions, [2], "[2, 3, 4, 5]")
    assert_hint_without_solution(capsys, ex.check_changed_positions, [0, 1, 2], "3, 4")
    assert "0 to 5" in verdict(capsys, ex.check_changed_positions, [2, 7])
    assert "list of positions" in verdict(capsys, ex.check_changed_positions, 2)


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
    ex.check_utf8_bytes,
    ex.check_num_merges,
    ex.check_predictions_per_batch,
    ex.check_token_file_gb,
    ex.check_dot_product_std,
    ex.check_causal_pairs,
    ex.check_block_params,
    ex.check_init_loss,
    ex.check_tying_savings,
    ex.check_lr_midway,
    ex.check_scale_after_overflows,
    ex.check_temperature_probability,
    ex.check_top_p_kept,
    ex.check_kv_cache_positions,
]


@pytest.mark.parametrize("checker", NUMERIC_CHECKERS, ids=lambda f: f.__name__)
def test_numeric_checkers_explain_bad_input(capsys, checker):
    assert verdict(capsys, checker, None) == ex.UNANSWERED + "\n"
    assert "Expected a number" in verdict(capsys, checker, "42")
    assert "Expected a number" in verdict(capsys, checker, float("nan"))


@pytest.mark.parametrize(
    "checker",
    [
        ex.check_first_merge,
        ex.check_targets,
        ex.check_equal_scores_weights,
        ex.check_layernorm_stats,
        ex.check_changed_positions,
        ex.check_needs_grad_scaler,
    ],
    ids=lambda f: f.__name__,
)
def test_other_checkers_say_when_unanswered(capsys, checker):
    assert verdict(capsys, checker, None) == ex.UNANSWERED + "\n"


# --- Lesson 06 ---


def test_check_lr_midway(capsys):
    assert_correct(capsys, ex.check_lr_midway, 1e-4 + (1e-3 - 1e-4) / 2)
    assert_hint_without_solution(capsys, ex.check_lr_midway, 5e-4, "5.5e-4")


def test_check_scale_after_overflows(capsys):
    assert_correct(capsys, ex.check_scale_after_overflows, 2**14)
    assert_hint_without_solution(capsys, ex.check_scale_after_overflows, 2**13, "16384")


def test_check_needs_grad_scaler(capsys):
    assert_correct(capsys, ex.check_needs_grad_scaler, "float16")
    assert_hint_without_solution(capsys, ex.check_needs_grad_scaler, "bfloat16", "float16")
    assert "Expected one of" in verdict(capsys, ex.check_needs_grad_scaler, "fp8")


# --- Lesson 07 ---


def test_check_temperature_probability(capsys):
    e = math.exp
    assert_correct(capsys, ex.check_temperature_probability, e(4) / (e(4) + e(2) + 1))
    assert_correct(capsys, ex.check_temperature_probability, 0.867)
    at_t1 = e(2) / (e(2) + e(1) + 1)  # forgot the temperature
    assert_hint_without_solution(capsys, ex.check_temperature_probability, at_t1, "0.86")


def test_check_top_p_kept(capsys):
    assert_correct(capsys, ex.check_top_p_kept, 3)  # 0.4 + 0.25 = 0.65 < 0.75 <= 0.8
    assert_hint_without_solution(capsys, ex.check_top_p_kept, 2, "3")


def test_check_kv_cache_positions(capsys):
    assert_correct(capsys, ex.check_kv_cache_positions, sum(range(10, 30)))
    assert_hint_without_solution(capsys, ex.check_kv_cache_positions, 20 * 30, "390")
