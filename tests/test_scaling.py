"""The scaling-law lab: the fits recover known laws, the frontier, the ladder's configs, and a tiny
ladder trained end to end on the embedded corpus (cached, retrained when its config changes)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from slm_course import checkpoint
from slm_course.config import GPTConfig, TrainConfig
from slm_course.corpus import SYNTHETIC_SOURCE
from slm_course.lessons import scaling
from slm_course.model import GPT
from slm_course.presets import preset


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SLM_TINYSTORIES", raising=False)


# --- the power law L(C) ---------------------------------------------------------------------------


def test_a_straight_line_in_log_log_is_recovered_exactly():
    x = np.logspace(10, 14, 9)
    law = scaling.fit_power_law(x, 40 * x**-0.07)
    assert law.offset == 0
    assert law.exponent == pytest.approx(-0.07, abs=1e-12)
    assert law.scale == pytest.approx(40, rel=1e-9)
    assert law.exponent == pytest.approx(np.polyfit(np.log(x), np.log(40 * x**-0.07), 1)[0], abs=1e-12)


def test_the_offset_fit_recovers_a_known_irreducible_loss():
    x = np.logspace(11, 15, 12)
    law = scaling.fit_power_law(x, 0.7 + 30 * x**-0.2, offset=True)
    assert law.offset == pytest.approx(0.7, abs=1e-4)
    assert law.exponent == pytest.approx(-0.2, abs=1e-4)
    assert law.scale == pytest.approx(30, rel=1e-3)
    # Without the offset, the same points bend away from a straight line: the fit is worse.
    line = scaling.fit_power_law(x, 0.7 + 30 * x**-0.2)
    assert np.abs(np.log(line(x)) - np.log(law(x))).max() > 1e-3


def test_the_offset_fit_is_close_on_noisy_points():
    rng = np.random.default_rng(0)
    x = np.logspace(11, 15, 15)
    y = (1.0 + 20 * x**-0.15) * (1 + 0.002 * rng.standard_normal(len(x)))
    law = scaling.fit_power_law(x, y, offset=True)
    assert law.exponent == pytest.approx(-0.15, abs=0.03)
    assert law.offset == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("x, y, offset", [([1, 2], [1, 0], False), ([1, 2], [2, 1], True), ([1, 2, 3], [1, 2], False)])
def test_the_power_law_fit_refuses_what_it_cannot_fit(x, y, offset):
    with pytest.raises(ValueError):
        scaling.fit_power_law(x, y, offset=offset)


# --- L(N, D) and the compute-optimal split --------------------------------------------------------


def grid_points(law: scaling.ScalingLaw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = np.meshgrid([1.6e5, 2.6e5, 3.7e5, 7.4e5, 1.3e6], np.linspace(1e5, 6e5, 6))
    return n.ravel(), d.ravel(), law(n.ravel(), d.ravel())


def test_the_scaling_law_fit_recovers_known_exponents():
    truth = scaling.ScalingLaw(irreducible=0.6, a=400.0, alpha=0.35, b=2000.0, beta=0.4)
    fit = scaling.fit_scaling_law(*grid_points(truth))
    assert fit.alpha == pytest.approx(0.35, abs=1e-3)
    assert fit.beta == pytest.approx(0.4, abs=1e-3)
    assert fit.irreducible == pytest.approx(0.6, abs=1e-3)
    n, d, y = grid_points(truth)
    assert np.abs(fit(n, d) - y).max() < 1e-4


def test_the_optimal_split_spends_the_budget_and_minimises_the_loss():
    law = scaling.ScalingLaw(irreducible=0.6, a=400.0, alpha=0.35, b=2000.0, beta=0.4)
    budget = 5e13
    n_star, d_star = law.optimal(budget)
    assert 6 * n_star * d_star == pytest.approx(budget)
    # brute force along the budget's line D = C / (6N)
    n = np.logspace(4, 9, 20001)
    assert n_star == pytest.approx(n[np.argmin(law(n, budget / (6 * n)))], rel=1e-3)
    # N* grows as C^(beta / (alpha + beta))
    assert law.optimal(100 * budget)[0] / n_star == pytest.approx(100 ** (0.4 / 0.75))


def test_equal_exponents_split_a_growing_budget_equally():
    """Chinchilla's finding in the law's terms: alpha = beta -> N* and D* both grow as sqrt(C)."""
    law = scaling.ScalingLaw(irreducible=1.7, a=406.4, alpha=0.34, b=410.7, beta=0.34)
    (n1, d1), (n2, d2) = law.optimal(1e20), law.optimal(1e22)
    assert n2 / n1 == pytest.approx(10) and d2 / d1 == pytest.approx(10)


def test_a_law_missing_a_term_has_no_optimum():
    with pytest.raises(ValueError, match="no optimum"):
        scaling.ScalingLaw(1.0, 0.0, 0.3, 100.0, 0.3).optimal(1e15)


def test_the_scaling_law_fit_needs_two_sizes_and_two_token_counts():
    with pytest.raises(ValueError, match="two model sizes"):
        scaling.fit_scaling_law([1e5] * 6, np.linspace(1e5, 6e5, 6), np.linspace(3, 2, 6))


# --- the frontier ---------------------------------------------------------------------------------


def curve(name: str, n_params: int, tokens: list[float], bpb: list[float]) -> scaling.Curve:
    t = np.array(tokens, dtype=float)
    return scaling.Curve(name, n_params, t, np.array(bpb), np.array(bpb) * 2, t / 1e4, "test")


def test_the_frontier_keeps_the_best_loss_for_each_budget():
    small = curve("small", 1, [1, 2, 4], [3.0, 2.5, 2.4])
    large = curve("large", 2, [1, 2, 4], [2.8, 2.2, 1.9])  # compute 12, 24, 48; small's is 6, 12, 24
    front = scaling.frontier([small, large])
    assert front.labels == ["small", "small", "large", "large"]
    assert front.compute.tolist() == [6, 12, 24, 48]
    assert front.val_bpb.tolist() == [3.0, 2.5, 2.2, 1.9]
    assert (np.diff(front.val_bpb) < 0).all()
    later = scaling.frontier([small, large], min_tokens=2)
    assert later.labels == ["small", "large", "large"] and later.compute.tolist() == [12, 24, 48]


# --- the ladder -----------------------------------------------------------------------------------


def test_every_rung_is_a_cpu_quick_model_and_the_ladder_grows():
    family = preset("cpu-quick")[0]
    for profile in scaling.LADDERS:
        rungs = scaling.ladder(profile)
        sizes = [scaling.count_params(c) for c in rungs]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
        vocab_size = family.vocab_size
        for rung in rungs:
            assert rung.replace(n_layer=family.n_layer, n_head=family.n_head, n_embd=family.n_embd,
                                vocab_size=family.vocab_size) == family
            assert rung.vocab_size == vocab_size
            assert scaling.rung_configs(rung, profile).tokenizer == (
                preset("cpu-quick")[1].tokenizer if vocab_size == family.vocab_size else f"bpe-{vocab_size}")
    assert family in scaling.ladder("full")  # the full ladder includes cpu-quick itself
    assert {c.vocab_size for c in scaling.ladder("quick", vocab_size=1024)} == {1024}
    assert scaling.rung_configs(scaling.ladder("quick", 1024)[0], "quick").tokenizer == "bpe-1024"


@pytest.mark.filterwarnings("ignore:Could not load roneneldan/TinyStories")
def test_the_ladder_keeps_cpu_quicks_vocabulary_on_real_stories_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert scaling.ladder_vocab("quick") == (scaling.SYNTHETIC_VOCAB, SYNTHETIC_SOURCE)
    stories = tmp_path / "stories-train.txt"
    stories.write_text("Once upon a time there was a cat.\n<|endoftext|>\nThe dog ran home.\n<|endoftext|>\n" * 30)
    monkeypatch.setenv("SLM_TINYSTORIES", str(stories))
    vocab_size, source = scaling.ladder_vocab("quick")
    assert vocab_size == preset("cpu-quick")[0].vocab_size and str(stories) in source
    assert len(scaling.ladder("quick")) >= 4


def test_rungs_train_at_a_constant_rate_on_the_recorded_data(monkeypatch):
    monkeypatch.setenv("SLM_TINYSTORIES", "/some/stories.txt")
    model_config = scaling.ladder("quick")[0]
    train = scaling.rung_configs(model_config, "quick")
    quick_model, _ = preset("cpu-quick")
    assert train.min_lr == train.lr == pytest.approx(scaling.PROBED_LR * math.sqrt(scaling.PROBED_WIDTH / 32))
    probed = quick_model.replace(n_embd=scaling.PROBED_WIDTH)
    assert scaling.rung_configs(probed, "full").lr == scaling.PROBED_LR  # the probed width: the probed rate
    assert train.data_source == "/some/stories.txt"
    assert train.max_iters == scaling.STEPS["quick"] and train.max_iters % train.eval_interval == 0
    assert scaling.run_tokens(train, model_config.block_size) == scaling.STEPS["quick"] * 2048
    assert os.path.basename(train.out_dir) == "L2-E32" and "scaling-quick" in train.out_dir


def test_the_budget_of_cpu_quick():
    model_config, train_config = preset("cpu-quick")
    tokens = scaling.run_tokens(train_config, model_config.block_size)
    assert tokens == train_config.max_iters * train_config.batch_size * model_config.block_size
    n = GPT(model_config).num_params()
    assert scaling.training_compute(n, tokens) == 6 * n * tokens
    assert scaling.transient_tokens() == scaling.TRANSIENT_UPDATES * train_config.batch_size * model_config.block_size


def tiny_family(vocab: int = 300) -> tuple[GPTConfig, TrainConfig]:
    """A stand-in for cpu-quick small enough that a rung trains in about a second."""
    model = GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=1, n_embd=16, dropout=0.0)
    train = TrainConfig(tokenizer=f"bpe-{vocab}", batch_size=4, max_iters=12, lr=1e-2, min_lr=1e-3,
                        warmup_iters=2, eval_interval=4, eval_iters=2, log_interval=4, device="cpu", seed=3)
    return model, train


@pytest.mark.filterwarnings("ignore:Could not load roneneldan/TinyStories")
def test_a_tiny_ladder_end_to_end_on_the_embedded_corpus(monkeypatch):
    monkeypatch.setattr(scaling, "preset", lambda name: tiny_family())
    monkeypatch.setattr(scaling, "SYNTHETIC_VOCAB", 300)
    monkeypatch.setitem(scaling.LADDERS, "quick", ((1, 1, 16), (1, 2, 32), (2, 2, 48)))
    monkeypatch.setitem(scaling.STEPS, "quick", 24)
    monkeypatch.setitem(scaling.MAX_STORIES, "quick", 200)
    lines = []
    curves = scaling.train_ladder("quick", report=lines.append)
    assert [c.label for c in curves] == ["L1-E16", "L1-E32", "L2-E48"]
    assert all(len(c.tokens) == scaling.EVALUATIONS for c in curves)
    assert all("synthetic" in c.source for c in curves), "with SLM_TINYSTORIES unset and no hub: the embedded corpus"
    for c in curves:
        assert c.tokens[-1] == 24 * 4 * 16 and (np.diff(c.tokens) > 0).all()
        assert (c.val_bpb > 0).all() and c.val_bpb[-1] < c.val_bpb[0]  # it learned something
        np.testing.assert_allclose(c.compute, 6 * c.n_params * c.tokens)
    assert "synthetic" in lines[0] and "bpe-300" in lines[0]
    assert len(lines) == 4 and not any("cached" in line for line in lines)
    front = scaling.frontier(curves)
    assert (np.diff(front.val_bpb) < 0).all() and set(front.labels) <= {c.label for c in curves}

    # A second call reuses every run; a changed recipe retrains (and only then).
    again = scaling.train_ladder("quick", report=lines.append)
    assert all("cached" in line for line in lines[5:])
    np.testing.assert_array_equal(again[1].val_bpb, curves[1].val_bpb)
    monkeypatch.setitem(scaling.STEPS, "quick", 12)
    shorter = scaling.train_ladder("quick", report=None)
    assert shorter[0].tokens[-1] == 12 * 4 * 16
    run_dir = scaling.rung_configs(scaling.ladder("quick")[0], "quick").out_dir
    assert checkpoint.is_complete(run_dir)


def test_the_fits_run_on_a_trained_ladder_shape():
    """The lesson's path from curves to a pick, on curves shaped like real ones."""
    truth = scaling.ScalingLaw(irreducible=0.8, a=60.0, alpha=0.3, b=300.0, beta=0.3)
    sizes = [160_000, 260_000, 370_000, 740_000, 1_330_000]
    tokens = np.linspace(1e5, 6e5, 6)
    curves = [curve(f"N{n}", n, tokens, truth(n, tokens)) for n in sizes]
    front = scaling.frontier(curves)
    power = scaling.fit_power_law(front.compute, front.val_bpb, offset=True)
    assert power.exponent < 0 and 0 <= power.offset < front.val_bpb.min()
    fit = scaling.fit_scaling_law(np.repeat(sizes, len(tokens)), np.tile(tokens, len(sizes)),
                                  np.concatenate([c.val_bpb for c in curves]))
    budget = 5e13
    assert math.isclose(fit.optimal(budget)[0], truth.optimal(budget)[0], rel_tol=1e-2)


