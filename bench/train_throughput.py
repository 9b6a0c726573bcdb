"""Training-step throughput and MFU: forward + backward + AdamW step, fp32 on the CPU; and the
same step side by side with nanoGPT's ``model.py`` and with ``torch.compile``.

MFU (model FLOPs utilisation) = achieved FLOP/s of the training step (nanoGPT's 6N + 12·L·C·T
FLOPs per token) / this machine's fp32 matmul FLOP/s measured in the same run. It tells how much of
the step is spent in the big matmuls versus everything else (LayerNorm, GELU, softmax, AdamW,
Python overhead).

The comparison needs a local copy of nanoGPT's ``model.py`` (``--nanogpt PATH``); it is loaded from
that path at run time and never copied into this repository. Both models get the *same* weights
(nanoGPT's parameter names are ours), the same batch and the same optimizer, so the only
difference left is the code of the two models. (Ours computes the head and its cross-entropy in one
chunked pass while training in fp32 on the CPU, ``slm_course/fused_loss.py``; nanoGPT writes out all
the logits and calls ``F.cross_entropy``. Both give the same loss and gradients.) On a machine other programs share, their load
changes from second to second, so the models take turns in short rounds (the order flipped every
round), and the ratio is the median of the per-round ratios: a burst of load hits both sides of
a round alike.

    python bench/train_throughput.py [--steps 10] [--nanogpt PATH] [--rounds 15] [--no-compile]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import markdown_table, matmul_gflops, write_section  # noqa: E402
from slm_course.config import GPTConfig  # noqa: E402
from slm_course.model import GPT  # noqa: E402

CONFIGS = {
    "L4/H4/E256/T256, vocab 4096, B8": (
        GPTConfig(vocab_size=4096, block_size=256, n_layer=4, n_head=4, n_embd=256, dropout=0.0), 8),
    "seed preset (L6/H6/E384/T128, vocab 50257, dropout 0.1), B8": (GPTConfig.seed(), 8),
}
COMPARED = "L4/H4/E256/T256, vocab 4096, B8"  # the config of the side-by-side comparison
STEPS_PER_ROUND = 3  # steps each model runs per turn: long enough to time, short enough to interleave


def training_step(model: torch.nn.Module, cfg: GPTConfig, batch: int) -> Callable[[], None]:
    """A closure running one full training step of ``model`` on a fixed random batch (seed 0).

    Plain ``torch.optim.AdamW`` over every parameter, for ours and nanoGPT's alike: the optimizer
    is not what is being compared.
    """
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size), generator=generator)
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size), generator=generator)

    def step() -> None:
        _, loss = model(x, targets=y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def our_model(cfg: GPTConfig) -> GPT:
    torch.manual_seed(0)
    return GPT(cfg)


def step_time(cfg: GPTConfig, batch: int, steps: int) -> float:
    """Median seconds per full training step after warm-up."""
    step = training_step(our_model(cfg), cfg, batch)
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_nanogpt(path: Path) -> ModuleType:
    """Import nanoGPT's ``model.py`` from ``path`` (a file outside this repository)."""
    if not path.is_file():
        raise SystemExit(f"--nanogpt {path}: no such file; point it at a copy of nanoGPT's model.py")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nanogpt_twin(nanogpt: ModuleType, ours: GPT) -> torch.nn.Module:
    """nanoGPT's GPT at our model's config, holding a copy of our model's weights.

    Loading our state dict (strictly: every name must match) and checking that both give the same
    loss on a batch proves that the two compute the same function, so the timing compares code.
    """
    cfg = ours.config
    nano_cfg = nanogpt.GPTConfig(block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
                                 n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
        twin = nanogpt.GPT(nano_cfg)
    twin.load_state_dict(ours.state_dict())
    x = torch.randint(0, cfg.vocab_size, (2, cfg.block_size), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours_loss, twin_loss = ours.eval()(x, targets=x)[1], twin.eval()(x, targets=x)[1]
    torch.testing.assert_close(ours_loss, twin_loss, rtol=1e-5, atol=1e-5)
    return twin


def interleaved_times(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    """Per-round mean step time of each closure; the closures take turns, the order reversed every round.

    Each closure first runs 3 warm-up steps (first-call allocations, a compiled model's tracing).
    """
    for step in steps.values():
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for _ in range(rounds):
        for name in order:
            start = time.perf_counter()
            for _ in range(STEPS_PER_ROUND):
                steps[name]()
            times[name].append((time.perf_counter() - start) / STEPS_PER_ROUND)
        order.reverse()
    return times


def compare(nanogpt_path: Path | None, rounds: int, with_compile: bool) -> str:
    """The side-by-side section: ours vs nanoGPT's model.py (if given) vs ours under torch.compile."""
    cfg, batch = CONFIGS[COMPARED]
    tokens = batch * cfg.block_size
    steps: dict[str, Callable[[], None]] = {"ours (eager)": training_step(our_model(cfg), cfg, batch)}
    notes = []
    if nanogpt_path is None:
        notes.append("nanoGPT: **skipped**, no `--nanogpt PATH` given (a local copy of nanoGPT's model.py).")
        print("skipping the nanoGPT comparison: pass --nanogpt PATH (a local copy of nanoGPT's model.py)")
    else:
        twin = nanogpt_twin(load_nanogpt(nanogpt_path), our_model(cfg))
        steps["nanoGPT model.py (eager)"] = training_step(twin, cfg, batch)
        notes.append(f"nanoGPT: `{nanogpt_path.name}` loaded from outside the repository, our weights loaded "
                     f"into it; both give the same loss on a test batch.")
    compile_seconds = None
    if with_compile:
        compiled = torch.compile(our_model(cfg))
        step = training_step(compiled, cfg, batch)
        start = time.perf_counter()
        step()  # the first step traces and compiles forward and backward
        compile_seconds = time.perf_counter() - start
        steps["ours, torch.compile (inductor)"] = step
        notes.append(f"torch.compile: the first step (tracing + C++ code generation) took {compile_seconds:.0f} s.")
    load_before = os.getloadavg()
    times = interleaved_times(steps, rounds)
    load_after = os.getloadavg()
    base = times["ours (eager)"]
    rows = []
    for name, ts in times.items():
        ratios = [b / t for b, t in zip(base, ts)]  # > 1: faster than ours (eager) in that round
        rows.append([name, f"{statistics.median(ts) * 1000:.0f} ms", f"{tokens / statistics.median(ts):,.0f}",
                     f"{statistics.median(ratios):.3f}× ({min(ratios):.2f}–{max(ratios):.2f})"])
        print(rows[-1], flush=True)
    summary = []
    if "nanoGPT model.py (eager)" in times:
        ratios = [n / o for n, o in zip(times["nanoGPT model.py (eager)"], base)]
        summary.append(f"**ours / nanoGPT = {statistics.median(ratios):.3f}×** (speed; median of the per-round "
                       f"ratios, {_quartiles(ratios)}; target ≥ 1.00×).")
    if compile_seconds is not None:
        ratios = [o / c for o, c in zip(base, times["ours, torch.compile (inductor)"])]
        low, high = statistics.quantiles(ratios, n=4)[0], statistics.quantiles(ratios, n=4)[2]
        verdict = "helps" if low > 1 else "slows the step" if high < 1 else "makes no clear difference"
        summary.append(f"torch.compile {verdict} on this CPU: {statistics.median(ratios):.3f}× the eager step's "
                       f"speed ({_quartiles(ratios)}), after {compile_seconds:.0f} s of compiling.")
    table = markdown_table(["model", "step (median)", "tokens/s", "speed vs ours (eager): median (min–max) of rounds"],
                           rows)
    return (f"### Side by side: ours vs nanoGPT vs torch.compile ({COMPARED}, fp32)\n\n"
            f"{rounds} rounds of {STEPS_PER_ROUND} steps per model, taking turns (order reversed every round) "
            f"after 3 warm-up steps each; the same batch, the same weights and plain AdamW for every model. "
            f"1-min load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end (this machine's "
            f"2 cores are shared with other work: compare within a round, not across runs).\n\n"
            + "\n".join(f"- {note}" for note in notes) + "\n\n" + table + "\n\n" + " ".join(summary))


def _quartiles(values: list[float]) -> str:
    """Example: ``_quartiles([0.9, 1.0, 1.1, 1.2])`` -> ``'middle half of the rounds 0.93–1.17'``"""
    low, _, high = statistics.quantiles(values, n=4)
    return f"middle half of the rounds {low:.2f}–{high:.2f}"


OTHER = "other (copies, adds, fills, AdamW's element-wise updates)"
CATEGORIES = {  # first match wins: a substring of the aten op name -> where the time goes
    "scaled_dot_product": "attention (SDPA fwd+bwd)",
    "softmax": "cross-entropy (softmax, log-softmax)",
    "nll_loss": "cross-entropy (softmax, log-softmax)",
    "gelu": "GELU fwd+bwd",
    "layer_norm": "LayerNorm fwd+bwd",
    "mm": "matmuls (Linear layers, lm_head)",
    "embedding": "embeddings",
    "index": "embeddings",
}


def time_breakdown(cfg: GPTConfig, batch: int, steps: int = 3) -> list[tuple[str, float]]:
    """Share of the step's CPU time per kind of op (torch.profiler, self time), largest first:
    what limits MFU besides the matmuls themselves."""
    from torch.profiler import ProfilerActivity, profile

    step = training_step(our_model(cfg), cfg, batch)
    step()  # warm-up: first-call allocations are not what limits a long run
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith("aten::") and "AdamW" not in event.key:
            continue
        name = "AdamW step (Python side)" if "AdamW" in event.key else next(
            (label for key, label in CATEGORIES.items() if key in event.key), OTHER)
        totals[name] = totals.get(name, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values())
    return sorted(((name, t / whole) for name, t in totals.items()), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per config in the MFU table")
    parser.add_argument("--nanogpt", type=Path, default=None, metavar="PATH",
                        help="a local copy of nanoGPT's model.py to compare against (never committed here)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the interleaved comparison")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="leave torch.compile out of the comparison (it needs a C++ compiler)")
    args = parser.parse_args()
    peak = matmul_gflops()
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s")
    rows = []
    for name, (cfg, batch) in CONFIGS.items():
        seconds = step_time(cfg, batch, args.steps)
        tokens = batch * cfg.block_size
        flops = GPT(cfg).flops_per_token(cfg.block_size) * tokens
        achieved = flops / seconds / 1e9
        rows.append([name, f"{seconds * 1000:.0f} ms", f"{tokens / seconds:,.0f}", f"{achieved:.0f}",
                     f"{peak:.0f}", f"{100 * achieved / peak:.0f}%"])
        print(rows[-1])
    table = markdown_table(
        ["config", "step", "tokens/s", "achieved GFLOP/s", "fp32 matmul GFLOP/s (same run)", "MFU"], rows)
    side_by_side = compare(args.nanogpt, args.rounds, args.compile)
    cfg, batch = CONFIGS[COMPARED]
    shares = time_breakdown(cfg, batch)
    breakdown = markdown_table(["where the step's CPU time goes", "share"],
                               [[name, f"{100 * share:.0f}%"] for name, share in shares])
    print(breakdown)
    write_section("train_throughput", "## Training-step throughput (CPU, fp32)\n\n"
                  "Forward + backward + AdamW step, median of the timed steps; MFU against the fp32 "
                  "matmul rate measured in the same run (2048×2048 matmuls).\n\n" + table
                  + "\n\n" + side_by_side
                  + f"\n\nProfile of the {COMPARED} step (torch.profiler, self CPU time):\n\n" + breakdown)


if __name__ == "__main__":
    main()
