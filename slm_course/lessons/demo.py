"""The small trained model the lessons share, trained once and then reused from the cache."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slm_course import checkpoint
from slm_course.presets import preset
from slm_course.runtime import cache_dir
from slm_course.runtime import profile as current_profile
from slm_course.trainer import RunMismatchError, check_same_run, train_model


def demo_run(
    profile: str | None = None, retrain: bool = False, callback: Callable[[dict[str, Any]], None] | None = None
) -> Path:
    """The checkpoint the lessons share, trained on first use and reused after that.

    Profile ``quick`` (the default off-GPU) trains the ``lesson`` preset, about a minute on two CPU
    cores; ``full`` trains the ``seed`` preset (bf16 autocast on a recent GPU). It lives in
    ``cache_dir()/runs/demo-<profile>``, so no lesson depends on another having been run: lesson 06
    trains it (``retrain=True``, with its live ``callback``), lessons 03 and 07 reuse it or train
    it themselves. A run that was interrupted is resumed; one made with another preset or another
    ``SLM_TINYSTORIES`` data source is trained again. Prints which of these happened.
    """
    profile = profile or current_profile()
    model_config, train_config = preset("lesson" if profile == "quick" else "seed")
    run_dir = cache_dir() / "runs" / f"demo-{profile}"
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
            return train_model(model_config, train_config, resume=True, callback=callback)
        except RunMismatchError:
            shutil.rmtree(run_dir)
            return train_model(model_config, train_config, callback=callback)


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