def test_ladder_points_drop_the_transient_and_leave_one_out_refits():
    truth = scaling.ScalingLaw(irreducible=0.8, a=60.0, alpha=0.3, b=300.0, beta=0.3)
    tokens = np.linspace(1e5, 6e5, 6)
    curves = [curve(f"N{n}", n, tokens, truth(n, tokens)) for n in (160_000, 260_000, 370_000, 740_000, 1_330_000)]
    n, d, y = scaling.ladder_points(curves, min_tokens=2e5)
    assert len(n) == 5 * 5 and d.min() == 2e5 and set(n) == {c.n_params for c in curves}
    with pytest.raises(ValueError, match="no evaluation"):
        scaling.ladder_points(curves, min_tokens=1e9)
    picks = scaling.leave_one_out(curves, 5e13)
    assert list(picks) == [c.label for c in curves]
    for n_star in picks.values():  # exact points: every subset recovers the same law
        assert n_star == pytest.approx(truth.optimal(5e13)[0], rel=2e-2)


def test_training_speed_is_a_power_law_of_size():
    curves = [curve(f"N{n}", n, [1e5, 2e5], [2.0, 1.9]) for n in (1e5, 1e6)]
    curves = [scaling.Curve(c.label, c.n_params, c.tokens, c.val_bpb, c.val_loss, np.array([1.0, s]), "test")
              for c, s in zip(curves, (10.0, 40.0))]  # 20K and 5K tokens/s
    speed = scaling.training_speed(curves)
    assert speed(1e5) == pytest.approx(2e4) and speed(1e6) == pytest.approx(5e3)


def test_the_budget_explorer_follows_its_slider():
    law = scaling.ScalingLaw(irreducible=0.8, a=60.0, alpha=0.3, b=300.0, beta=0.3)
    box = scaling.budget_explorer(law, 1e13, tokens_per_second=scaling.PowerLaw(1e5, -0.2))
    slider, readout, picture = box.children
    assert "slm-budget-explorer" in box._dom_classes
    before, png = readout.value, bytes(picture.value)
    assert f"{law.optimal(1e13)[0] / 1e6:.2f}M parameters" in before and png.startswith(b"\x89PNG")
    slider.value = 1e15
    assert readout.value != before and bytes(picture.value) != png
    assert f"{law.optimal(1e15)[0] / 1e6:.2f}M parameters" in readout.value
