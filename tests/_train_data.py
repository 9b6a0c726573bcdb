"""A tiny tokenized dataset for the training tests: synthetic stories, a 300-token BPE, two memmaps."""

from __future__ import annotations

from pathlib import Path

import tiktoken

from slm_course.config import GPTConfig, TrainConfig
from slm_course.corpus import load_tinystories
from slm_course.data import prepare
from slm_course.tokenizer import BPETokenizer

VOCAB = 300


def tokenize_synthetic(encoding: tiktoken.Encoding, directory: Path | str, stories: dict[str, int]) -> None:
    """Write ``<split>.bin`` for the first ``stories[split]`` synthetic stories of each split."""
    for split, count in stories.items():
        prepare(load_tinystories(split, source="synthetic", max_stories=count), encoding, directory, split)


def make_tiny_dataset(directory: Path) -> tuple[Path, Path]:
    """Write ``train.bin``/``validation.bin`` and ``tokenizer.bpe`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    train = load_tinystories("train", source="synthetic", max_stories=200)
    tokenizer_path = BPETokenizer.train(list(train), VOCAB).save(directory / "tokenizer.bpe")
    tokenize_synthetic(BPETokenizer.load(tokenizer_path).to_tiktoken(), directory, {"train": 200, "validation": 40})
    return directory, tokenizer_path


def tiny_configs(dataset: tuple[Path, Path], out_dir: Path, **changes) -> tuple[GPTConfig, TrainConfig]:
    """A model and run on ``dataset`` (from make_tiny_dataset) small enough that a dozen updates
    take a second; ``changes`` override fields of either config."""
    data_dir, tokenizer = dataset
    model = GPTConfig(vocab_size=VOCAB, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.1)
    train = TrainConfig(tokenizer=str(tokenizer), data_dir=str(data_dir), batch_size=4, max_iters=12, lr=1e-2,
                        min_lr=1e-3, warmup_iters=3, eval_interval=4, eval_iters=2, log_interval=1, device="cpu",
                        out_dir=str(out_dir), seed=7)
    model_changes = {k: v for k, v in changes.items() if k in model.to_dict()}
    train_changes = {k: v for k, v in changes.items() if k not in model_changes}
    return model.replace(**model_changes), train.replace(**train_changes)
