"""The scaling-law lab of lesson 08: train a ladder of model sizes, fit how the loss falls with
compute, and read off the compute-optimal model size for a budget.

The pieces, in the order the lesson uses them:

* :func:`ladder` — the model sizes of a profile. Every rung belongs to the ``cpu-quick`` family
  (its tokenizer, vocabulary, context and training recipe; on the embedded corpus a smaller
  vocabulary, see :func:`ladder_vocab`); only depth and width change.
* :func:`train_ladder` — trains every rung through :func:`slm_course.trainer.train_model` on the
  same number of tokens, with a constant learning rate after warmup (see :func:`rung_configs`),
  caching the runs in ``cache_dir()/runs/scaling-<profile>/``; each becomes a :class:`Curve`.
* :func:`frontier` — the compute-efficient frontier: the best loss any run reached with at most
  C FLOPs.
* :func:`fit_power_law` — ``L(C) = offset + scale · C^exponent`` through the frontier.
* :func:`fit_scaling_law` — ``L(N, D) = E + A / N^α + B / D^β`` through every evaluation of every
  run (Hoffmann et al. 2022, "approach 3"); :meth:`ScalingLaw.optimal` then splits a budget
  ``C = 6·N·D`` into the N and D that minimise it.

Compute is counted as ``C = 6·N·D`` throughout, with N = :meth:`GPT.num_params` (the token table
counted once: it is also the lm_head, whose matmul costs as much as any other weight's) and D the
tokens trained on, as in the scaling-law papers; :meth:`GPT.flops_per_token` adds the attention
scores, a few percent at these sizes (lesson 08 compares the two).
"""

from __future__ import annotations

import io
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from slm_course import checkpoint
from slm_course.checkpoint import read_run_config
from slm_course.config import GPTConfig, TrainConfig
from slm_course.corpus import SYNTHETIC_SOURCE, load_tinystories
from slm_course.model import GPT
from slm_course.presets import preset
from slm_course.runtime import cache_dir
from slm_course.runtime import profile as current_profile
from slm_course.trainer import RunMismatchError, check_same_run, train_model

# (n_layer, n_head, n_embd) of each rung, smallest first: width grows by about 1.5x per rung and
# depth with it (a shape near the family's), heads of 32-64 dimensions. The full ladder adds
# cpu-quick's own shape (4 x 4 x 144), its old hand-picked one (4 x 4 x 192) and one above.
LADDERS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "quick": ((2, 1, 32), (2, 1, 48), (3, 2, 64), (3, 3, 96), (4, 4, 128)),
    "full": ((2, 1, 32), (2, 1, 48), (3, 2, 64), (3, 3, 96), (4, 4, 128), (4, 4, 144), (4, 4, 192), (5, 4, 256)),
}
# The embedded corpus's small world offers barely the merges a 4,096-token BPE needs, so many of
# its last tokens would be rare: on it, the ladder uses our 1,024-token BPE instead (see ladder_vocab).
SYNTHETIC_VOCAB = 1024
# Updates per rung (each of cpu-quick's 2,048 tokens): every size sees the same tokens, so the
# ladder costs about (number of rungs) x (steps) x (a step's time), which on a CPU is nearly the
# same for every small model (the vocabulary-wide softmax costs the same at every width).
STEPS = {"quick": 300, "full": 1500}
EVALUATIONS = 6  # evaluations per run after step 0: the points of each learning curve
# Stories per split: more than a run's tokens need (quick: ~0.8M tokens for 0.61M trained), so no
# run sees a story twice; the full ladder's 3.1M tokens take the whole shared slice (1.4 passes).
MAX_STORIES = {"quick": 4000, "full": 20000}
# The constant rate that suited width 192 (cpu-quick's width when the probe described in
# rung_configs ran) in the ladder's runs; it stays fixed when cpu-quick itself is retuned.
PROBED_LR, PROBED_WIDTH = 2e-3, 192
# Evaluations before this many updates are left out of the fits: in the first steps the loss
# falls from ln(vocab) faster than any power law of D, and those points would bend the fit.
TRANSIENT_UPDATES = 100


