"""Where the course runs: which device, which profile (quick or full), where artefacts are cached.

Lessons and scripts call these instead of hard-coding ``"cuda"`` so that the same code runs on a
CUDA GPU, on Apple silicon (MPS) and on a plain CPU.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

PROFILES = ("quick", "full")
_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent


def pick_device(preferred: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    ``preferred`` (or the ``SLM_DEVICE`` environment variable) overrides the choice, e.g. ``"cpu"``
    to keep a laptop's GPU free. Asking for a device that is not there is an error, not a silent
    fallback, because a learner who asked for the GPU should know they are not getting it.
    """
    choice = preferred or os.environ.get("SLM_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was requested but CUDA is not available; use 'cpu'")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {choice!r} was requested but MPS is not available; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def profile() -> str:
    """The lesson profile: ``SLM_PROFILE`` if set, else ``full`` on CUDA and ``quick`` elsewhere.

    ``quick`` keeps every notebook under about 90 s on two CPU cores (and is what CI runs);
    ``full`` trains the real thing.
    """
    value = os.environ.get("SLM_PROFILE")
    if value is None:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in PROFILES:
        raise ValueError(f"SLM_PROFILE={value!r} is not a profile; use one of {PROFILES}")
    return value


def cache_dir() -> Path:
    """Directory for shared artefacts (tokenizers, memmaps, checkpoints), created on demand.

    ``SLM_CACHE`` overrides it; otherwise ``.slm_cache/`` in the repository (git-ignored), or
    ``~/.cache/slm_course`` when the package is installed outside a checkout.
    """
    if os.environ.get("SLM_CACHE"):
        path = Path(os.environ["SLM_CACHE"]).expanduser()
    elif (_REPO_DIR / "pyproject.toml").exists():
        path = _REPO_DIR / ".slm_cache"
    else:
        path = Path.home() / ".cache" / "slm_course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path | None:
    """The real TinyStories text that developer machines and CI keep beside the repo, if present.

    Tests and benchmarks use it when it exists and skip (with this path in the reason) when not.
    It is never copied into the repository.
    """
    path = _REPO_DIR.parent / "shared" / "data"
    return path if (path / "TinyStories-train.subset.txt").exists() else None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so that a lesson's numbers are repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run a model in eval mode (no dropout) and restore its previous mode afterwards: a learner
    may sample or open a widget between two training runs."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# --- precision ------------------------------------------------------------------------------------

AMPERE = (8, 0)  # NVIDIA's first compute capability with bf16 and TF32 tensor cores (A100)
# /proc/cpuinfo flags of CPU instructions that compute in bf16 natively, and their usual names.
CPU_BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX-512-BF16", "bf16": "Arm BF16"}
_PROBE_SIZE = 256  # n of the n x n matmuls the CPU check times: one slow bf16 call stays ~30 ms
_PROBE_SECONDS = 0.01  # per burst of calls of one dtype (at least one call)
_PROBE_ROUNDS = 4  # bursts per dtype, alternating


