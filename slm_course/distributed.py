"""One training process, or one rank of a ``torchrun`` launch (DistributedDataParallel).

The trainer talks to the other ranks only through :class:`Process`: ``barrier``, ``mean`` and
``any`` do nothing in a single process, so the same loop runs with and without DDP. The random
streams of every rank are gathered into each checkpoint so that a resumed run draws the same
batches and dropout masks as an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from slm_course.config import TrainConfig
from slm_course.runtime import pick_device


@dataclass
class Process:
    """This process's place in a (possibly one-process) run; a context manager that ends the
    process group on exit if this process started it."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # we started the process group, so we must end it

    @property
    def is_main(self) -> bool:
        """Rank 0, the one that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.world_size > 1:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (a copy; ``value`` itself is left as it was)."""
        if self.world_size > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world_size
        return value

    def any(self, flag: bool) -> bool:
        """True if ``flag`` is true on any rank (so all of them take the same branch)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def start_process(config: TrainConfig) -> Process:
    """One process, or one rank of a ``torchrun`` launch (NCCL on CUDA, gloo on CPU)."""
    device = pick_device(config.device)
    if "RANK" not in os.environ:
        return Process(device)
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
    return Process(device, rank, world_size, owns_group)


def _rng_states(batch_rng: torch.Generator) -> dict[str, torch.Tensor]:
    """The random states a resumed run needs to continue exactly: dropout (the global torch
    generators) and batch sampling. Plain byte tensors, so ``weights_only`` loading accepts them."""
    states = {"torch": torch.get_rng_state(), "batches": batch_rng.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def gather_rng_states(process: Process, batch_rng: torch.Generator) -> list[dict[str, torch.Tensor]]:
    """Every rank's random states, in rank order (each rank draws its own batches and dropout).

    A collective call: every rank must make it, even though only rank 0 saves the result.
    """
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


def set_rng_states(saved: list[dict[str, torch.Tensor]], batch_rng: torch.Generator, rank: int, step: int) -> bool:
    """Restore this rank's random states; False if the checkpoint has none for it (more ranks now).

    A rank without saved states reseeds its batch stream from the step, so that it at least
    does not repeat the batches it drew at the start of the run.
    """
    if rank >= len(saved):
        batch_rng.manual_seed(hash((batch_rng.initial_seed(), step)) % 2**31)
        return False
    states = saved[rank]
    torch.set_rng_state(states["torch"])
    batch_rng.set_state(states["batches"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])
    return True
