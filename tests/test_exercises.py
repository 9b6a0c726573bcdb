"""The lesson checkers: a right answer is praised, a wrong one gets a hint and never the solution.

Right answers here are worked out independently (by formula), not read from the checkers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slm_course.lessons import exercises as ex
from slm_course.lessons import solutions


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


# --- Code exercises: every checker passes its solution and fails plausible wrong answers ---------
# One table, (checker, solution, wrong answers): each wrong answer is a mistake a learner makes.


def wrong_count_params_ignores_bias(config):
    V, T, C, L = config.vocab_size, config.block_size, config.n_embd, config.n_layer
    return V * C + T * C + L * block_params(C) + 2 * C  # the bias=True formula for every config


def wrong_best_pair_first_seen(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return max(counts, key=counts.get) if counts else None  # a tie goes to the first seen


def wrong_best_pair_crashes_on_short(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return min(counts, key=lambda p: (-counts[p], p))  # min() of an empty dict raises


def wrong_encode_leftmost_first(ids, merges):
    ids = list(ids)
    while True:  # merges the leftmost mergeable pair instead of the lowest-ranked one
        for i, pair in enumerate(zip(ids, ids[1:])):
            if pair in merges:
                ids[i : i + 2] = [merges[pair]]
                break
        else:
            return ids


def wrong_encode_one_pass(ids, merges):
    ids = list(ids)
    for pair, new_id in sorted(merges.items(), key=lambda item: item[1], reverse=True):  # highest rank first
        ids = solutions.encode(ids, {pair: new_id})
    return ids


def wrong_get_batch_unshifted(tokens, batch_size, block_size, generator):
    x, _ = solutions.get_batch(tokens, batch_size, block_size, generator)
    return x, x


def wrong_get_batch_uint16(tokens, batch_size, block_size, generator):
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    windows = torch.from_numpy(tokens[(starts[:, None] + torch.arange(block_size + 1)).numpy()].astype(np.int32))
    return windows[:, :-1], windows[:, 1:]


def wrong_get_batch_off_by_one(tokens, batch_size, block_size, generator):
    starts = torch.randint(len(tokens) - block_size - 1, (batch_size,), generator=generator)
    windows = torch.from_numpy(tokens[(starts[:, None] + torch.arange(block_size + 1)).numpy()].astype(np.int64))
    return windows[:, :-1], windows[:, 1:]


def wrong_bigram_counts_fancy_index(tokens, vocab_size):
    table = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    table[tokens[:-1], tokens[1:]] += 1  # adds 1 once per distinct pair
    return table


def wrong_bigram_counts_transposed(tokens, vocab_size):
    return solutions.bigram_counts(tokens, vocab_size).T


def wrong_split_heads_view_only(x, n_head):
    B, T, C = x.shape
    return x.view(B, n_head, T, C // n_head)


def wrong_attention_no_mask(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.size(-1)), dim=-1) @ v


def wrong_attention_no_scale(q, k, v):
    T = q.size(-2)
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
    return torch.softmax((q @ k.transpose(-2, -1)).masked_fill(future, float("-inf")), dim=-1) @ v


def wrong_attention_masks_diagonal(q, k, v):
    T = q.size(-2)
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=0)
    scores = (q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))).masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def wrong_rms_norm_subtracts_mean(x, weight, eps):
    x = x - x.mean(dim=-1, keepdim=True)
    return solutions.rms_norm(x, weight, eps)


def wrong_rms_norm_eps_outside(x, weight, eps):
    return x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + eps) * weight


def wrong_swiglu_gelu(x, w_gate, w_up, w_down):
    return (F.gelu(x @ w_gate) * (x @ w_up)) @ w_down


def wrong_cross_entropy_naive(logits, targets):
    keep = targets != -1
    probs = logits[keep].exp() / logits[keep].exp().sum(dim=-1, keepdim=True)  # overflows for large logits
    return -probs[torch.arange(int(keep.sum())), targets[keep]].log().mean()


def wrong_cross_entropy_keeps_padding(logits, targets):
    picked = logits[torch.arange(len(targets)), targets]  # -1 silently picks the last column
    return (torch.logsumexp(logits, dim=-1) - picked).mean()


def wrong_lr_at_warmup_from_zero(step, c):
    if step < c.warmup_iters:
        return c.lr * step / c.warmup_iters
    return solutions.lr_at(step, c)


def wrong_lr_at_decays_to_zero(step, c):
    if step < c.warmup_iters:
        return c.lr * (step + 1) / (c.warmup_iters + 1)
    progress = (step - c.warmup_iters) / (c.max_iters - c.warmup_iters)
    return c.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_step_with_mistake(divide_by_batches: bool = True, zero_grad: bool = True):
    """A training step that makes one mistake: no division by the number of batches, or no zero_grad."""

    def train_step(model, optimizer, batches, grad_clip):
        total = 0.0
        for x, y in batches:
            _, loss = model(x, y)
            (loss / len(batches) if divide_by_batches else loss).backward()
            total += loss.item()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if zero_grad:
            optimizer.zero_grad()
        return total / len(batches)

    train_step.__name__ = "wrong_train_step_" + ("no_zero_grad" if divide_by_batches else "sums_losses")
    return train_step


wrong_train_step_sums_losses = train_step_with_mistake(divide_by_batches=False)
wrong_train_step_no_zero_grad = train_step_with_mistake(zero_grad=False)


def wrong_train_step_no_clip(model, optimizer, batches, grad_clip):
    return solutions.train_step(model, optimizer, batches, 0.0)


def wrong_top_p_cumsum_below_p(probs, p):
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    needed = sorted_probs.cumsum(dim=-1) < p  # drops the token that takes the total past p
    kept = probs * torch.zeros_like(needed).scatter(-1, order, needed)
    return kept / kept.sum(dim=-1, keepdim=True)


def wrong_top_p_not_renormalised(probs, p):
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    needed = (sorted_probs.cumsum(dim=-1) - sorted_probs) < p
    return probs * torch.zeros_like(needed).scatter(-1, order, needed)


def wrong_top_p_sorted_order(probs, p):
    sorted_probs, _ = probs.sort(dim=-1, descending=True)
    kept = sorted_probs * ((sorted_probs.cumsum(dim=-1) - sorted_probs) < p)  # never maps back
    return kept / kept.sum(dim=-1, keepdim=True)


def wrong_kv_step_attends_before_append(q, k, v, k_cache, v_cache):
    weights = torch.softmax(q @ k_cache.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
    return weights @ v_cache, torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)


def wrong_kv_step_new_first(q, k, v, k_cache, v_cache):
    k_cache, v_cache = torch.cat([k, k_cache], dim=2), torch.cat([v, v_cache], dim=2)
    weights = torch.softmax(q @ k_cache.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
    return weights @ v_cache, k_cache, v_cache


def wrong_power_law_linear_fit(x, y):
    exponent, scale = np.polyfit(x, y, 1)  # a straight line in linear axes, not log-log
    return scale, exponent


def wrong_power_law_log_scale(x, y):
    exponent, log_scale = np.polyfit(np.log(x), np.log(y), 1)
    return log_scale, exponent  # forgot to undo the log


CODE_EXERCISES = [
    (ex.check_count_params, solutions.count_params, [wrong_count_params_ignores_bias]),
    (ex.check_best_pair, solutions.best_pair, [wrong_best_pair_first_seen, wrong_best_pair_crashes_on_short]),
    (ex.check_encode, solutions.encode, [wrong_encode_leftmost_first, wrong_encode_one_pass]),
    (ex.check_get_batch, solutions.get_batch,
     [wrong_get_batch_unshifted, wrong_get_batch_uint16, wrong_get_batch_off_by_one]),
    (ex.check_bigram_counts, solutions.bigram_counts, [wrong_bigram_counts_fancy_index, wrong_bigram_counts_transposed]),
    (ex.check_split_heads, solutions.split_heads, [wrong_split_heads_view_only]),
    (ex.check_causal_attention, solutions.causal_attention,
     [wrong_attention_no_mask, wrong_attention_no_scale, wrong_attention_masks_diagonal]),
    (ex.check_rms_norm, solutions.rms_norm, [wrong_rms_norm_subtracts_mean, wrong_rms_norm_eps_outside]),
    (ex.check_swiglu, solutions.swiglu, [wrong_swiglu_gelu]),
    (ex.check_cross_entropy, solutions.cross_entropy, [wrong_cross_entropy_naive, wrong_cross_entropy_keeps_padding]),
    (ex.check_lr_at, solutions.lr_at, [wrong_lr_at_warmup_from_zero, wrong_lr_at_decays_to_zero]),
    (ex.check_train_step, solutions.train_step,
     [wrong_train_step_sums_losses, wrong_train_step_no_zero_grad, wrong_train_step_no_clip]),
    (ex.check_top_p_filter, solutions.top_p_filter,
     [wrong_top_p_cumsum_below_p, wrong_top_p_not_renormalised, wrong_top_p_sorted_order]),
    (ex.check_kv_cache_step, solutions.kv_cache_step, [wrong_kv_step_attends_before_append, wrong_kv_step_new_first]),
    (ex.check_power_law_fit, solutions.fit_power_law, [wrong_power_law_linear_fit, wrong_power_law_log_scale]),
]
WRONG_ANSWERS = [(checker, wrong) for checker, _, wrongs in CODE_EXERCISES for wrong in wrongs]


def _stub(*args):
    """What a learner's function returns before they write its body (``...``)."""


