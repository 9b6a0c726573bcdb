"""Training a GPT: the loop, its evaluation in nats/token and bits/byte, exact resume, Ctrl-C.

    from slm_course.presets import preset
    from slm_course.trainer import train_model
    run_dir = train_model(*preset("cpu-quick"))      # about 10 minutes on 2 CPU cores

One *step* is one optimizer update: ``grad_accum_steps`` micro-batches of ``batch_size`` sequences
(split across processes under DDP), so ``max_iters``, ``warmup_iters`` and the LR schedule count
updates, never micro-batches. Everything a run produces lives in its ``out_dir`` (see
``slm_course.checkpoint``), which is all :func:`slm_course.checkpoint.load_run` needs later.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from slm_course import checkpoint
from slm_course.config import GPTConfig, TrainConfig
from slm_course.data import RunData, get_batch, prepare_run_data
from slm_course.distributed import Process, gather_rng_states, set_rng_states, start_process
from slm_course.fileio import atomic_write, write_json
from slm_course.model import GPT
from slm_course.optim import make_optimizer, make_scheduler, optimizer_step, schedule_counts_skipped_updates
from slm_course.runtime import configure_matmul_precision, eval_mode, resolve_dtype, seed_everything
from slm_course.tokenizer import encoding_fingerprint, token_byte_lengths

# TrainConfig fields that may differ when a run is resumed: how often it reports, and where and in
# what precision it computes (a new device or dtype continues closely, but not bit for bit).
RESUMABLE_CHANGES = frozenset({"eval_interval", "eval_iters", "log_interval", "device", "dtype", "compile", "out_dir"})


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped without saving over the last checkpoint."""


class RunMismatchError(ValueError):
    """A run directory's checkpoint was made with a different config than the one asked for."""


# --- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitLoss:
    """A split's loss two ways: per token (what training minimises) and per byte of text.

    Bits per byte compares models whose tokenizers differ: a vocabulary of longer tokens has
    fewer, harder predictions per story, which changes nats/token but not bits/byte.
    """

    nats_per_token: float  # mean cross-entropy over every target token, <|endoftext|> included
    bits_per_byte: float  # nats over the targets that are text / their UTF-8 bytes / ln 2


@torch.inference_mode()
def estimate_loss(
    model: torch.nn.Module,
    splits: dict[str, np.ndarray],
    batch_size: int,
    eval_iters: int,
    *,
    token_bytes: np.ndarray | torch.Tensor,
    seed: int = 0,
    autocast: Any = None,
) -> dict[str, SplitLoss]:
    """The loss of each split over ``eval_iters`` batches, the *same* batches at every call.

    A fresh generator seeded with ``seed`` draws them, so successive evaluations differ only
    because the model changed, not because the batches did. Dropout is off (eval mode) and the
    model's previous mode is restored afterwards. ``token_bytes[i]`` is the number of UTF-8 bytes
    token ``i`` stands for, 0 for special tokens (``tokenizer.token_byte_lengths``); bits/byte
    leaves those tokens out of both sums, since they stand for no text.

    Example: targets ``[a, <|endoftext|>]`` of 2 and 0 bytes, scored 1.0 and 3.0 nats ->
    ``nats_per_token = 2.0``, ``bits_per_byte = 1.0 / 2 / ln 2 = 0.72``
    """
    raw = checkpoint.unwrap(model)
    block_size, device = raw.config.block_size, next(raw.parameters()).device
    token_bytes = torch.as_tensor(token_bytes, device=device)
    losses = {}
    with eval_mode(model):
        for split, tokens in splits.items():
            generator = torch.Generator().manual_seed(seed)
            total = torch.zeros((), device=device)
            text_nats = torch.zeros((), device=device)
            text_bytes = torch.zeros((), dtype=torch.int64, device=device)
            for _ in range(eval_iters):
                x, y = get_batch(tokens, batch_size, block_size, device, generator=generator)
                with autocast or nullcontext():
                    logits, loss = model(x, y)
                total += loss.float()
                nats = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
                lengths = token_bytes[y.flatten()]
                text_nats += torch.where(lengths > 0, nats, 0.0).sum()
                text_bytes += lengths.sum()
            if int(text_bytes) == 0:
                raise ValueError(f"the {split} batches hold only special tokens, so bits/byte is undefined; "
                                 f"check that the {split} data holds text (or raise eval_iters)")
            losses[split] = SplitLoss(float(total / eval_iters), float(text_nats / text_bytes) / math.log(2))
    return losses


