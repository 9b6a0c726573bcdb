"""Sampling speed: the KV cache against recomputing the context, batch 1, fp32 on the CPU; and how
close the cached step gets to the memory roofline.

Two workloads from an 8-token prompt, greedy so that both paths must produce the same tokens:
fill the context window (block_size - 8 new tokens: 120 at the seed's block 128), where the cache
turns each step from a pass over the whole context into one position's work; and 256 new tokens,
which run past the window of a block-128 model: from then on every position shifts at each step,
so an exact cache has nothing to reuse and both paths recompute the window (see
``GPT.next_token_logits``). The no-cache path is the honest one: it too sends only the last
position through the lm_head.

At batch 1 a cached step is bound by memory bandwidth: it reads every weight once (and the cached
keys and values of every layer) to process one token, and does only 2 FLOPs per weight read. The
*roofline* is that many bytes divided by the bandwidth this machine streams memory at, measured in
the same run: no implementation of the same arithmetic on the same weights can beat it. The seed
model's tied lm_head (50,257 x 384 floats, 77 MB) is most of those bytes, so the last table times
other ways of computing that one matrix-vector product.

    python bench/sampling.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import markdown_table, write_section  # noqa: E402
from slm_course.config import GPTConfig  # noqa: E402
from slm_course.model import GPT  # noqa: E402
from slm_course.presets import preset  # noqa: E402
from slm_course.runtime import cpu_bf16_features  # noqa: E402
from slm_course.sample import generate  # noqa: E402

PROMPT_TOKENS = 8
PAST_WINDOW_TOKENS = 256
BYTES_PER_FLOAT = 4
DRAM_TEST_BYTES = 1 << 30  # 1 GiB: larger than any cache, so it streams from memory


def configs() -> dict[str, GPTConfig]:
    """The model of the `cpu-quick` training preset, and the seed model."""
    quick = preset("cpu-quick")[0]
    name = f"cpu-quick (L{quick.n_layer}/H{quick.n_head}/E{quick.n_embd}, vocab {quick.vocab_size}, block {quick.block_size})"
    return {name: quick, "seed (L6/H6/E384, vocab 50257, block 128)": GPTConfig.seed()}


def best_times(model: GPT, prompt: torch.Tensor, new_tokens: int, repeats: int) -> tuple[float, float, bool]:
    """Best wall times of greedy generation without and with the cache, and whether both gave the
    same tokens. The two paths alternate, so that a change in the machine's load hits both."""
    best = {False: float("inf"), True: float("inf")}
    outputs = {}
    for _ in range(repeats):
        for use_cache in best:
            start = time.perf_counter()
            outputs[use_cache] = generate(model, prompt, new_tokens, temperature=0, use_cache=use_cache)
            best[use_cache] = min(best[use_cache], time.perf_counter() - start)
    return best[False], best[True], torch.equal(outputs[False], outputs[True])


