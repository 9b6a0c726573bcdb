"""Training a GPT: AdamW, warmup + cosine learning rate, mixed precision, exact resume, DDP.

    python -m slm_course.train --preset cpu-quick               # about 10 minutes on 2 CPU cores
    python -m slm_course.train --preset cpu-quick --resume      # continue a stopped run exactly
    torchrun --nproc_per_node=4 -m slm_course.train --preset gpu  # DistributedDataParallel

One *step* is one optimizer update: ``grad_accum_steps`` micro-batches of ``batch_size`` sequences
(split across processes under DDP), so ``max_iters``, ``warmup_iters`` and the LR schedule count
updates, never micro-batches. Everything a run produces lives in its ``out_dir`` (see
``slm_course.checkpoint``), which is all :func:`slm_course.checkpoint.load_run` needs to sample from it later.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from tqdm.auto import tqdm

from slm_course import checkpoint
from slm_course.config import GPTConfig, TrainConfig
from slm_course.data import get_batch, prepare_run_data
from slm_course.fileio import atomic_write, write_json
from slm_course.model import GPT
from slm_course.runtime import cache_dir, eval_mode, pick_device, resolve_dtype, seed_everything
from slm_course.runtime import profile as current_profile
from slm_course.tokenizer import encoding_fingerprint



# --- presets -------------------------------------------------------------------------------------


def _cpu_quick() -> tuple[GPTConfig, TrainConfig]:
    """A run that finishes in about 10 minutes on 2 CPU cores and writes readable stories.

    A 4,096-token BPE instead of GPT-2's 50,257 tokens: the embedding and the output layer shrink
    12x, which on a CPU buys far more training tokens than anything else could.
    """
    model = GPTConfig(vocab_size=4096, block_size=128, n_layer=4, n_head=4, n_embd=192, dropout=0.0)
    train = TrainConfig(tokenizer="bpe-4096", batch_size=16, max_iters=1500, lr=2e-3, min_lr=2e-4,
                        warmup_iters=50, eval_interval=250, eval_iters=10, out_dir="runs/cpu-quick")
    return model, train


def _lesson() -> tuple[GPTConfig, TrainConfig]:
    """The small run lessons 03, 06 and 07 share in their quick profile: about a minute on 2 cores."""
    model = GPTConfig(vocab_size=1024, block_size=64, n_layer=2, n_head=4, n_embd=128, dropout=0.0)
    train = TrainConfig(tokenizer="bpe-1024", max_stories=3000, batch_size=16, max_iters=300, lr=3e-3,
                        min_lr=3e-4, warmup_iters=20, eval_interval=25, eval_iters=5, out_dir="runs/lesson")
    return model, train


def _seed() -> tuple[GPTConfig, TrainConfig]:
    """The seed project's model and token budget, with its schedule fixed.

    The seed ran 20,000 micro-batches of 32 x 128 tokens with 32-step accumulation (625 updates)
    but stepped its scheduler per micro-batch and decayed *up* to eta_min=5e-4 from lr=1e-4. Here:
    the same 625 updates of 131k tokens, warmup over 5% of them, cosine decay down to lr / 10.
    """
    model = GPTConfig.seed()
    train = TrainConfig(tokenizer="gpt2", batch_size=32, grad_accum_steps=32, max_iters=625, lr=6e-4,
                        min_lr=6e-5, warmup_iters=31, eval_interval=25, eval_iters=20, out_dir="runs/seed")
    return model, train


def _gpu() -> tuple[GPTConfig, TrainConfig]:
    """A stronger single-GPU run: a 8-layer, 512-wide model on 256-token contexts, compiled, bf16.

    The vocabulary is padded from 50,257 to 50,304 (a multiple of 64) for faster matmuls; the extra
    rows are never the target of any token and learn to be unlikely.
    """
    model = GPTConfig(vocab_size=50304, block_size=256, n_layer=8, n_head=8, n_embd=512, dropout=0.0)
    train = TrainConfig(tokenizer="gpt2", batch_size=64, grad_accum_steps=8, max_iters=5000, lr=1e-3,
                        min_lr=1e-4, warmup_iters=200, eval_interval=250, eval_iters=40, compile=True,
                        out_dir="runs/gpu")
    return model, train


PRESETS: dict[str, Callable[[], tuple[GPTConfig, TrainConfig]]] = {
    "cpu-quick": _cpu_quick,
    "lesson": _lesson,
    "seed": _seed,
    "gpu": _gpu,
}


def preset(name: str) -> tuple[GPTConfig, TrainConfig]:
    """The model and training configs of a named preset (fresh objects: change them freely)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint} Presets: {', '.join(PRESETS)}")
    return PRESETS[name]()