@pytest.mark.parametrize("checker, solution", [(c, s) for c, s, _ in CODE_EXERCISES], ids=lambda f: f.__name__)
def test_code_checker_accepts_its_solution(capsys, checker, solution):
    out = verdict(capsys, checker, solution)
    assert out.startswith(ex.CORRECT) and "cases pass" in out, out


@pytest.mark.parametrize("checker, wrong", WRONG_ANSWERS, ids=lambda f: f.__name__)
def test_code_checker_rejects_a_wrong_answer_with_a_hint(capsys, checker, wrong):
    out = verdict(capsys, checker, wrong)
    assert out.startswith(ex.WRONG) and "Case " in out and "\nHint: " in out, out


@pytest.mark.parametrize("checker", [c for c, _, _ in CODE_EXERCISES], ids=lambda f: f.__name__)
def test_code_checker_reports_a_stub_without_raising(capsys, checker):
    assert verdict(capsys, checker, _stub) == ex.NOT_DONE.format(name="_stub") + "\n"
    assert verdict(capsys, checker, None).startswith("✗ No answer yet")
    assert verdict(capsys, checker, 42).startswith("✗ Expected a function")


@pytest.mark.parametrize("checker", [c for c, _, _ in CODE_EXERCISES], ids=lambda f: f.__name__)
def test_code_checker_reports_a_crash_with_the_line(capsys, checker):
    def crashes(*args):
        raise ZeroDivisionError("oops")

    out = verdict(capsys, checker, crashes)
    assert out.startswith(ex.WRONG + " Case 1 of") and "raised ZeroDivisionError: oops" in out, out
    assert 'raise ZeroDivisionError("oops")' in out and "Hint: " in out, out
