"""The optimizer and its learning-rate schedule: AdamW, linear warmup then cosine decay.

The schedule counts optimizer *updates*, never micro-batches: :func:`lr_at` gives it in closed
form, :func:`make_scheduler` builds the same curve from PyTorch's schedulers, and
:func:`optimizer_step` applies one update (unscale, clip, step, with fp16's loss scaling).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from slm_course.config import TrainConfig

# What torch warns when a scheduler steps after an update that GradScaler skipped (see below).
_SKIPPED_UPDATE_WARNING = re.escape("Detected call of `lr_scheduler.step()` before `optimizer.step()`")


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate of update ``step`` (0-based), in closed form.

    Linear warmup from lr / (warmup_iters + 1) up to lr, then half a cosine from lr down to min_lr,
    reached after the last update. :func:`make_scheduler` must give exactly these values.

    Example: with ``lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110``, update 0 -> ``1e-3 / 11``,
    update 10 -> ``1e-3`` (warmup done), update 60 -> ``1e-4 + 0.5 * 9e-4 = 5.5e-4`` (half-way down).
    """
    c = config
    if step < c.warmup_iters:
        return c.lr * (step + 1) / (c.warmup_iters + 1)
    progress = (step - c.warmup_iters) / (c.max_iters - c.warmup_iters)
    return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW that decays only the 2-D weights (matmuls, embeddings).

    Decaying biases and LayerNorm gains would pull them towards zero for no benefit: they are few
    and don't overfit. The fused kernel (one launch for all parameters) is used on CUDA.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=device.type == "cuda")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> LRScheduler:
    """Linear warmup then cosine decay, stepped once per optimizer update (see :func:`lr_at`)."""
    cosine = CosineAnnealingLR(optimizer, T_max=config.max_iters - config.warmup_iters, eta_min=config.min_lr)
    if config.warmup_iters == 0:
        return cosine
    warmup = LinearLR(optimizer, start_factor=1 / (config.warmup_iters + 1), total_iters=config.warmup_iters)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[config.warmup_iters])


@contextmanager
def schedule_counts_skipped_updates() -> Iterator[None]:
    """Inside this block, stepping the scheduler after an update GradScaler skipped is not warned about.

    With fp16, an update whose gradients hold inf/NaN is skipped (``optimizer.step`` is never
    called), and if that happens on the first update torch warns that the scheduler stepped
    "before the optimizer". Counting every update, skipped or not, is what the schedule means, so
    a training run enters this block once, around its whole loop; every other warning still shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIPPED_UPDATE_WARNING, category=UserWarning)
        yield


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> bool:
    """Clip and apply the accumulated gradients; return True if the scaler skipped the update.

    With fp16 the gradients are still multiplied by the loss scale here, so they are unscaled
    *before* clipping (clipping scaled gradients would clip at grad_clip x scale). If any gradient
    is inf/NaN the scaler skips the update and halves its scale; we detect that by the scale drop,
    which reads the scale from the device (fp16 only: without a scaler nothing is read back).
    """
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scale_before = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return scale_before is not None and scaler.get_scale() < scale_before