# --- optimizer, schedule, precision --------------------------------------------------------------


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate of update ``step`` (0-based), in closed form.

    Linear warmup from lr / (warmup_iters + 1) up to lr, then half a cosine from lr down to min_lr,
    reached after the last update. :func:`make_scheduler` must give exactly these values.
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


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    grad_clip: float,
) -> bool:
    """Clip and apply the accumulated gradients; return True if the scaler skipped the update.

    With fp16 the gradients are still multiplied by the loss scale here, so they are unscaled
    *before* clipping (clipping scaled gradients would clip at grad_clip x scale). If any gradient
    is inf/NaN the scaler skips the update and halves its scale; we detect that by the scale drop.
    """
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scale_before = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return scale_before is not None and scaler.get_scale() < scale_before


@torch.inference_mode()
def estimate_loss(
    model: torch.nn.Module,
    splits: dict[str, np.ndarray],
    batch_size: int,
    eval_iters: int,
    seed: int = 0,
    autocast: Any = None,
) -> dict[str, float]:
    """Mean loss of each split over ``eval_iters`` batches, the *same* batches at every call.

    A fresh generator seeded with ``seed`` draws them, so successive evaluations differ only
    because the model changed, not because the batches did. Dropout is off (eval mode) and the
    model's previous mode is restored afterwards.
    """
    raw = checkpoint.unwrap(model)
    block_size, device = raw.config.block_size, next(raw.parameters()).device
    losses = {}
    with eval_mode(model):
        for split, tokens in splits.items():
            generator = torch.Generator().manual_seed(seed)
            total = 0.0
            for _ in range(eval_iters):
                x, y = get_batch(tokens, batch_size, block_size, device, generator=generator)
                with autocast or nullcontext():
                    _, loss = model(x, y)
                total += loss.float()
            losses[split] = float(total / eval_iters)
    return losses


# --- data and tokenizer --------------------------------------------------------------------------


# --- distributed ---------------------------------------------------------------------------------