def ladder(profile: str | None = None, vocab_size: int | None = None) -> list[GPTConfig]:
    """The model configs of a profile's ladder, smallest first (default: the current profile),
    with cpu-quick's vocabulary or ``vocab_size``.

    Example: ``[c.n_embd for c in ladder("quick")]`` -> ``[32, 48, 64, 96, 128]``
    """
    profile = profile or current_profile()
    if profile not in LADDERS:
        raise ValueError(f"unknown profile {profile!r}; use one of {sorted(LADDERS)}")
    family = preset("cpu-quick")[0]
    return [family.replace(vocab_size=vocab_size or family.vocab_size, n_layer=layers, n_head=heads, n_embd=width)
            for layers, heads, width in LADDERS[profile]]


def ladder_vocab(profile: str | None = None) -> tuple[int, str]:
    """The vocabulary the ladder trains with on the stories at hand, and where they come from.

    cpu-quick's vocabulary on real stories (``SLM_TINYSTORIES``, else the Hugging Face hub or its
    cache); on the embedded synthetic corpus, the fallback offline, ``SYNTHETIC_VOCAB``, because
    its small world has barely enough distinct words for a 4,096-token BPE.
    """
    profile = profile or current_profile()
    stories = load_tinystories("train", data_source(), MAX_STORIES[profile])
    real = stories.source != SYNTHETIC_SOURCE
    return (preset("cpu-quick")[0].vocab_size if real else SYNTHETIC_VOCAB), stories.source


def data_source() -> str | None:
    """Where the ladder's stories come from: cpu-quick's ``data_source``, else ``SLM_TINYSTORIES``
    (None: the best available, see :func:`slm_course.corpus.load_tinystories`)."""
    return preset("cpu-quick")[1].data_source or os.environ.get("SLM_TINYSTORIES")


def label(config: GPTConfig) -> str:
    """A rung's short name. Example: ``label(GPTConfig(n_layer=2, n_head=1, n_embd=32))`` -> ``'L2-E32'``"""
    return f"L{config.n_layer}-E{config.n_embd}"


