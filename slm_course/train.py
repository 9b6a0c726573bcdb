"""The command line for training: a preset, with any of its fields overridden.

    python -m slm_course.train --preset cpu-quick               # about 10 minutes on 2 CPU cores
    python -m slm_course.train --preset cpu-quick --resume      # continue a stopped run exactly
    torchrun --nproc_per_node=4 -m slm_course.train --preset gpu  # DistributedDataParallel

Every field of GPTConfig and TrainConfig is an option (``--lr 3e-4``, ``--n_layer 6``); options
left out keep the preset's value. The loop itself is :func:`slm_course.trainer.train_model`.
Exit status: 0 when the run finished, 2 for a bad option or config value (argparse's usage
error), 1 for an error found while running (data, checkpoint, divergence), 130 after Ctrl-C
(with a checkpoint saved to resume from).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

from slm_course import checkpoint
from slm_course.config import GPTConfig, TrainConfig
from slm_course.presets import PRESETS, preset
from slm_course.trainer import RunMismatchError, TrainingDiverged, train_model


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose "unrecognized argument" error suggests the closest valid option."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            options = [opt for action in self._actions for opt in action.option_strings]
            word = unknown[0].split("=", 1)[0]
            close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else "; see --help for the options"
            self.error(f"unrecognized argument {unknown[0]!r}{hint}")
        return parsed


def _optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """A converter for an ``X | None`` field: the word ``none`` gives None, anything else ``kind(text)``."""

    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = kind.__name__
    return convert


def _add_fields(group: argparse._ArgumentGroup, config_class: type) -> None:
    """One option per dataclass field; defaults are left to the preset (only given ones override)."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind = hints[f.name]
        options: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f.metadata["help"]}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            options.update(nargs=len(typing.get_args(kind)), type=typing.get_args(kind)[0], metavar="X")
        else:
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            options["type"] = _optional(args[0]) if args else kind
            options["metavar"] = f.name.upper()
        group.add_argument(f"--{f.name}", **options)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m slm_course.train``: --preset, --resume and one option per config field."""
    parser = _Parser(
        prog="python -m slm_course.train",
        description="Train a GPT on TinyStories. Start from a preset and override any of its fields, e.g. "
        "--preset cpu-quick --lr 3e-4 (options left out keep the preset's value). Runs under "
        "`torchrun --nproc_per_node=N` for DistributedDataParallel training.",
        allow_abbrev=False,
    )
    parser.add_argument("--preset", default="cpu-quick", choices=list(PRESETS), help="starting configuration")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in out_dir exactly")
    _add_fields(parser.add_argument_group("model (GPTConfig)"), GPTConfig)
    _add_fields(parser.add_argument_group("training (TrainConfig)"), TrainConfig)
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[GPTConfig, TrainConfig]:
    """The preset's configs with every option given on the command line applied."""
    model_config, train_config = preset(args.preset)
    given = vars(args)
    model_changes = {f.name: given[f.name] for f in dataclasses.fields(GPTConfig) if f.name in given}
    train_changes = {f.name: given[f.name] for f in dataclasses.fields(TrainConfig) if f.name in given}
    return model_config.replace(**model_changes), train_config.replace(**train_changes)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m slm_course.train``: returns the exit status (130 after Ctrl-C, like a shell)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model_config, train_config = configs_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    is_main = int(os.environ.get("RANK", "0")) == 0
    command = " ".join(["python -m slm_course.train", *(sys.argv[1:] if argv is None else argv)])
    try:
        run_dir = train_model(model_config, train_config, resume=args.resume)
    except KeyboardInterrupt:
        if is_main:
            resume = command if args.resume else command + " --resume"
            print(f"\nstopped; the checkpoint in {train_config.out_dir} continues with:\n  {resume}", file=sys.stderr)
        return 130
    except (TrainingDiverged, RunMismatchError, FileExistsError, FileNotFoundError, ValueError) as err:
        if is_main:
            print(f"error: {err}", file=sys.stderr)
        return 1
    if is_main:
        print(f"checkpoint: {run_dir / checkpoint.WEIGHTS} (+ {checkpoint.STATE})")
        print(f"metrics:    {run_dir / checkpoint.METRICS}")
        print(f"sample:     python -m slm_course.sample --checkpoint {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
