"""Training-step throughput and MFU: forward + backward + AdamW step, fp32 on the CPU.

MFU (model FLOPs utilisation) = achieved FLOP/s of the training step (nanoGPT's 6N + 12·L·C·T
FLOPs per token) / this machine's fp32 matmul FLOP/s measured in the same run. It tells how much of
the step is spent in the big matmuls versus everything else (LayerNorm, GELU, softmax, AdamW,
Python overhead).

    python bench/train_throughput.py [--steps 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def training_step(cfg: GPTConfig, batch: int) -> Callable[[], None]:
    """A closure running one full training step of a fresh model on a fixed random batch."""
    torch.manual_seed(0)
    model = GPT(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size))
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size))

    def step() -> None:
        _, loss = model(x, targets=y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def step_time(cfg: GPTConfig, batch: int, steps: int) -> float:
    """Median seconds per full training step after warm-up."""
    step = training_step(cfg, batch)
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


OTHER = "other (copies, adds, fills, AdamW's element-wise updates)"
CATEGORIES = {  # first match wins: a substring of the aten op name -> where the time goes
    "scaled_dot_product": "attention (SDPA fwd+bwd)",
    "softmax": "cross-entropy (log-softmax fwd+bwd)",
    "nll_loss": "cross-entropy (log-softmax fwd+bwd)",
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

    step = training_step(cfg, batch)
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
    parser.add_argument("--steps", type=int, default=10)
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
    first_name, (first_cfg, first_batch) = next(iter(CONFIGS.items()))
    shares = time_breakdown(first_cfg, first_batch)
    breakdown = markdown_table(["where the step's CPU time goes", "share"],
                               [[name, f"{100 * share:.0f}%"] for name, share in shares])
    print(breakdown)
    write_section("train_throughput", "## Training-step throughput (CPU, fp32)\n\n"
                  "Forward + backward + AdamW step, median of the timed steps; MFU against the fp32 "
                  "matmul rate measured in the same run (2048×2048 matmuls).\n\n" + table
                  + f"\n\nProfile of the {first_name} step (torch.profiler, self CPU time):\n\n" + breakdown)


if __name__ == "__main__":
    main()