def rung_configs(model_config: GPTConfig, profile: str) -> TrainConfig:
    """How each rung trains: cpu-quick's recipe (with a BPE of the rung's vocabulary) at the
    profile's token budget, with a learning rate that suits its width and stays constant after warmup.

    Each size must train about as well as it can, or the fit measures the recipe, not the size:
    narrower models want a higher rate. The rule here, ``PROBED_LR`` at width ``PROBED_WIDTH``
    times sqrt(that width / this width), fits what a probe found (200 constant-rate updates on real
    stories, validation bits/byte): width 32 scores the same at 4e-3 and 8e-3, within 0.01
    (rule: 4.9e-3); width 48 is best at 4e-3 of 2, 4 and 8e-3 (rule: 4e-3); width 128 at
    2e-3 of 1.4, 2 and 4e-3 (rule: 2.4e-3).

    A cosine schedule decays over the length of its own run, so an evaluation half-way through
    one is worse than a run *planned* to stop there (the learning rate is still high): Hoffmann
    et al. (2022) showed that reading losses off the middle of long cosine runs biased Kaplan et
    al.'s (2020) conclusions. With a constant rate every evaluation along a run is the loss of a
    run of that length, so one run per size gives a whole curve. All of them miss the extra drop
    a final decay gives (warmup-stable-decay schedules add it with a short cool-down), which
    shifts every curve alike.

    The data source joins the config (as in :func:`slm_course.lessons.demo.demo_run`), so a run
    cached from other stories (``SLM_TINYSTORIES``) is a mismatch, never reused.
    """
    family_model, family = preset("cpu-quick")
    steps = STEPS[profile]
    lr = PROBED_LR * math.sqrt(PROBED_WIDTH / model_config.n_embd)
    return family.replace(
        tokenizer=family.tokenizer if model_config.vocab_size == family_model.vocab_size
        else f"bpe-{model_config.vocab_size}",
        data_source=data_source(),
        max_stories=MAX_STORIES[profile],
        max_iters=steps,
        warmup_iters=max(10, steps // 30),  # cpu-quick warms up for ~3% of its updates
        lr=lr,
        min_lr=lr,  # constant after warmup (see above)
        eval_interval=steps // EVALUATIONS,
        eval_iters=8,  # 8 x 2,048 tokens per split, the same batches for every rung
        log_interval=50,
        out_dir=str(cache_dir() / "runs" / f"scaling-{profile}" / label(model_config)),
    )


def count_params(config: GPTConfig) -> int:
    """N of a config: ``GPT(config).num_params()``, the token table counted once."""
    return GPT(config).num_params()


def run_tokens(train_config: TrainConfig, block_size: int) -> int:
    """Tokens a run trains on. Example: cpu-quick's 2,500 updates of 16 x 128 -> ``5_120_000``"""
    return train_config.max_iters * train_config.grad_accum_steps * train_config.batch_size * block_size


def training_compute(n_params: float, tokens: float) -> float:
    """``C = 6·N·D`` FLOPs: 2 per weight per token forward (a multiply and an add), twice that
    backward (the gradients with respect to the activations and to the weights).

    Example: ``training_compute(1e6, 2e7)`` -> ``1.2e14``
    """
    return 6.0 * n_params * tokens


@dataclass(frozen=True)
class Curve:
    """One rung's learning curve: its validation loss at each evaluation after step 0."""

    label: str
    n_params: int
    tokens: np.ndarray  # tokens trained on at each evaluation
    val_bpb: np.ndarray  # validation bits per byte
    val_loss: np.ndarray  # validation nats per token
    train_seconds: np.ndarray  # seconds in the updates so far (no evaluations, no checkpoints)
    source: str  # where the stories came from

    @property
    def compute(self) -> np.ndarray:
        """Training FLOPs at each evaluation, ``6·N·D``."""
        return training_compute(self.n_params, self.tokens)


def read_curve(run_dir: Path) -> Curve:
    """The learning curve of a finished run, from its ``config.json`` and ``metrics.jsonl``."""
    record = read_run_config(run_dir)
    config = GPTConfig.from_dict(record["model"])
    evals = [r for r in checkpoint.read_metrics(run_dir) if r.get("kind") == "eval" and r["tokens"] > 0]
    column = lambda key: np.array([r[key] for r in evals], dtype=float)  # noqa: E731
    return Curve(label(config), count_params(config), column("tokens"), column("val_bpb"), column("val_loss"),
                 column("train_seconds"), record["data"].get("source", str(record["data"])))


def train_rung(model_config: GPTConfig, train_config: TrainConfig, verbose: bool = False) -> tuple[Curve, bool]:
    """Train one rung (or reuse its finished run from the cache); return its curve and whether it trained.

    A cached run made with any other config or data is deleted and trained again; one that was
    interrupted is resumed.
    """
    run_dir = Path(train_config.out_dir)
    wanted = {"model": model_config.to_dict(), "train": train_config.to_dict()}
    if checkpoint.is_complete(run_dir):
        try:
            check_same_run(run_dir, read_run_config(run_dir), wanted)
            return read_curve(run_dir), False
        except RunMismatchError:
            shutil.rmtree(run_dir)
    try:
        train_model(model_config, train_config, resume=True, verbose=verbose)
    except RunMismatchError:
        shutil.rmtree(run_dir)
        train_model(model_config, train_config, verbose=verbose)
    return read_curve(run_dir), True


def train_ladder(profile: str | None = None, verbose: bool = False,
                 report: Callable[[str], None] | None = print) -> list[Curve]:
    """Train (or load from the cache) every rung of a profile's ladder; one line per rung to ``report``."""
    profile = profile or current_profile()
    vocab_size, source = ladder_vocab(profile)
    if report is not None:
        report(f"stories: {source}; vocabulary {vocab_size:,} (bpe-{vocab_size})")
    curves = []
    for model_config in ladder(profile, vocab_size):
        curve, trained = train_rung(model_config, rung_configs(model_config, profile), verbose=verbose)
        curves.append(curve)
        if report is not None:
            report(f"{curve.label:>8}: {curve.n_params / 1e6:.2f}M parameters, {curve.tokens[-1] / 1e6:.2f}M tokens, "
                   f"{curve.train_seconds[-1]:5.0f} s of training{'' if trained else ' (cached)'}: "
                   f"validation {curve.val_bpb[-1]:.3f} bits/byte")
    return curves


# --- the compute-efficient frontier and its power law ---------------------------------------------


@dataclass(frozen=True)
class Frontier:
    """The evaluations no run beat with less compute, in order of compute."""

    compute: np.ndarray
    val_bpb: np.ndarray
    labels: list[str]  # the run each point comes from


def frontier(curves: Sequence[Curve], min_tokens: float = 0) -> Frontier:
    """The compute-efficient frontier: each evaluation whose loss is lower than that of every
    evaluation (of any run) with less or equal compute; evaluations before ``min_tokens`` tokens
    (the first steps' transient, see :data:`TRANSIENT_UPDATES`) are left out.

    Read it as "the best loss these runs show for a budget of at most C": spending more can
    always repeat a cheaper run, so the frontier only falls.

    Example: runs a (C 1, 2, 4: loss 3, 2.5, 2.4) and b (C 2, 4, 8: loss 2.8, 2.2, 1.9) ->
    a@1 (3), a@2 (2.5), b@4 (2.2), b@8 (1.9)
    """
    points = sorted((c, bpb, curve.label) for curve in curves
                    for c, bpb, d in zip(curve.compute, curve.val_bpb, curve.tokens) if d >= min_tokens)
    kept, best = [], math.inf
    for c, bpb, name in points:
        if bpb < best:
            kept.append((c, bpb, name))
            best = bpb
    return Frontier(np.array([p[0] for p in kept]), np.array([p[1] for p in kept]), [p[2] for p in kept])


@dataclass(frozen=True)
class PowerLaw:
    """``y = offset + scale · x^exponent``; an offset of 0 is a straight line on log-log axes."""

    scale: float
    exponent: float
    offset: float = 0.0

    def __call__(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.offset + self.scale * np.power(np.asarray(x, dtype=float), self.exponent)


def fit_power_law(x: Sequence[float], y: Sequence[float], offset: bool = False) -> PowerLaw:
    """Least-squares fit of ``y ≈ offset + scale · x^exponent`` in log y (relative errors).

    Without ``offset`` it is a straight line through (log x, log y): ``np.polyfit`` of degree 1.
    With it, for any trial offset c the rest is that same line through (log x, log(y - c)); the
    offset in [0, min y) whose line leaves the smallest squared error in log y wins (a grid, then
    a golden-section search around its best point). The offset is the loss no amount of compute
    removes: the entropy of the text itself, plus what this family of models can never capture.

    Example: ``fit_power_law([1, 10, 100], [2, 1, 0.5]).exponent`` -> ``-0.301`` (log10 2)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < (3 if offset else 2):
        raise ValueError(f"need matching 1-D x and y with at least {3 if offset else 2} points, "
                         f"got shapes {x.shape} and {y.shape}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power law needs positive x and y (it is fitted in log space)")
    log_x, log_y = np.log(x), np.log(y)

    def line_through(c: float) -> tuple[float, PowerLaw]:
        slope, intercept = np.polyfit(log_x, np.log(y - c), 1)
        law = PowerLaw(float(np.exp(intercept)), float(slope), float(c))
        return float(np.sum((np.log(law(x)) - log_y) ** 2)), law

    if not offset:
        return line_through(0.0)[1]
    top = float(y.min())
    grid = top * np.arange(200) / 200
    errors = [line_through(c)[0] for c in grid]
    best = int(np.argmin(errors))
    low, high = grid[max(best - 1, 0)], grid[best + 1] if best + 1 < len(grid) else top * (1 - 1e-9)
    return line_through(_golden_section(lambda c: line_through(c)[0], low, high))[1]


def _golden_section(f: Callable[[float], float], low: float, high: float, iterations: int = 60) -> float:
    """The minimum of a function unimodal on [low, high], narrowed by the golden ratio each step."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low + (1 - ratio) * (high - low), low + ratio * (high - low)
    fa, fb = f(a), f(b)
    for _ in range(iterations):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = low + (1 - ratio) * (high - low)
            fa = f(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = f(b)
    return (low + high) / 2


# --- L(N, D) and the compute-optimal split ---------------------------------------------------------


@dataclass(frozen=True)
class ScalingLaw:
    """``L(N, D) = irreducible + a / N^alpha + b / D^beta`` (Hoffmann et al. 2022, eq. 2).

    ``a / N^alpha`` is what a model of N parameters can never learn however long it trains;
    ``b / D^beta`` is what D tokens can't teach however large the model.
    """

    irreducible: float
    a: float
    alpha: float
    b: float
    beta: float

    def __call__(self, n_params: float | np.ndarray, tokens: float | np.ndarray) -> float | np.ndarray:
        n, d = np.asarray(n_params, dtype=float), np.asarray(tokens, dtype=float)
        return self.irreducible + self.a * n ** -self.alpha + self.b * d ** -self.beta

    def optimal(self, compute: float | np.ndarray) -> tuple[float | np.ndarray, float | np.ndarray]:
        """The (N, D) with ``6·N·D = compute`` that minimise L: setting dL/dN = 0 along D = C / (6N) gives
        ``N* = (alpha·a / (beta·b))^(1 / (alpha + beta)) · (C / 6)^(beta / (alpha + beta))``, ``D* = C / (6 N*)``.

        So N* grows as C^(beta / (alpha + beta)): equally with D* when alpha = beta (Chinchilla's
        finding), mostly in N when data saturates faster (beta > alpha).
        """
        if self.a <= 0 or self.b <= 0:
            raise ValueError(f"this fit has a={self.a:g}, b={self.b:g}: with a term missing, L has no optimum "
                             f"along a compute budget (the loss would fall forever towards N or D alone)")
        half = np.asarray(compute, dtype=float) / 6
        n = (self.alpha * self.a / (self.beta * self.b)) ** (1 / (self.alpha + self.beta)) * half ** (
            self.beta / (self.alpha + self.beta))
        return n, half / n


def fit_scaling_law(n_params: Sequence[float], tokens: Sequence[float], loss: Sequence[float]) -> ScalingLaw:
    """Least-squares fit of :class:`ScalingLaw` to measured (N, D, loss) triples.

    For fixed exponents the law is *linear* in (irreducible, a, b), so each trial (alpha, beta)
    is one small least-squares solve, with the three coefficients kept >= 0; a grid of exponents
    is searched, then narrowed three times around its best point. (Hoffmann et al. minimise a
    Huber loss with L-BFGS from many starts; with a few dozen points a plain search is as good
    and can't stop in the wrong valley.)
    """
    n, d, y = (np.asarray(v, dtype=float) for v in (n_params, tokens, loss))
    if not (n.shape == d.shape == y.shape) or n.ndim != 1 or len(n) < 5:
        raise ValueError(f"need matching 1-D arrays with at least 5 points, got shapes {n.shape}, {d.shape}, {y.shape}")
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
        raise ValueError("need at least two model sizes and two token counts to separate the N and D terms")
    # Scaled to about 1, so that the columns of the linear solve are of similar size.
    n0, d0 = float(np.exp(np.log(n).mean())), float(np.exp(np.log(d).mean()))

    def solve(alpha: float, beta: float) -> tuple[float, np.ndarray]:
        columns = np.stack([np.ones_like(y), (n / n0) ** -alpha, (d / d0) ** -beta], axis=1)
        return _nonnegative_least_squares(columns, y)

    alphas, betas = np.linspace(0.02, 2.0, 45), np.linspace(0.02, 2.0, 45)
    for _ in range(5):
        error, alpha, beta = min((solve(a, b)[0], a, b) for a in alphas for b in betas)
        step_a, step_b = alphas[1] - alphas[0], betas[1] - betas[0]
        alphas = np.linspace(max(alpha - step_a, 1e-3), alpha + step_a, 21)
        betas = np.linspace(max(beta - step_b, 1e-3), beta + step_b, 21)
    irreducible, a, b = solve(alpha, beta)[1]
    return ScalingLaw(float(irreducible), float(a * n0**alpha), float(alpha), float(b * d0**beta), float(beta))


def _nonnegative_least_squares(columns: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """min ||columns @ coef - y||² with coef >= 0, for a handful of columns: the unconstrained
    solution if it is >= 0, else the best over every subset of columns (exact for 3 columns)."""
    coef = np.linalg.lstsq(columns, y, rcond=None)[0]
    if (coef >= 0).all():
        return float(np.sum((columns @ coef - y) ** 2)), coef
    best_error, best = math.inf, np.zeros(columns.shape[1])
    for mask in range(1, 2 ** columns.shape[1] - 1):
        keep = [i for i in range(columns.shape[1]) if mask >> i & 1]
        coef = np.linalg.lstsq(columns[:, keep], y, rcond=None)[0]
        if (coef < 0).any():
            continue
        error = float(np.sum((columns[:, keep] @ coef - y) ** 2))
        if error < best_error:
            best_error, best = error, np.zeros(columns.shape[1])
            best[keep] = coef
    return best_error, best


# --- from a trained ladder to a pick ---------------------------------------------------------------



def transient_tokens() -> int:
    """Tokens a rung trains on in its first ``TRANSIENT_UPDATES`` updates (cpu-quick's batch).

    Example: ``transient_tokens()`` -> ``204_800`` (100 updates of 16 x 128 tokens)
    """
    model_config, train_config = preset("cpu-quick")
    return TRANSIENT_UPDATES * run_tokens(train_config, model_config.block_size) // train_config.max_iters


def ladder_points(curves: Sequence[Curve], min_tokens: float = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every evaluation of every curve with at least ``min_tokens`` tokens, as (N, D, bits/byte) arrays."""
    rows = [(c.n_params, d, y) for c in curves for d, y in zip(c.tokens, c.val_bpb) if d >= min_tokens]
    if not rows:
        raise ValueError(f"no evaluation has {min_tokens:,.0f} tokens or more")
    n, d, y = (np.array(column, dtype=float) for column in zip(*rows))
    return n, d, y


def leave_one_out(curves: Sequence[Curve], budget: float, min_tokens: float = 0) -> dict[str, float | None]:
    """The compute-optimal N for ``budget`` fitted without each rung in turn (None: that fit has no optimum).

    With a handful of rungs the fit leans on each of them; how far N* moves when one is dropped
    is an honest error bar, where a formula for one would assume more than the data can carry.
    """
    picks: dict[str, float | None] = {}
    for left_out in curves:
        rest = [c for c in curves if c is not left_out]
        try:
            picks[left_out.label] = float(fit_scaling_law(*ladder_points(rest, min_tokens)).optimal(budget)[0])
        except ValueError:
            picks[left_out.label] = None
    return picks


def training_speed(curves: Sequence[Curve]) -> PowerLaw:
    """Tokens per second against N, a straight line in log-log through each run's overall speed:
    what a budget in FLOPs costs in minutes on the machine that trained the ladder."""
    return fit_power_law([c.n_params for c in curves], [c.tokens[-1] / c.train_seconds[-1] for c in curves])


# --- pictures and the budget explorer -------------------------------------------------------------


def draw_isoflops(ax: Axes, law: ScalingLaw, budgets: Sequence[float], sizes: tuple[float, float] = (3e4, 3e7)) -> None:
    """Onto ``ax``: the loss the law predicts for each model size N when a budget C is spent on
    it (D = C / (6N) tokens), one curve per budget, its minimum — the compute-optimal size — marked.

    Too small a model wastes the budget on tokens it can't learn from; too large a one sees too
    few tokens. The curves are the IsoFLOP profiles of Hoffmann et al. (2022), drawn from the fit.
    """
    n = np.logspace(math.log10(sizes[0]), math.log10(sizes[1]), 300)
    lowest = math.inf
    for budget in budgets:
        (line,) = ax.plot(n, law(n, budget / (6 * n)), label=f"C = {budget:.1e} FLOPs")
        n_star, d_star = law.optimal(budget)
        best = float(law(n_star, d_star))
        ax.plot([n_star], [best], "o", color=line.get_color())
        lowest = min(lowest, best)
    ax.set_ylim(lowest * 0.97, lowest * 1.4)  # the minimum is what matters; far from it the loss soars
    ax.set_xscale("log")
    ax.set_xlabel("model size N (parameters)")
    ax.set_ylabel("predicted validation bits/byte")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def budget_explorer(law: ScalingLaw, budget: float, tokens_per_second: PowerLaw | None = None) -> widgets.VBox:
    """A compute-budget slider: the predicted compute-optimal N and D, the loss the law expects
    from them, and (given a fit of training speed against N) how long that run would take.

    The notebook cell before it draws the same picture at the starting budget, for viewers that
    can't run widgets.
    """
    slider = widgets.FloatLogSlider(value=budget, base=10, min=11, max=16, step=0.05, readout_format=".2e",
                                    description="compute C", style={"description_width": "6em"},
                                    layout={"width": "34em"})
    readout = widgets.HTML()
    picture = widgets.Image(format="png")

    def render(_change: object = None) -> None:
        n_star, d_star = law.optimal(slider.value)
        lines = [f"compute-optimal: <b>N* = {n_star / 1e6:.2f}M parameters</b> trained on "
                 f"<b>D* = {d_star / 1e6:.1f}M tokens</b> ({d_star / n_star:.0f} tokens per parameter)",
                 f"predicted validation loss: {float(law(n_star, d_star)):.3f} bits/byte"]
        if tokens_per_second is not None:
            minutes = d_star / float(tokens_per_second(n_star)) / 60
            lines.append(f"training time at the ladder's measured speed: about {minutes:,.0f} min")
        readout.value = "<br>".join(lines)
        figure = Figure(figsize=(6.5, 3.6))
        draw_isoflops(figure.subplots(), law, [slider.value])
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        picture.value = buffer.getvalue()

    slider.observe(render, names="value")
    render()
    box = widgets.VBox([slider, readout, picture])
    box.add_class("slm-budget-explorer")
    return box