# --- the run directory ---------------------------------------------------------------------------


def check_same_run(run_dir: Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise RunMismatchError listing every field in which ``wanted`` differs from the saved run."""
    differences = []
    for section in ("model", "train", "tokenizer"):
        if section not in wanted:
            continue
        old, new = saved.get(section) or {}, wanted[section]
        if section == "model" and old:
            # a run saved before a GPTConfig field existed was made with that field's default
            old = {f.name: f.default for f in dataclasses.fields(GPTConfig)} | old
        for name in sorted(set(old) | set(new)):
            if section == "train" and name in RESUMABLE_CHANGES:
                continue
            if old.get(name) != new.get(name):
                differences.append(
                    f"{section}.{name}: checkpoint has {old.get(name)!r}, config asks for {new.get(name)!r}")
    if differences:
        raise RunMismatchError(
            f"the checkpoint in {run_dir} does not match the config:\n  " + "\n  ".join(differences)
            + "\nResume with the run's own config, or choose a new out_dir to start another run."
        )


def _open_run_dir(run_dir: Path, process: Process, resume: bool) -> bool:
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


def _run_record(model_config: GPTConfig, config: TrainConfig, data: RunData) -> dict[str, Any]:
    """The contents of ``config.json``: what is trained, with which tokenizer, on what data."""
    return {
        "format": 1,
        "model": model_config.to_dict(),
        "train": config.to_dict(),
        "tokenizer": {"spec": config.tokenizer, "n_vocab": data.encoding.n_vocab,
                      "fingerprint": encoding_fingerprint(data.encoding),
                      "file": None if data.tokenizer_file is None else "tokenizer" + data.tokenizer_file.suffix},
        "data": data.description,
    }


# --- what a run reports ---------------------------------------------------------------------------


class _InterruptFlag:
    """Turn the first Ctrl-C (SIGINT) into a request to stop at the end of the current update.

    Stopping mid-update could save half-applied weights; a flag checked between updates can't.
    A second Ctrl-C interrupts immediately, as usual.
    """

    def __init__(self, verbose: bool) -> None:
        self.requested = False
        self._verbose = verbose
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._verbose:
            tqdm.write("Ctrl-C: finishing this update, saving a checkpoint, then stopping (again to abort)")

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():  # only it may set signal handlers
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class _Reporter:
    """Where a run's records go: ``metrics.jsonl`` and the callback (rank 0 only), and the terminal."""

    run_dir: Path
    is_main: bool
    verbose: bool
    callback: Callable[[dict[str, Any]], None] | None
    interrupt: _InterruptFlag

    def emit(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the metrics; a KeyboardInterrupt from the callback stops the run like Ctrl-C."""
        if self.is_main:
            checkpoint.append_metrics(self.run_dir, record)
            if self.callback is not None:
                try:
                    self.callback(record)
                except KeyboardInterrupt:
                    self.interrupt.requested = True

    def say(self, message: str) -> None:
        if self.verbose:
            tqdm.write(message)


@dataclass
class _RunState:
    """Everything the loop changes: the counters every checkpoint keeps, then a window that sums up
    the updates since the last training log line."""

    step: int = 0  # optimizer updates done
    best_val_loss: float = math.inf
    best_val_bpb: float = math.nan  # bits/byte at the best validation loss (NaN: not recorded yet)
    skipped_steps: int = 0  # fp16 updates GradScaler skipped (inf/NaN gradients)
    train_seconds: float = 0.0  # time in the updates themselves: no evaluations, no checkpoints
    # with a time budget: is max_iters fixed yet; when the timed updates began; one evaluation's cost
    planned: bool = True
    timing_from: tuple[int, float] | None = None  # (step, train_seconds) after the first update timed
    eval_seconds: float = 0.0
    window_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(()))  # summed on the device
    window_batches: int = 0
    window_steps: int = 0
    window_seconds: float = 0.0

    def new_window(self, device: torch.device) -> None:
        self.window_loss = torch.zeros((), device=device)
        self.window_batches, self.window_steps, self.window_seconds = 0, 0, 0.0

    def counters(self) -> dict[str, Any]:
        """The fields that go into ``state.pt`` (``best_val_bpb`` is absent from runs made before it)."""
        return {"step": self.step, "best_val_loss": self.best_val_loss, "best_val_bpb": self.best_val_bpb,
                "skipped_steps": self.skipped_steps, "train_seconds": self.train_seconds}


def _evaluate(model: torch.nn.Module, data: RunData, token_bytes: torch.Tensor, cfg: TrainConfig, autocast: Any,
              state: _RunState, lr: float, tokens_per_step: int, reporter: _Reporter) -> None:
    """Evaluate both splits, record the result, and keep track of the best validation loss."""
    losses = estimate_loss(model, data.tokens, cfg.batch_size, cfg.eval_iters, token_bytes=token_bytes,
                           seed=cfg.seed + 10_000, autocast=autocast)
    train, val = losses["train"], losses["validation"]
    if not all(math.isfinite(v.nats_per_token) for v in losses.values()):
        raise TrainingDiverged(
            f"the evaluation loss is {({k: v.nats_per_token for k, v in losses.items()})} at step {state.step}: "
            f"the weights have diverged. Stopped without saving; the last good checkpoint is still in "
            f"{reporter.run_dir}. Try a lower lr or warmup_iters longer."
        )
    if val.nats_per_token < state.best_val_loss:
        state.best_val_loss, state.best_val_bpb = val.nats_per_token, val.bits_per_byte
    reporter.emit({"kind": "eval", "step": state.step, "train_loss": train.nats_per_token,
                   "val_loss": val.nats_per_token, "train_bpb": train.bits_per_byte, "val_bpb": val.bits_per_byte,
                   "lr": lr, "tokens": state.step * tokens_per_step, "train_seconds": state.train_seconds})
    reporter.say(f"step {state.step}: train loss {train.nats_per_token:.4f} ({train.bits_per_byte:.3f} bits/byte), "
                 f"val loss {val.nats_per_token:.4f} ({val.bits_per_byte:.3f} bits/byte)")


def _log_train(state: _RunState, process: Process, scaler: torch.amp.GradScaler, lr: float, tokens_per_step: int,
               reporter: _Reporter, progress: tqdm) -> None:
    """Record the mean training loss since the last log line, then start a new window.

    Reading the loss back from the device waits for the device to finish its queued work, so it
    happens here, every ``log_interval`` updates, never at every update. (With fp16 the loss
    scale is also read at every update: see :func:`slm_course.optim.optimizer_step`.)
    """
    loss = process.mean(state.window_loss / max(state.window_batches, 1)).item()
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"the training loss became {loss} by step {state.step}. Stopped without saving; the last good checkpoint "
            f"is still in {reporter.run_dir}. Try a lower lr, a longer warmup_iters, or dtype='float32'."
        )
    tokens_per_s = state.window_steps * tokens_per_step / max(state.window_seconds, 1e-9)
    record = {"kind": "train", "step": state.step, "loss": loss, "lr": lr, "tokens_per_s": tokens_per_s,
              "tokens": state.step * tokens_per_step, "skipped_steps": state.skipped_steps,
              "train_seconds": state.train_seconds}
    if scaler.is_enabled():
        record["loss_scale"] = scaler.get_scale()
    reporter.emit(record)
    progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
    state.new_window(state.window_loss.device)


# --- the wall-clock budget -------------------------------------------------------------------------

# Share of the budget left unplanned: load changes during the run, Python's start-up before
# train_model, and checkpoints (not timed before the plan is made) have to fit into it. A real
# run's few checkpoints do (cpu-quick's 9 take ~1 s of 600); a tiny model that checkpoints every
# few milliseconds of training would not.
BUDGET_MARGIN = 0.03


def plan_budget(budget: float, elapsed: float, step: int, update_seconds: float, eval_seconds: float,
                eval_interval: int) -> int:
    """The max_iters that fits what is left of a ``budget`` of seconds after ``elapsed`` of them.

    After ``step`` updates, each further update takes ``update_seconds`` and every
    ``eval_interval``-th update (and the last) also an evaluation of ``eval_seconds``;
    ``BUDGET_MARGIN`` of the budget is kept back. At least one more update is always planned.

    Example: ``plan_budget(600, 60, 50, 0.2, 3.0, 250)`` -> 2498: 582 s less 60 spent and 3 for the
    final evaluation leaves 519 s; at 0.2 s per update plus 3 s per 250 updates, 2,448 more updates.
    """
    left = budget * (1 - BUDGET_MARGIN) - elapsed - eval_seconds  # the final evaluation always happens
    per_update = update_seconds + eval_seconds / eval_interval
    return step + max(1, int(left / per_update))


def _fix_max_iters(cfg: TrainConfig, state: _RunState, process: Process, started: float) -> dict[str, Any]:
    """Plan the rest of a time-budgeted run from the updates timed so far; the plan, for config.json.

    Every rank plans from the same (averaged) timings, so all of them stop at the same update.
    """
    first_step, first_seconds = state.timing_from
    timings = torch.tensor([(state.train_seconds - first_seconds) / (state.step - first_step),
                            time.perf_counter() - started, state.eval_seconds], dtype=torch.float64)
    update_seconds, elapsed, eval_seconds = process.mean(timings.to(process.device)).tolist()
    max_iters = plan_budget(cfg.time_budget, elapsed, state.step, update_seconds, eval_seconds, cfg.eval_interval)
    return {"seconds": cfg.time_budget, "planned_at_step": state.step, "elapsed_seconds": round(elapsed, 3),
            "update_seconds": update_seconds, "eval_seconds": eval_seconds, "max_iters": max_iters}


# --- the training loop ---------------------------------------------------------------------------


def train_model(
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
    started = time.perf_counter()  # a time budget counts from here
    with start_process(cfg) as process:
        verbose = verbose and process.is_main
        run_dir = Path(cfg.out_dir)
        resuming = _open_run_dir(run_dir, process, resume)

        # data: rank 0 trains the tokenizer and tokenizes the stories; the other ranks find them cached
        if process.is_main:
            data = prepare_run_data(cfg, model_config.block_size)
        process.barrier()
        if not process.is_main:
            data = prepare_run_data(cfg, model_config.block_size)
        n_vocab = data.encoding.n_vocab
        if model_config.vocab_size < n_vocab:
            raise ValueError(
                f"GPTConfig.vocab_size ({model_config.vocab_size}) is smaller than the tokenizer's {n_vocab} "
                f"tokens ({cfg.tokenizer!r}); set vocab_size to at least {n_vocab}"
            )
        token_bytes = torch.as_tensor(token_byte_lengths(data.encoding), device=process.device)

        # config.json: a resumed run must be the same run; nobody writes before every rank checked.
        # A time-budgeted run resumes with the max_iters it planned, so it ends where it would have.
        saved_record = checkpoint.read_run_config(run_dir) if resuming else {}
        if cfg.time_budget is not None and "budget" in saved_record:
            cfg = cfg.replace(max_iters=saved_record["budget"]["max_iters"])
        run_record = _run_record(model_config, cfg, data)
        if "budget" in saved_record:
            run_record["budget"] = saved_record["budget"]
        if resuming:
            check_same_run(run_dir, saved_record, run_record)
        process.barrier()
        if process.is_main:
            write_json(run_dir / checkpoint.CONFIG, run_record)
            if data.tokenizer_file is not None:
                atomic_write(run_dir / run_record["tokenizer"]["file"], data.tokenizer_file.read_bytes())

        # model, optimizer, schedule, precision; the same seed gives every rank the same initial weights
        seed_everything(cfg.seed)
        if model is None:
            model = GPT(model_config)
        elif model.config != model_config:
            raise ValueError(f"the model passed in was built from {model.config}, not from model_config {model_config}")
        device = process.device
        model.to(device)
        optimizer = make_optimizer(model, cfg, device)
        scheduler = make_scheduler(optimizer, cfg)
        dtype, why = resolve_dtype(cfg.dtype, device)
        matmul = configure_matmul_precision(device, dtype)  # TF32 for fp32 runs on Ampere and newer
        why += f"; {matmul}" if matmul else ""
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        # per-rank random streams: every rank draws different batches and different dropout masks
        batch_rng = torch.Generator().manual_seed(cfg.seed + process.rank)
        torch.manual_seed(cfg.seed + process.rank)

        # resume: weights, optimizer moments, schedule, loss scale, random streams and counters
        state = _RunState()
        if resuming:
            saved = checkpoint.load_state(run_dir)
            state = _RunState(step=int(saved["step"]), best_val_loss=float(saved["best_val_loss"]),
                              best_val_bpb=float(saved.get("best_val_bpb", math.nan)),
                              skipped_steps=int(saved["skipped_steps"]), train_seconds=float(saved["train_seconds"]))
            checkpoint.load_weights(run_dir, model, step=state.step)
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if scaler.is_enabled() and saved["scaler"]:
                scaler.load_state_dict(saved["scaler"])
            if not set_rng_states(saved["rng"], batch_rng, process.rank, state.step):
                print(f"rank {process.rank}: the checkpoint has no random state for this rank (it was saved by "
                      f"fewer processes), so this rank's batches won't repeat the original run", file=sys.stderr)
            if process.is_main:
                checkpoint.truncate_metrics(run_dir, state.step)
        elif process.is_main:
            (run_dir / checkpoint.METRICS).unlink(missing_ok=True)
        state.planned = cfg.time_budget is None or "budget" in run_record
        state.new_window(device)

        compute_model: torch.nn.Module = torch.compile(model) if cfg.compile else model
        eval_model = compute_model  # DDP's wrapper is only for computing gradients
        if process.world_size > 1:
            device_ids = [device.index] if device.type == "cuda" else None
            compute_model = DistributedDataParallel(compute_model, device_ids=device_ids)
        micro_steps = cfg.grad_accum_steps // process.world_size
        tokens_per_step = cfg.batch_size * model_config.block_size * cfg.grad_accum_steps
        interrupt = _InterruptFlag(verbose)
        reporter = _Reporter(run_dir, process.is_main, verbose, callback, interrupt)
        if resuming:
            reporter.say(f"resuming {run_dir} at step {state.step}/{cfg.max_iters}")
        reporter.say(f"device {device}, {process.world_size} process(es); {why}")
        reporter.say(f"{model.num_params() / 1e6:.2f}M parameters, {tokens_per_step:,} tokens per update, "
                     f"{cfg.max_iters} updates; checkpoints and metrics go to {run_dir}/")

        compute_model.train()
        progress = tqdm(total=cfg.max_iters, initial=state.step, desc="training", dynamic_ncols=True,
                        disable=not verbose)
        with progress, interrupt, schedule_counts_skipped_updates():
            # evaluate before training: a fresh model's loss is about ln(vocab_size)
            if state.step == 0:
                mark = time.perf_counter()
                _evaluate(eval_model, data, token_bytes, cfg, autocast, state, optimizer.param_groups[0]["lr"],
                          tokens_per_step, reporter)
                state.eval_seconds = time.perf_counter() - mark
            mark = time.perf_counter()
            while state.step < cfg.max_iters:
                lr = optimizer.param_groups[0]["lr"]
                for micro in range(micro_steps):
                    # batch: random windows from this rank's stream
                    x, y = get_batch(data.tokens["train"], cfg.batch_size, model_config.block_size, device,
                                     generator=batch_rng)
                    # forward under autocast; DDP all-reduces gradients only on the last micro-batch's backward
                    no_sync = micro < micro_steps - 1 and process.world_size > 1
                    with compute_model.no_sync() if no_sync else nullcontext():
                        with autocast:
                            _, loss = compute_model(x, y)
                        # scaled backward: each micro-batch adds its share of the update's gradient
                        scaler.scale(loss / micro_steps).backward()
                    state.window_loss += loss.detach().float()
                    state.window_batches += 1
                # unscale + clip, then the optimizer and scheduler step (a skipped fp16 update still counts)
                state.skipped_steps += optimizer_step(compute_model, optimizer, scaler, cfg.grad_clip)
                scheduler.step()
                state.step += 1
                state.window_steps += 1
                progress.update(1)
                elapsed = time.perf_counter() - mark
                state.train_seconds += elapsed
                state.window_seconds += elapsed

                # time budget: time the warmup updates (not the first: allocations), then fix max_iters.
                # The warmup's learning rates don't depend on max_iters, so the schedule rebuilt for the
                # planned max_iters and fast-forwarded gives the lr every update so far had.
                if not state.planned and state.timing_from is None:
                    state.timing_from = (state.step, state.train_seconds)
                elif not state.planned and state.step >= cfg.warmup_iters:
                    run_record["budget"] = _fix_max_iters(cfg, state, process, started)
                    cfg = cfg.replace(max_iters=run_record["budget"]["max_iters"])
                    run_record["train"] = cfg.to_dict()
                    scheduler = make_scheduler(optimizer, cfg)
                    for _ in range(state.step):
                        scheduler.step()
                    state.planned = True
                    if process.is_main:
                        write_json(run_dir / checkpoint.CONFIG, run_record)
                    reporter.emit({"kind": "budget", "step": state.step, **run_record["budget"]})
                    reporter.say(f"time budget {cfg.time_budget:.0f} s: {run_record['budget']['update_seconds']:.3f} s "
                                 f"per update, so {cfg.max_iters} updates in all (recorded in config.json)")
                    progress.total = cfg.max_iters
                    progress.refresh()

                # log every log_interval updates, and at every evaluation
                is_eval = state.step % cfg.eval_interval == 0 or state.step == cfg.max_iters
                logged = state.step % cfg.log_interval == 0 or is_eval
                if logged:
                    _log_train(state, process, scaler, lr, tokens_per_step, reporter, progress)
                # evaluate every eval_interval updates and after the last
                if is_eval:
                    mark = time.perf_counter()
                    _evaluate(eval_model, data, token_bytes, cfg, autocast, state, optimizer.param_groups[0]["lr"],
                              tokens_per_step, reporter)
                    state.eval_seconds = time.perf_counter() - mark
                # Ctrl-C (or the callback) asks to stop; under DDP the ranks agree at logging steps only,
                # since agreeing costs an all-reduce
                stop = (logged or process.world_size == 1) and process.any(interrupt.requested)
                if stop and not logged:
                    _log_train(state, process, scaler, lr, tokens_per_step, reporter, progress)
                # checkpoint after every evaluation and before stopping; rank 0 writes, all ranks give RNG states
                if is_eval or stop:
                    rng_states = gather_rng_states(process, batch_rng)
                    if process.is_main:
                        checkpoint.save(run_dir, model, {**state.counters(), "optimizer": optimizer.state_dict(),
                                                         "scheduler": scheduler.state_dict(),
                                                         "scaler": scaler.state_dict(), "rng": rng_states})
                    process.barrier()
                if stop:
                    reporter.say(f"interrupted at step {state.step}: checkpoint saved in {run_dir}; resume=True "
                                 f"(--resume on the command line) continues from here")
                    raise KeyboardInterrupt
                mark = time.perf_counter()
        bpb = f"{state.best_val_bpb:.3f} bits/byte" if math.isfinite(state.best_val_bpb) else "bits/byte not recorded"
        reporter.say(f"done: {state.train_seconds / 60:.1f} min of training, best validation loss "
                     f"{state.best_val_loss:.4f} ({bpb})")
        return run_dir
