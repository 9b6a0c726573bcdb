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


def step_time(cfg: GPTConfig, batch: int, steps: int) -> float:
    """Median seconds per full training step after warm-up."""
    torch.manual_seed(0)
    model = GPT(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size))
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size))
    times = []
    for i in range(steps + 3):
        start = time.perf_counter()
        _, loss = model(x, targets=y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


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
    write_section("train_throughput", "## Training-step throughput (CPU, fp32)\n\n"
                  "Forward + backward + AdamW step, median of the timed steps; MFU against the fp32 "
                  "matmul rate measured in the same run (2048×2048 matmuls).\n\n" + table)


if __name__ == "__main__":
    main()
