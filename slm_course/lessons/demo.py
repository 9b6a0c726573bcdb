"""The small trained model the lessons share, trained once and then reused from the cache."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from slm_course import checkpoint
from slm_course.model import GPT
from slm_course.presets import preset
from slm_course.runtime import cache_dir
from slm_course.runtime import profile as current_profile
from slm_course.sample import generate_text
from slm_course.trainer import RunMismatchError, check_same_run, train_model


def demo_run(
    profile: str | None = None, retrain: bool = False, callback: Callable[[dict[str, Any]], None] | None = None,
    model: GPT | None = None,
) -> Path:
    """The checkpoint the lessons share, trained on first use and reused after that.

    Profile ``quick`` (the default off-GPU) trains the ``lesson`` preset, about a minute on two CPU
    cores; ``full`` trains the ``seed`` preset (bf16 autocast on a recent GPU). It lives in
    ``cache_dir()/runs/demo-<profile>``, so no lesson depends on another having been run: lesson 06
    trains it (``retrain=True``, with its live ``callback``), lessons 03 and 07 reuse it or train
    it themselves. A run that was interrupted is resumed; one made with another preset or another
    ``SLM_TINYSTORIES`` data source is trained again. Prints which of these happened.
    ``model``, a fresh ``GPT`` of the preset's config, is the instance to train (lesson 06 keeps a
    handle on it to sample from it as it learns, see :class:`StoryAtEachEval`).
    """
    profile = profile or current_profile()
    model_config, train_config = preset("lesson" if profile == "quick" else "seed")
    run_dir = demo_run_dir(profile)
    # Recording the data source in the config makes a run on other data a mismatch, not a reuse.
    data_source = train_config.data_source or os.environ.get("SLM_TINYSTORIES")
    train_config = train_config.replace(out_dir=str(run_dir), data_source=data_source)
    with _exclusive(run_dir.with_name(run_dir.name + ".lock")):  # two notebooks at once train it once
        if retrain:
            shutil.rmtree(run_dir, ignore_errors=True)
        if checkpoint.is_complete(run_dir):
            try:
                check_same_run(run_dir, checkpoint.read_run_config(run_dir),
                               {"model": model_config.to_dict(), "train": train_config.to_dict()})
                print(f"demo_run: reusing the finished demo model in {run_dir}")
                return run_dir
            except RunMismatchError:
                shutil.rmtree(run_dir)
        print(f"demo_run: training the demo model ({profile} profile) into {run_dir}")
        try:
            return train_model(model_config, train_config, resume=True, callback=callback, model=model)
        except RunMismatchError:
            shutil.rmtree(run_dir)
            return train_model(model_config, train_config, callback=callback, model=model)


def demo_run_dir(profile: str | None = None) -> Path:
    """Where :func:`demo_run` keeps the demo model of ``profile`` (default: the current one)."""
    return cache_dir() / "runs" / f"demo-{profile or current_profile()}"


class StoryAtEachEval:
    """A training callback that prints a short story from the model being trained at every
    evaluation, so a learner watches babble turn into sentences as the loss falls.

    ``model`` is the instance the run trains (``train_model(..., model=model)``); the run's
    tokenizer is read from ``run_dir`` once the run has written it. Every story starts from the
    same prompt with the same seed, so they differ only because the model changed. Sampling draws
    from its own generator, never torch's global one, so the run's dropout and batches are exactly
    what they would be without this callback.

    Example: ``demo_run(model=model, callback=StoryAtEachEval(model, run_dir))`` prints
    ``step 0 (3.00 bits/byte): Once upon a time kx!v ...`` then ever better stories
    """

    def __init__(self, model: GPT, run_dir: str | Path, prompt: str = "Once upon a time",
                 max_new_tokens: int = 40, temperature: float = 0.8, top_k: int = 40) -> None:
        self.model, self.run_dir, self.prompt = model, Path(run_dir), prompt
        self.max_new_tokens, self.temperature, self.top_k = max_new_tokens, temperature, top_k
        self.stories: list[tuple[int, str]] = []
        self._encoding: Any = None

    def __call__(self, record: dict[str, Any]) -> None:
        if record.get("kind") != "eval":
            return
        if self._encoding is None:
            self._encoding = checkpoint.run_encoding(self.run_dir)
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(0)
        story = generate_text(self.model, self._encoding, self.prompt, self.max_new_tokens, self.temperature,
                              top_k=self.top_k, generator=generator)
        self.stories.append((record["step"], story))
        print(f"step {record['step']:>4} ({record['val_bpb']:.2f} bits/byte): {' '.join(story.split())}")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (where the OS offers flock; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