def resolve_dtype(dtype: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The compute dtype for ``dtype`` ("auto" or a torch dtype name) on ``device``, and a sentence
    saying why, for the training log.

    ``auto`` picks bf16 autocast only where the hardware computes bf16 natively (an NVIDIA GPU of
    compute capability 8.0 or newer): torch *emulates* bf16 on a T4 or V100, which runs but slowly,
    so there fp16 autocast + GradScaler is the fast choice. The CPU stays fp32 (full precision, and
    what the lessons' numbers were made with); its sentence names the CPU's bf16 instructions and the
    measured bf16/fp32 matmul speed, so a learner with AMX knows ``dtype="bfloat16"`` may pay off.
    MPS stays fp32. The caller enables a GradScaler exactly when the dtype is float16.

    ``fastest`` is ``auto`` for a run that is judged by the clock (the ``cpu-quick`` preset): on a
    CPU with native bf16 instructions whose measured bf16 matmuls beat fp32 by
    ``FASTEST_MIN_SPEEDUP``, it takes bf16 autocast; everywhere else it is ``auto`` exactly, so a
    CPU without bf16 (where bf16 is emulated, many times slower) keeps fp32.

    Example: ``resolve_dtype("auto", torch.device("cpu"))[0]`` is ``torch.float32``.
    """
    if dtype == "fastest" and device.type == "cpu":
        return _fastest_on_cpu()
    if dtype not in ("auto", "fastest"):
        return getattr(torch, dtype), _configured_sentence(dtype, device)
    if device.type == "cuda":
        gpu = _gpu_description(device)
        if native_bf16(device):
            return torch.bfloat16, (
                f"bfloat16 autocast: the {gpu} has native bf16 tensor cores, and bf16 keeps fp32's range, "
                f"so no loss scaling is needed"
            )
        return torch.float16, (
            f"float16 autocast + GradScaler: the {gpu} has no native bf16 (torch would emulate it, slowly); "
            f"the scaler keeps fp16's small gradients from underflowing to zero"
        )
    if device.type == "mps":
        return torch.float32, "float32 on MPS: autocast there is patchy and rarely faster for small models"
    return torch.float32, f"float32 on CPU (full precision; the lessons' numbers were made so): {_cpu_bf16_clause()}"


# How much faster bf16 matmuls must measure than fp32 before dtype="fastest" trains a CPU run in
# bf16: a training step gains less than its matmuls (softmax, norms and AdamW stay fp32), and on
# an AVX-512-BF16 CPU whose matmuls measured 3.4x faster the whole step ran 1.6x faster.
FASTEST_MIN_SPEEDUP = 1.5


def _fastest_on_cpu() -> tuple[torch.dtype, str]:
    """dtype="fastest" on the CPU: bf16 autocast where it is native and measures fast, else fp32."""
    features, speedup = cpu_bf16_features(), cpu_bf16_speedup()
    if features and speedup >= FASTEST_MIN_SPEEDUP:
        return torch.bfloat16, (
            f"bfloat16 autocast on CPU (dtype='fastest'): this CPU has {' and '.join(features)} and its "
            f"bf16 matmuls ran {speedup:.1f}x faster than fp32 in a quick one-thread check; weights, optimizer "
            f"and loss stay fp32")
    return torch.float32, f"float32 on CPU (dtype='fastest' found bf16 no faster here): {_cpu_bf16_clause()}"


def native_bf16(device: torch.device) -> bool:
    """True if ``device`` computes bf16 in hardware rather than by emulation.

    ``torch.cuda.is_bf16_supported()`` also counts emulated bf16 by default, so it says yes on a T4;
    its ``including_emulation=False`` (torch 2.4+) is asked where it exists, else compute
    capability >= 8.0. On the CPU it means an AMX-BF16, AVX-512-BF16 or Arm BF16 flag.
    """
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported
        if "including_emulation" in inspect.signature(supported).parameters:
            return bool(supported(including_emulation=False))
        return torch.cuda.get_device_capability(device) >= AMPERE
    if device.type == "cpu":
        return bool(cpu_bf16_features())
    return False


def configure_matmul_precision(device: torch.device, dtype: torch.dtype) -> str:
    """Let float32 matmuls use TF32 tensor cores where that is what makes fp32 training fast, and
    return a clause for the training log ("" where there is nothing to say).

    On an NVIDIA GPU of compute capability 8.0 or newer, a float32 run calls
    ``torch.set_float32_matmul_precision("high")``: matmul inputs are rounded to TF32's 10-bit
    mantissa (fp32's range and accumulation are kept), several times faster than full fp32 and
    plenty for training. That setting is process-wide, as torch's is; bf16/fp16 autocast runs and
    other devices are left as they are. The trainer calls this right after :func:`resolve_dtype`.

    Example: ``configure_matmul_precision(torch.device("cpu"), torch.float32)`` is ``""``.
    """
    if device.type != "cuda" or dtype != torch.float32 or torch.version.hip:
        return ""  # AMD's TF32 (MI300 only) goes by other rules: claim nothing there
    if torch.cuda.get_device_capability(device) < AMPERE:
        return f"float32 matmuls at full precision (TF32 needs compute capability 8.0; the {_gpu_description(device)})"
    torch.set_float32_matmul_precision("high")
    return "TF32 tensor-core matmuls for float32 (torch.set_float32_matmul_precision('high'): 10-bit mantissas, fp32 range)"


def _gpu_description(device: torch.device) -> str:
    """E.g. ``Tesla T4 (compute capability 7.5)``."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"


def _configured_sentence(dtype: str, device: torch.device) -> str:
    """``<dtype> as configured``, plus a warning where that dtype is emulated on ``device``."""
    if dtype == "float16":
        return "float16 as configured, with a GradScaler against gradient underflow"
    if dtype != "bfloat16" or native_bf16(device) or device.type == "mps":
        return f"{dtype} as configured"
    if device.type == "cuda":
        return (f"bfloat16 as configured, but the {_gpu_description(device)} has no native bf16: torch emulates "
                f"it, slowly (dtype='auto' picks float16 + GradScaler here)")
    return f"bfloat16 as configured, but {_cpu_bf16_clause()}"


@functools.lru_cache(maxsize=2)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in ``cpuinfo`` (the ``flags`` line on x86,
    ``Features`` on Arm); empty where there is no such file (macOS, Windows). Cached.

    Example: ``"avx2" in cpu_flags()`` on most x86 machines of the last ten years.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_bf16_features() -> list[str]:
    """Names of this CPU's native bf16 instructions, e.g. ``["AMX-BF16", "AVX-512-BF16"]``."""
    flags = cpu_flags()
    return [name for flag, name in CPU_BF16_FLAGS.items() if flag in flags]


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """How many times faster a bf16 matmul runs than an fp32 one on this CPU (below 1: slower).

    Measured, not assumed: with AMX a bf16 matmul is several times faster than fp32, without any
    bf16 instructions it can be tens of times slower. 256 x 256 matmuls on one thread (with
    several, a thread that another process delays stalls every fp32 call at its barrier, and
    the ratio swings tenfold on a shared machine), in alternating bursts whose best rate per
    dtype counts. About 0.1 s, once per process.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _bf16_over_fp32_rate()
    finally:
        torch.set_num_threads(threads)


def _bf16_over_fp32_rate() -> float:
    operands = {}
    for dtype in (torch.float32, torch.bfloat16):
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(_PROBE_SIZE, _PROBE_SIZE, generator=generator).to(dtype) for _ in range(2))
        a @ b  # warm-up: the first call may generate kernels (oneDNN JIT) or fault in pages
        operands[dtype] = (a, b)
    best = dict.fromkeys(operands, 0.0)
    for _ in range(_PROBE_ROUNDS):
        for dtype, (a, b) in operands.items():
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < _PROBE_SECONDS:
                a @ b
                calls += 1
            best[dtype] = max(best[dtype], calls / elapsed)
    return best[torch.bfloat16] / best[torch.float32]


def _cpu_bf16_clause() -> str:
    """What this CPU's bf16 instructions and measured bf16 matmul speed say about dtype='bfloat16'."""
    speedup = cpu_bf16_speedup()
    measured = (f"{speedup:.1f}x faster than" if speedup >= 1 else f"{1 / speedup:.1f}x slower than")
    measured = f"bf16 matmuls ran {measured} fp32 in a quick one-thread check here"
    features = cpu_bf16_features()
    if features:
        advice = "dtype='bfloat16' may train faster" if speedup > 1.2 else "bf16 would not be faster"
        return f"this CPU has {' and '.join(features)}; {measured}, so {advice}"
    kernels = torch.backends.cpu.get_cpu_capability()
    seen = "its feature flags could not be read" if not cpu_flags() else "it has no AVX-512-BF16, AMX or Arm BF16"
    return f"{seen} (torch's CPU kernels: {kernels}), and {measured}"
