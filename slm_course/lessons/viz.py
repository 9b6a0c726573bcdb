"""Plots for the training lesson: loss curves (after a run, or live during one) and the LR schedule.

Figures are made with ``matplotlib.figure.Figure`` rather than pyplot, so a notebook shows each one
exactly once (when it is returned or displayed), and nothing here needs a GUI.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from slm_course.checkpoint import read_metrics
from slm_course.config import TrainConfig
from slm_course.optim import lr_at, make_scheduler


def draw_losses(ax: Axes, records: list[dict[str, Any]], title: str = "") -> None:
    """Draw the training loss (every logged step) and the evaluation losses onto ``ax``.

    Where the evaluations report bits per byte (runs made before it was added don't), a second
    y-axis on the right shows the validation loss in bits/byte too: the number that compares
    runs with different tokenizers.
    """
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", alpha=0.5,
                linewidth=1, label="training loss (batches)")
    if evals:
        steps = [r["step"] for r in evals]
        ax.plot(steps, [r["train_loss"] for r in evals], "o-", color="tab:blue", label="train (fixed eval batches)")
        ax.plot(steps, [r["val_loss"] for r in evals], "o-", color="tab:orange", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    legend_ax = ax
    with_bpb = [r for r in evals if "val_bpb" in r]
    if with_bpb:
        right = ax.twinx()
        right.plot([r["step"] for r in with_bpb], [r["val_bpb"] for r in with_bpb], "s--", color="tab:red",
                   markersize=4, label=f"validation, bits/byte (last {with_bpb[-1]['val_bpb']:.3f})")
        right.set_ylabel("validation bits per byte", color="tab:red")
        right.tick_params(axis="y", colors="tab:red")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
        legend_ax = right  # drawn last, so a legend on ax would sit under the right axis's line
    if handles:
        legend_ax.legend(handles, labels)


def plot_losses(run_dir: str | Path, ax: Axes | None = None) -> Figure:
    """The loss curves of a run, read from its ``metrics.jsonl``."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise FileNotFoundError(f"no metrics in {run_dir / 'metrics.jsonl'}: has this run started training?")
    fig, ax = _figure_and_axes(ax)
    draw_losses(ax, records, title=f"loss: {run_dir.name}")
    return fig


def plot_lr_schedule(config: TrainConfig, run_dir: str | Path | None = None, ax: Axes | None = None) -> Figure:
    """The learning rate at every step: the closed form, PyTorch's scheduler on top of it, and
    (given a ``run_dir``) the rates a run actually logged. All three should coincide."""
    import torch

    fig, ax = _figure_and_axes(ax)
    steps = range(config.max_iters)
    ax.plot(steps, [lr_at(step, config) for step in steps], color="tab:green", linewidth=3, alpha=0.4,
            label="closed form (lr_at)")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = make_scheduler(optimizer, config)
    rates = []
    for _ in steps:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    ax.plot(steps, rates, color="black", linewidth=1, label="SequentialLR(LinearLR, CosineAnnealingLR)")
    if run_dir is not None:
        logged = [r for r in read_metrics(Path(run_dir)) if r.get("kind") == "train"]
        # A record's step counts updates done; its lr is the one the last of them used.
        ax.plot([r["step"] - 1 for r in logged], [r["lr"] for r in logged], ".", color="tab:red", label="logged by the run")
    ax.axvline(config.warmup_iters, color="gray", linestyle=":", label=f"end of warmup ({config.warmup_iters})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"warmup then cosine: {config.lr:g} -> {config.min_lr:g}")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


class LiveLossPlot:
    """A ``train_model(..., callback=LiveLossPlot())`` callback that redraws the loss curves as a run goes.

    In a notebook the figure is updated in place (at most every ``min_interval_s`` seconds, and at
    every evaluation); elsewhere it only collects the records, which ``figure()`` can draw later.
    """

    def __init__(self, min_interval_s: float = 2.0, title: str = "training") -> None:
        self.records: list[dict[str, Any]] = []
        self.min_interval_s = min_interval_s
        self.title = title
        self._handle: Any = None
        self._last_draw = 0.0

    def __call__(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        now = time.monotonic()
        if record.get("kind") == "eval" or now - self._last_draw >= self.min_interval_s:
            self._last_draw = now
            self.show()

    def figure(self) -> Figure:
        fig, ax = _figure_and_axes(None)
        draw_losses(ax, self.records, title=self.title)
        return fig

    def show(self) -> None:
        """Draw (or redraw) the figure in the notebook output; does nothing outside IPython."""
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def _figure_and_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    return fig, fig.add_subplot()
