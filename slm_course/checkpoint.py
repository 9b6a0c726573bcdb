"""Checkpoints that a crash cannot corrupt and that cannot run code when loaded.

A run directory holds ``config.json`` (what was trained, on what), ``model.safetensors`` (the
weights), ``state.pt`` (optimizer, scheduler, scaler, RNG states, step) and ``metrics.jsonl``.

Two rules make checkpoints safe:

* **Every write is atomic.** Each file is written to a temporary name, flushed to disk (fsync) and
  renamed over the old one; a rename either happens or it doesn't, so a reader sees the old file
  or the new one, never half of one.
* **Weights and state are committed as a pair.** Both are first written in full as ``*.next``
  files; only then is the weights file renamed into place, then the state file. A kill between
  those two renames leaves a complete ``state.pt.next`` and no ``model.safetensors.next``, which
  :func:`recover` recognises and rolls forward. Any other leftover ``*.next`` file is an unfinished
  save, which :func:`recover` deletes, keeping the last good pair.

Loading never unpickles arbitrary objects: weights come from safetensors, and ``state.pt`` is read
with ``torch.load(weights_only=True)``, which only accepts tensors, numbers, strings and containers.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import tiktoken
import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from slm_course.config import GPTConfig
from slm_course.model import GPT
from slm_course.runtime import pick_device
from slm_course.tokenizer import gpt2_encoding, load_encoding
from slm_course.fileio import atomic_write, fsync_dir, read_json, remove_temporaries

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
METRICS = "metrics.jsonl"
PENDING = ".next"  # suffix of a file written in full but not yet committed


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def weights_bytes(model: nn.Module, step: int) -> bytes:
    """The model's weights as safetensors bytes, each tied tensor stored once.

    safetensors refuses two names for one storage, and the GPT's token embedding *is* its
    lm_head weight, so only the first name of each shared tensor is kept.
    """
    state_dict = unwrap(model).state_dict()
    tied = _tied_names(state_dict)
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items() if name not in tied}
    return save_safetensors(tensors, metadata={"step": str(step)})


def save(run_dir: Path, model: nn.Module, state: dict[str, Any]) -> None:
    """Commit the weights and the training state (which must hold ``step``) as one """
    run_dir = Path(run_dir)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # Order matters for recover(): weights.next complete before state.next exists.
    atomic_write(run_dir / (WEIGHTS + PENDING), weights_bytes(model, state["step"]))
    atomic_write(run_dir / (STATE + PENDING), buffer.getvalue())
    os.replace(run_dir / (WEIGHTS + PENDING), run_dir / WEIGHTS)
    os.replace(run_dir / (STATE + PENDING), run_dir / STATE)
    fsync_dir(run_dir)


def recover(run_dir: Path) -> None:
    """Finish or discard a save that was killed half-way (see the module docstring)."""
    run_dir = Path(run_dir)
    weights_next, state_next = run_dir / (WEIGHTS + PENDING), run_dir / (STATE + PENDING)
    if state_next.exists() and not weights_next.exists():
        os.replace(state_next, run_dir / STATE)  # killed between the two renames: roll forward
    else:
        weights_next.unlink(missing_ok=True)  # killed while writing: the old pair is intact
        state_next.unlink(missing_ok=True)
    remove_temporaries(run_dir)


def has_checkpoint(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    return (run_dir / WEIGHTS).exists() and (run_dir / STATE).exists()


def load_state(run_dir: Path) -> dict[str, Any]:
    """The training state of the run's checkpoint, read without unpickling arbitrary objects.

    A damaged file is a ValueError naming it: the run can't resume from it, though its weights
    (a separate file) may still sample.
    """
    path = Path(run_dir) / STATE
    if not path.exists():
        raise FileNotFoundError(f"no training state at {path}: the run has not saved a checkpoint yet")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:  # a cut zip can be EINVAL
        raise ValueError(
            f"{path} is damaged ({_gist(error)}): it is cut short or is not a state file saved by "
            f"slm_course, so the run cannot resume from it. Its weights ({WEIGHTS}) may still load for "
            f"sampling; to train on, retrain: delete {Path(run_dir)} (or choose another out_dir) and run the "
            f"training command again"
        ) from None


def load_weights(run_dir: Path, model: nn.Module, step: int | None = None) -> int | None:
    """Load ``model.safetensors`` into ``model`` and return the step it was saved at.

    With ``step``, first check that the weights belong to that step (the state file's).
    """
    path = Path(run_dir) / WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}: the run has not saved a checkpoint yet")
    data = path.read_bytes()
    try:
        tensors = load_safetensors(data)
    except SafetensorError as error:
        raise ValueError(
            f"{path} is damaged ({error}): it is cut short or corrupt (a copy that did not finish, a full "
            f"disk), so these weights cannot be loaded. A run keeps only its latest checkpoint: retrain, "
            f"after deleting {Path(run_dir)} (or with another out_dir)"
        ) from None
    saved_step = _safetensors_metadata(data).get("step")
    if step is not None and saved_step is not None and int(saved_step) != step:
        raise ValueError(
            f"{path} holds the weights of step {saved_step} but {Path(run_dir) / STATE} is at step {step}; "
            f"the checkpoint was written by something other than slm_course.save"
        )
    target = unwrap(model)
    expected = target.state_dict()
    tied = _tied_names(expected)
    missing = [name for name in expected if name not in tensors and name not in tied]
    unexpected = [name for name in tensors if name not in expected]
    wrong_shape = [f"{name} {tuple(tensors[name].shape)} in the file, {tuple(expected[name].shape)} in the model"
                   for name in expected if name in tensors and tensors[name].shape != expected[name].shape]
    if missing or unexpected or wrong_shape:
        problems = [f"missing {missing}"] * bool(missing) + [f"unexpected {unexpected}"] * bool(unexpected)
        problems += [f"shapes differ: {'; '.join(wrong_shape[:3])}{' ...' if len(wrong_shape) > 3 else ''}"] * bool(wrong_shape)
        raise ValueError(
            f"{path} does not fit the model ({', '.join(problems)}); was it saved from a different model config?"
        )
    target.load_state_dict(tensors, strict=False)
    return None if saved_step is None else int(saved_step)


def _tied_names(state_dict: dict[str, torch.Tensor]) -> set[str]:
    """Names of tensors that share storage with an earlier name (stored once in safetensors)."""
    names, seen = set(), set()
    for name, tensor in state_dict.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            names.add(name)
        seen.add(key)
    return names


def _gist(error: BaseException) -> str:
    """The first sentence of a library's error; the rest is advice about the library's internals.

    Example: ``"PytorchStreamReader failed reading zip archive: failed finding central directory.
    This is an internal miniz error. ..."`` -> ``"PytorchStreamReader failed ... central directory"``
    """
    text = str(error).strip() or type(error).__name__
    return re.split(r"\.(?:\s|$)", text, maxsplit=1)[0]


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    header_len = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + header_len]).get("__metadata__", {})


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of ``metrics.jsonl`` (a torn last line, from a kill mid-append, is skipped)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop records logged after ``step`` (by a run killed after its last checkpoint) before resuming."""
    path = Path(run_dir) / METRICS
    if path.exists():
        kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    with open(Path(run_dir) / METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's record, ``config.json``: what was trained (``model``, ``train``), with which
    ``tokenizer``, on what ``data``. The one reader of that file, so every caller gets the same
    errors for a missing, damaged or foreign one."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(
            f"no run in {Path(run_dir)}: {CONFIG} is missing. Train one with "
            f"`python -m slm_course.train --preset cpu-quick` or slm_course.lessons.demo.demo_run()"
        )
    record = read_json(path, "run config")
    missing = [key for key in ("model", "tokenizer") if key not in record]
    if missing:
        raise ValueError(f"{path} lacks the section(s) {missing}; it was not written by slm_course.train")
    return record


def is_complete(run_dir: str | Path) -> bool:
    """True if ``run_dir`` holds a checkpoint of its final step."""
    run_dir = Path(run_dir)
    if not has_checkpoint(run_dir) or not (run_dir / CONFIG).exists():
        return False
    return int(load_state(run_dir)["step"]) >= read_run_config(run_dir)["train"]["max_iters"]


def run_encoding(run_dir: str | Path, record: dict[str, Any] | None = None) -> tiktoken.Encoding:
    """The tokenizer a run trains with: its own BPE file (written before the first update, so a
    callback can decode while the run is going) or GPT-2's."""
    run_dir = Path(run_dir)
    tokenizer = (record or read_run_config(run_dir))["tokenizer"]
    if tokenizer.get("file"):
        tokenizer_path = run_dir / tokenizer["file"]
        if not tokenizer_path.exists():
            raise FileNotFoundError(f"the run's tokenizer file {tokenizer_path} is missing")
        return load_encoding(str(tokenizer_path))
    if tokenizer.get("spec") == "gpt2":
        return gpt2_encoding()
    raise ValueError(f"{run_dir / CONFIG}: tokenizer {tokenizer!r} names no file in the run and is not 'gpt2'")


def load_run(run_dir: str | Path, device: str | torch.device | None = None) -> tuple[GPT, tiktoken.Encoding, dict[str, Any]]:
    """The trained model (in eval mode, on ``device`` or the best available), its tokenizer, and
    the run's record (``config.json`` plus ``step``, the update the weights come from)."""
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG
    record = read_run_config(run_dir)
    model = GPT(GPTConfig.from_dict(record["model"]))
    record["step"] = load_weights(run_dir, model)
    encoding = run_encoding(run_dir, record)
    if encoding.n_vocab > model.config.vocab_size:
        raise ValueError(
            f"{config_path}: the tokenizer has {encoding.n_vocab} tokens but model.vocab_size is "
            f"{model.config.vocab_size}; the run directory mixes files from different runs"
        )
    return model.to(pick_device(str(device) if device is not None else None)).eval(), encoding, record