@dataclass
class _Process:
    """This process's place in a (possibly one-process) run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # we started the process group, so we must end it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return value

    def any(self, flag: bool) -> bool:
        """True if ``flag`` is true on any process (so all of them take the same branch)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def _start_process(config: TrainConfig) -> _Process:
    """One process, or one rank of a ``torchrun`` launch (NCCL on CUDA, gloo on CPU)."""
    device = pick_device(config.device)
    if "RANK" not in os.environ:
        return _Process(device)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if config.grad_accum_steps % world_size:
        raise ValueError(
            f"TrainConfig.grad_accum_steps ({config.grad_accum_steps}) must be divisible by the number of "
            f"processes ({world_size}), which share the micro-batches of each update; use "
            f"--grad_accum_steps {world_size * max(1, config.grad_accum_steps // world_size)}"
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Process(device, rank, world_size, owns_group)


# --- interruption --------------------------------------------------------------------------------


class _InterruptFlag:
    """Turn the first Ctrl-C (SIGINT) into a request to stop at the end of the current update.

    Stopping mid-update could save half-applied weights; a flag checked between updates can't.
    A second Ctrl-C interrupts immediately, as usual.
    """

    def __init__(self, say: Callable[[str], None]) -> None:
        self.requested = False
        self._say = say
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._say("Ctrl-C: finishing this update, saving a checkpoint, then stopping (again to abort)")

    def __enter__(self) -> _InterruptFlag:
        if _in_main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped without saving over the last checkpoint."""


class RunMismatchError(ValueError):
    """A run directory's checkpoint was made with a different config than the one asked for."""


# TrainConfig fields that may differ when a run is resumed: how often it reports, and where and in
# what precision it computes (a new device or dtype continues closely, but not bit for bit).
RESUMABLE_CHANGES = frozenset({"eval_interval", "eval_iters", "log_interval", "device", "dtype", "compile", "out_dir"})


def _check_same_run(run_dir: Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise RunMismatchError listing every field in which ``wanted`` differs from the saved run."""
    differences = []
    for section in ("model", "train", "tokenizer"):
        if section not in wanted:
            continue
        old, new = saved.get(section) or {}, wanted[section]
        for name in sorted(set(old) | set(new)):
            if section == "train" and name in RESUMABLE_CHANGES:
                continue
            if old.get(name) != new.get(name):
                differences.append(f"{section}.{name}: checkpoint has {old.get(name)!r}, config asks for {new.get(name)!r}")
    if differences:
        raise RunMismatchError(
            f"the checkpoint in {run_dir} does not match the config:\n  " + "\n  ".join(differences)
            + "\nResume with the run's own config, or choose a new out_dir to start another run."
        )


# --- the training loop ---------------------------------------------------------------------------


def train(
    model_config: GPTConfig,
    train_config: TrainConfig,
    *,
    resume: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
    model: GPT | None = None,
    verbose: bool = True,
) -> Path:
    """Train a GPT and return its run directory (checkpoint, metrics, config, tokenizer).

    ``resume`` continues the checkpoint in ``train_config.out_dir`` exactly where it stopped (or
    starts fresh if there is none). ``callback(metrics)`` is called with every record written to
    ``metrics.jsonl`` (``kind`` "train" or "eval"), e.g. to draw a live loss plot; raising
    KeyboardInterrupt from it stops the run like Ctrl-C. ``model`` trains that instance (built from
    ``model_config``, e.g. by hand in a lesson) instead of a fresh one. Ctrl-C saves a checkpoint
    and re-raises KeyboardInterrupt; a NaN/inf loss raises TrainingDiverged without saving.
    """
    cfg = train_config
    process = _start_process(cfg)
    try:
        return _train(model_config, cfg, process, resume, callback, model, verbose and process.is_main)
    finally:
        if process.owns_group:
            dist.destroy_process_group()


def _open_run_dir(run_dir: Path, process: _Process, resume: bool) -> bool:
    """Create ``run_dir`` or finish a save killed half-way in it; return True if we resume from it."""
    if process.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.recover(run_dir)
    process.barrier()
    if checkpoint.has_checkpoint(run_dir) and not resume:
        raise FileExistsError(
            f"{run_dir} already holds a checkpoint; resume it (resume=True, or --resume on the command line), "
            f"or choose another out_dir (or delete that directory) to start over"
        )
    return resume and checkpoint.has_checkpoint(run_dir)


def _train(
    model_config: GPTConfig,
    cfg: TrainConfig,
    process: _Process,
    resume: bool,
    callback: Callable[[dict[str, Any]], None] | None,
    model: GPT | None,
    verbose: bool,
) -> Path:
    say = tqdm.write if verbose else (lambda message: None)
    device = process.device
    run_dir = Path(cfg.out_dir)
    resuming = _open_run_dir(run_dir, process, resume)

    # Rank 0 trains the tokenizer and tokenizes the data; the others then find them cached.
    if process.is_main:
        inputs = prepare_run_data(cfg, model_config.block_size)
    process.barrier()
    if not process.is_main:
        inputs = prepare_run_data(cfg, model_config.block_size)
    if model_config.vocab_size < inputs.encoding.n_vocab:
        raise ValueError(
            f"GPTConfig.vocab_size ({model_config.vocab_size}) is smaller than the tokenizer's "
            f"{inputs.encoding.n_vocab} tokens ({cfg.tokenizer!r}); set vocab_size to at least {inputs.encoding.n_vocab}"
        )
    run_record = {
        "format": 1,
        "model": model_config.to_dict(),
        "train": cfg.to_dict(),
        "tokenizer": {"spec": cfg.tokenizer, "n_vocab": inputs.encoding.n_vocab,
                      "fingerprint": encoding_fingerprint(inputs.encoding),
                      "file": None if inputs.tokenizer_file is None else "tokenizer" + inputs.tokenizer_file.suffix},
        "data": inputs.description,
    }

    if resuming:
        saved = json.loads((run_dir / checkpoint.CONFIG).read_text())
        _check_same_run(run_dir, saved, run_record)
    process.barrier()  # nobody writes into run_dir before every rank has checked it
    if process.is_main:
        write_json(run_dir / checkpoint.CONFIG, run_record)
        if inputs.tokenizer_file is not None:
            atomic_write(run_dir / run_record["tokenizer"]["file"], inputs.tokenizer_file.read_bytes())

    # Same seed → same initial weights everywhere (DDP also broadcasts rank 0's at wrap time).
    seed_everything(cfg.seed)
    if model is None:
        model = GPT(model_config)
    elif model.config != model_config:
        raise ValueError(f"the model passed in was built from {model.config}, not from model_config {model_config}")
    model.to(device)
    optimizer = make_optimizer(model, cfg, device)
    scheduler = make_scheduler(optimizer, cfg)
    dtype, why = resolve_dtype(cfg.dtype, device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    # Per-rank streams: every rank draws different batches and different dropout masks.
    batch_rng = torch.Generator().manual_seed(cfg.seed + process.rank)
    torch.manual_seed(cfg.seed + process.rank)

    step, best_val_loss, skipped_steps, train_seconds = 0, math.inf, 0, 0.0
    if resuming:
        state = checkpoint.load_state(run_dir)
        step = int(state["step"])
        checkpoint.load_weights(run_dir, model, step=step)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler.is_enabled() and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        if not _set_rng_states(state["rng"], batch_rng, process.rank, step):
            print(f"rank {process.rank}: the checkpoint has no random state for this rank (it was saved by "
                  f"fewer processes), so this rank's batches won't repeat the original run", file=sys.stderr)
        best_val_loss, skipped_steps = float(state["best_val_loss"]), int(state["skipped_steps"])
        train_seconds = float(state["train_seconds"])
        if process.is_main:
            checkpoint.truncate_metrics(run_dir, step)
        say(f"resuming {run_dir} at step {step}/{cfg.max_iters}")
    elif process.is_main:
        (run_dir / checkpoint.METRICS).unlink(missing_ok=True)

    compute_model: torch.nn.Module = torch.compile(model) if cfg.compile else model
    eval_model = compute_model
    if process.world_size > 1:
        compute_model = DistributedDataParallel(compute_model, device_ids=[device.index] if device.type == "cuda" else None)

    micro_steps = cfg.grad_accum_steps // process.world_size
    tokens_per_step = cfg.batch_size * model_config.block_size * cfg.grad_accum_steps
    say(f"device {device}, {process.world_size} process(es); {why}")
    say(f"{model.num_params() / 1e6:.2f}M parameters, {tokens_per_step:,} tokens per update, "
        f"{cfg.max_iters} updates; checkpoints and metrics go to {run_dir}/")

    def save() -> None:
        rng_states = _gather_rng_states(process, batch_rng)  # collective: every rank takes part
        if process.is_main:
            checkpoint.save(run_dir, model, {
                "step": step, "best_val_loss": best_val_loss, "skipped_steps": skipped_steps,
                "train_seconds": train_seconds, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "rng": rng_states,
            })
        process.barrier()

    def emit(record: dict[str, Any]) -> None:
        if process.is_main:
            checkpoint.append_metrics(run_dir, record)
            if callback is not None:
                try:
                    callback(record)
                except KeyboardInterrupt:
                    interrupt.requested = True

    def evaluate() -> None:
        nonlocal best_val_loss
        losses = estimate_loss(eval_model, inputs.tokens, cfg.batch_size, cfg.eval_iters, seed=cfg.seed + 10_000,
                               autocast=autocast)
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingDiverged(
                f"the evaluation loss is {losses} at step {step}: the weights have diverged. Stopped without "
                f"saving; the last good checkpoint is still in {run_dir}. Try a lower lr or warmup_iters longer."
            )
        best_val_loss = min(best_val_loss, losses["validation"])
        emit({"kind": "eval", "step": step, "train_loss": losses["train"], "val_loss": losses["validation"],
              "lr": optimizer.param_groups[0]["lr"], "tokens": step * tokens_per_step, "train_seconds": train_seconds})
        if pbar is not None:
            pbar.write(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['validation']:.4f}")

    loss_sum, loss_count, steps_since_log, seconds_since_log = torch.zeros((), device=device), 0, 0, 0.0

    def log_train(lr: float) -> None:
        nonlocal loss_sum, loss_count, steps_since_log, seconds_since_log
        loss = process.mean(loss_sum / max(loss_count, 1)).item()
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the training loss became {loss} by step {step}. Stopped without saving; the last good checkpoint "
                f"is still in {run_dir}. Try a lower lr, a longer warmup_iters, or dtype='float32'."
            )
        tokens_per_s = steps_since_log * tokens_per_step / max(seconds_since_log, 1e-9)
        record = {"kind": "train", "step": step, "loss": loss, "lr": lr, "tokens_per_s": tokens_per_s,
                  "tokens": step * tokens_per_step, "skipped_steps": skipped_steps, "train_seconds": train_seconds}
        if scaler.is_enabled():
            record["loss_scale"] = scaler.get_scale()
        emit(record)
        if pbar is not None:
            pbar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
        loss_sum, loss_count, steps_since_log, seconds_since_log = torch.zeros((), device=device), 0, 0, 0.0

    pbar = tqdm(total=cfg.max_iters, initial=step, desc="training", dynamic_ncols=True) if verbose else None
    interrupt = _InterruptFlag(say)
    compute_model.train()
    try:
        with interrupt:
            if step == 0:
                evaluate()  # the loss before training: about ln(vocab_size) for a fresh model
            mark = time.perf_counter()
            while step < cfg.max_iters:
                lr = optimizer.param_groups[0]["lr"]
                for micro in range(micro_steps):
                    x, y = get_batch(inputs.tokens["train"], cfg.batch_size, model_config.block_size, device,
                                     generator=batch_rng)
                    # DDP all-reduces gradients on every backward; only the last micro-step needs it.
                    no_sync = micro < micro_steps - 1 and process.world_size > 1
                    with compute_model.no_sync() if no_sync else nullcontext():
                        with autocast:
                            _, loss = compute_model(x, y)
                        scaler.scale(loss / micro_steps).backward()
                    loss_sum += loss.detach().float()
                    loss_count += 1
                skipped_steps += optimizer_step(compute_model, optimizer, scaler, cfg.grad_clip)
                with warnings.catch_warnings():
                    # A skipped fp16 step makes torch warn that the scheduler stepped "before the
                    # optimizer"; counting updates, not successful ones, is what we want.
                    warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
                    scheduler.step()
                step += 1
                steps_since_log += 1
                if pbar is not None:
                    pbar.update(1)

                elapsed = time.perf_counter() - mark
                train_seconds += elapsed
                seconds_since_log += elapsed
                is_eval = step % cfg.eval_interval == 0 or step == cfg.max_iters
                logged = step % cfg.log_interval == 0 or is_eval
                if logged:
                    log_train(lr)
                if is_eval:
                    evaluate()
                    save()
                if process.any(interrupt.requested):
                    if not logged:
                        log_train(lr)
                    if not is_eval:
                        save()
                    say(f"interrupted at step {step}: checkpoint saved in {run_dir}; resume=True "
                        f"(--resume on the command line) continues from here")
                    raise KeyboardInterrupt
                mark = time.perf_counter()
    finally:
        if pbar is not None:
            pbar.close()
    say(f"done: {train_seconds / 60:.1f} min of training, best validation loss {best_val_loss:.4f}")
    return run_dir


def _rng_states(batch_rng: torch.Generator) -> dict[str, torch.Tensor]:
    """The random states a resumed run needs to continue exactly: dropout (the global torch
    generators) and batch sampling. Plain byte tensors, so ``weights_only`` loading accepts them."""
    states = {"torch": torch.get_rng_state(), "batches": batch_rng.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def _gather_rng_states(process: _Process, batch_rng: torch.Generator) -> list[dict[str, torch.Tensor]]:
    """Every rank's random states, in rank order (each rank draws its own batches and dropout)."""
    mine = _rng_states(batch_rng)
    if process.world_size == 1:
        return [mine]
    gathered: list[dict[str, torch.Tensor]] = [{} for _ in range(process.world_size)]
    for name, state in mine.items():
        parts = [torch.empty_like(state, device=process.device) for _ in range(process.world_size)]
        dist.all_gather(parts, state.to(process.device))
        for rank, part in enumerate(parts):
            gathered[rank][name] = part.cpu()
    return gathered


def _set_rng_states(saved: list[dict[str, torch.Tensor]], batch_rng: torch.Generator, rank: int, step: int) -> bool:
    """Restore this rank's random states; False if the checkpoint has none for it (more ranks now)."""
    if rank >= len(saved):
        batch_rng.manual_seed(hash((batch_rng.initial_seed(), step)) % 2**31)
        return False
    states = saved[rank]
    torch.set_rng_state(states["torch"])
    batch_rng.set_state(states["batches"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])
    return True


# --- using finished runs -------------------------------------------------------------------------


def demo_run(
    profile: str | None = None, retrain: bool = False, callback: Callable[[dict[str, Any]], None] | None = None
) -> Path:
    """The checkpoint the lessons share, trained on first use and reused after that.

    Profile ``quick`` (the default off-GPU) trains the ``lesson`` preset, about a minute on two CPU
    cores; ``full`` trains the ``seed`` preset (bf16 autocast on a recent GPU). It lives in
    ``cache_dir()/runs/demo-<profile>``, so no lesson depends on another having been run: lesson 06
    trains it (``retrain=True``, with its live ``callback``), lessons 03 and 07 reuse it or train
    it themselves. A run that was interrupted is resumed; one made with another preset or another
    ``SLM_TINYSTORIES`` data source is trained again. Prints which of these happened.
    """
    profile = profile or current_profile()
    model_config, train_config = preset("lesson" if profile == "quick" else "seed")
    run_dir = cache_dir() / "runs" / f"demo-{profile}"
    # Recording the data source in the config makes a run on other data a mismatch, not a reuse.
    data_source = train_config.data_source or os.environ.get("SLM_TINYSTORIES")
    train_config = train_config.replace(out_dir=str(run_dir), data_source=data_source)
    with _exclusive(run_dir.with_name(run_dir.name + ".lock")):  # two notebooks at once train it once
        if retrain:
            shutil.rmtree(run_dir, ignore_errors=True)
        if checkpoint.is_complete(run_dir):
            try:
                _check_same_run(run_dir, json.loads((run_dir / checkpoint.CONFIG).read_text()),
                                {"model": model_config.to_dict(), "train": train_config.to_dict()})
                print(f"demo_run: reusing the finished demo model in {run_dir}")
                return run_dir
            except RunMismatchError:
                shutil.rmtree(run_dir)
        print(f"demo_run: training the demo model ({profile} profile) into {run_dir}")
        try:
            return train(model_config, train_config, resume=True, callback=callback)
        except RunMismatchError:
            shutil.rmtree(run_dir)
            return train(model_config, train_config, callback=callback)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (where the OS offers flock; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose "unrecognized argument" error suggests the closest valid option."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            options = [opt for action in self._actions for opt in action.option_strings]
            word = unknown[0].split("=", 1)[0]
            close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else "; see --help for the options"
            self.error(f"unrecognized argument {unknown[0]!r}{hint}")
        return parsed


def _optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = kind.__name__
    return convert


_MODEL_HELP = {
    "vocab_size": "rows of the embedding; at least the tokenizer's number of tokens",
    "block_size": "context length: the most tokens the model sees at once",
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block (must divide n_embd)",
    "n_embd": "width of the residual stream",
    "dropout": "dropout probability while training (0 for short runs)",
    "bias": "biases in the Linear layers and LayerNorms",
}


def _add_fields(group: argparse._ArgumentGroup, config_class: type) -> None:
    """One option per dataclass field; defaults are left to the preset (only given ones override)."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind = hints[f.name]
        helptext = f.metadata.get("help") or _MODEL_HELP.get(f.name, f"{config_class.__name__}.{f.name}")
        options: dict[str, Any] = {"default": argparse.SUPPRESS, "help": helptext}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            options.update(nargs=len(typing.get_args(kind)), type=typing.get_args(kind)[0], metavar="X")
        else:
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            options["type"] = _optional(args[0]) if args else kind
            options["metavar"] = f.name.upper()
        group.add_argument(f"--{f.name}", **options)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m slm_course.train",
        description="Train a GPT on TinyStories. Start from a preset and override any of its fields, e.g. "
        "--preset cpu-quick --lr 3e-4 (options left out keep the preset's value). Runs under "
        "`torchrun --nproc_per_node=N` for DistributedDataParallel training.",
        allow_abbrev=False,
    )
    parser.add_argument("--preset", default="cpu-quick", choices=list(PRESETS), help="starting configuration")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in out_dir exactly")
    _add_fields(parser.add_argument_group("model (GPTConfig)"), GPTConfig)
    _add_fields(parser.add_argument_group("training (TrainConfig)"), TrainConfig)
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[GPTConfig, TrainConfig]:
    """The preset's configs with every option given on the command line applied."""
    model_config, train_config = preset(args.preset)
    given = vars(args)
    model_changes = {f.name: given[f.name] for f in dataclasses.fields(GPTConfig) if f.name in given}
    train_changes = {f.name: given[f.name] for f in dataclasses.fields(TrainConfig) if f.name in given}
    return model_config.replace(**model_changes), train_config.replace(**train_changes)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m slm_course.train``: returns the exit status (130 after Ctrl-C, like a shell)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_config, train_config = configs_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    is_main = int(os.environ.get("RANK", "0")) == 0
    command = " ".join(["python -m slm_course.train", *(sys.argv[1:] if argv is None else argv)])
    try:
        run_dir = train(model_config, train_config, resume=args.resume)
    except KeyboardInterrupt:
        if is_main:
            resume = command if args.resume else command + " --resume"
            print(f"\nstopped; the checkpoint in {train_config.out_dir} continues with:\n  {resume}", file=sys.stderr)
        return 130
    except (TrainingDiverged, RunMismatchError, FileExistsError, FileNotFoundError, ValueError) as err:
        if is_main:
            print(f"error: {err}", file=sys.stderr)
        return 1
    if is_main:
        print(f"checkpoint: {run_dir / checkpoint.WEIGHTS} (+ {checkpoint.STATE})")
        print(f"metrics:    {run_dir / checkpoint.METRICS}")
        print(f"sample:     python -m slm_course.sample --checkpoint {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
