"""Where the course runs: which device, which profile (quick or full), where artefacts are cached.

Lessons and scripts call these instead of hard-coding ``"cuda"`` so that the same code runs on a
CUDA GPU, on Apple silicon (MPS) and on a plain CPU.
"""

from __future__ import annotations

import contextlib
import os
import random
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


def resolve_dtype(dtype: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The compute dtype for ``dtype`` on ``device``, and a sentence saying why."""
    if dtype != "auto":
        return getattr(torch, dtype), f"{dtype} as configured"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "bfloat16 autocast: this GPU supports bf16, which keeps fp32's range (no loss scaling)"
        return torch.float16, "float16 autocast + GradScaler: this GPU lacks bf16; the scaler stops small gradients underflowing"
    if device.type == "mps":
        return torch.float32, "float32 on MPS: autocast there is patchy and rarely faster for small models"
    return torch.float32, (
        "float32 on CPU: without AVX-512-BF16/AMX, bf16/fp16 matmuls are ~150x slower than fp32 "
        "(CPUs that have AMX can gain ~20% with dtype='bfloat16'; fp32 is the safe default)"
    )