def best_seconds(fn: Callable[[], object], repeats: int, inner: int = 1) -> float:
    """The fastest of ``repeats`` timings of ``inner`` calls of ``fn``, per call (after one warm-up
    call): other programs on the machine only ever add time."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def read_bandwidth(nbytes: int, repeats: int = 5) -> float:
    """Bytes per second at which ``torch.sum`` reads an fp32 tensor of ``nbytes`` (best of ``repeats``).

    A sum reads each element once and writes almost nothing, like a matrix-vector product with a
    weight matrix much larger than its vector. Below the cache sizes it measures the cache's bandwidth,
    above them the memory's.
    """
    x = torch.rand(nbytes // BYTES_PER_FLOAT)
    inner = max(1, (256 << 20) // nbytes)  # small tensors: time many sums, so timer overhead vanishes
    return nbytes / best_seconds(lambda: x.sum(), repeats, inner)


def bytes_per_token(model: GPT, cached_positions: float) -> tuple[int, float]:
    """Bytes one cached decoding step must read: (the weights, the KV cache with ``cached_positions``).

    Every weight is read once, except the embedding tables (tokens, and positions unless the model
    uses RoPE), of which a step reads one row each; the tied lm_head reads the token table in full.
    Each layer reads the keys and values of every cached position, plus its own.
    """
    cfg = model.config
    tables = 2 if "wpe" in model.transformer else 1
    weights = model.num_params(non_embedding=True) + cfg.vocab_size * cfg.n_embd + tables * cfg.n_embd
    kv = 2 * cfg.n_layer * (cached_positions + 1) * cfg.n_embd
    return weights * BYTES_PER_FLOAT, kv * BYTES_PER_FLOAT


def head_variants(model: GPT) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]]:
    """Ways to compute the lm_head's logits for one position: name -> (function of x (1, n_embd), the
    weights it reads). The first is what the model does."""
    weight = model.lm_head.weight.detach()
    transposed = weight.t().contiguous()  # (n_embd, vocab): the same numbers, stored column by column
    variants = {
        "F.linear (the model: x @ W.T)": (lambda x: F.linear(x, weight), weight),
        "torch.mv(W, x)": (lambda x: torch.mv(weight, x[0])[None], weight),
        "x @ W.T stored contiguous": (lambda x: x @ transposed, transposed),
    }
    if cpu_bf16_features():  # without native bf16 dot products, bf16 is emulated and slow
        half = weight.to(torch.bfloat16)
        variants["bf16 weights, F.linear (not exact)"] = (lambda x: F.linear(x.to(torch.bfloat16), half).float(), half)
    return variants


@torch.no_grad()
def head_table(model: GPT, repeats: int) -> tuple[list[list[object]], float]:
    """Time each lm_head variant (best of ``repeats`` bursts of 20 calls) and compare its logits with
    the model's; also return the seconds of the model's own way (the first variant)."""
    x = torch.randn(1, model.config.n_embd, generator=torch.Generator().manual_seed(0))
    reference = F.linear(x, model.lm_head.weight)
    rows, model_seconds = [], None
    for name, (fn, weights) in head_variants(model).items():
        seconds = best_seconds(lambda: fn(x), repeats, inner=20)
        model_seconds = model_seconds or seconds
        logits = fn(x)
        diff = (logits - reference).abs().max().item()
        exact = "bit-identical" if torch.equal(logits, reference) else f"max |Δ| {diff:.1e}"
        rows.append([name, f"{seconds * 1e3:.3f} ms",
                     f"{weights.numel() * weights.element_size() / seconds / 1e9:.1f}", exact])
    return rows, model_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the best counts)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    dram = read_bandwidth(DRAM_TEST_BYTES)
    print(f"read bandwidth, 1 GiB tensor: {dram / 1e9:.1f} GB/s", flush=True)
    rows, roofline_rows, head_rows = [], [], {}
    for name, cfg in configs().items():
        torch.manual_seed(0)
        model = GPT(cfg).eval()
        prompt = torch.randint(0, cfg.vocab_size, (1, PROMPT_TOKENS))
        generate(model, prompt, 8, temperature=0)  # warm-up: first-call allocations
        workloads = {"fill the window": cfg.block_size - PROMPT_TOKENS, "past the window": PAST_WINDOW_TOKENS}
        for workload, new_tokens in workloads.items():
            recompute, cached, same = best_times(model, prompt, new_tokens, args.repeats)
            rows.append([name, workload, new_tokens, f"{new_tokens / recompute:,.0f}", f"{new_tokens / cached:,.0f}",
                         f"{recompute / cached:.1f}×", "yes" if same else "**NO**"])
            print(rows[-1], flush=True)
            if workload == "fill the window":
                fill_cached = cached
        # the roofline of the fill-the-window run: on average a step has (prompt + block) / 2 positions cached
        weights, kv = bytes_per_token(model, (PROMPT_TOKENS + cfg.block_size) / 2)
        hot = read_bandwidth(int(weights + kv))  # the same number of bytes, streamed again and again
        per_token = fill_cached / (cfg.block_size - PROMPT_TOKENS)
        roof_dram, roof_hot = (weights + kv) / dram, (weights + kv) / hot
        head_rows[name], head_seconds = head_table(model, args.repeats)
        for row in head_rows[name]:
            print(row, flush=True)
        roofline_rows.append([name, f"{weights / 1e6:.1f} MB + {kv / 1e6:.2f} MB", f"{per_token * 1e3:.2f} ms",
                              f"{head_seconds / per_token:.1%}", f"{roof_dram * 1e3:.2f} ms",
                              f"**{roof_dram / per_token:.0%}**", f"{hot / 1e9:.0f} GB/s", f"{roof_hot * 1e3:.2f} ms",
                              f"{roof_hot / per_token:.0%}"])
        print(roofline_rows[-1], flush=True)
    load_after = os.getloadavg()[0]
    table = markdown_table(["model", "workload", "new tokens", "no cache (tokens/s)", "KV cache (tokens/s)",
                            "speed-up", "same tokens"], rows)
    roofline = markdown_table(
        ["model", "bytes read per cached step (weights + KV)", "cached step (measured)", "lm_head's share (hot)",
         "roofline at memory bandwidth",
         "fraction of the roofline", "read bandwidth at that size (cache)", "roofline at that bandwidth",
         "fraction"], roofline_rows)
    heads = "\n\n".join(
        f"{name}:\n\n" + markdown_table(["lm_head for one position", "time (best)", "GB/s of weights read", "logits vs the model's"],
                                        head_rows[name])
        for name in head_rows)
    write_section(
        "sampling",
        "## Sampling: KV cache vs recompute (CPU, fp32, batch 1)\n\n"
        f"Greedy generation from an {PROMPT_TOKENS}-token prompt, randomly initialised weights (speed "
        f"does not depend on them), best of {args.repeats} runs; tokens/s counts new tokens, prompt "
        "processing included. *Fill the window* stops when prompt + new tokens = block_size. *Past the "
        f"window* generates {PAST_WINDOW_TOKENS} tokens: beyond block_size the learned absolute positions "
        "of every cached token change at each step, so the exact cache recomputes the window like the "
        "no-cache path and its advantage shrinks to that of the steps inside the window. "
        f"1-min load average {load_before:.1f} at the start, {load_after:.1f} at the end (the machine is "
        "shared; best-of timings count).\n\n" + table
        + "\n\n### The memory roofline of a cached step\n\n"
        "A cached step reads every weight once (the lm_head's full vocab × n_embd matrix, one row of "
        "each embedding table) and each layer's cached keys and values, here averaged over the "
        "fill-the-window run. Divided by the rate this machine reads memory — `torch.sum` over a 1 GiB "
        f"fp32 tensor, **{dram / 1e9:.1f} GB/s** in this run — that is the fastest any step could be. "
        "The measured step is the fill-the-window run's time per new token. A model whose bytes fit "
        "in the caches can beat the memory roofline, so the last columns repeat it at the bandwidth "
        "measured for a tensor of the model's own size, read over and over (what the weights of a "
        "small model see).\n\n" + roofline
        + "\n\n### The lm_head matrix-vector product\n\n"
        "One position's logits, every way tried; the weights are hot in the cache (each variant is called "
        "20 times in a row), so GB/s can exceed the memory bandwidth.\n\n" + heads,
    )


if __name__ == "__main__":
    main()
