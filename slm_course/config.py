"""The two configs as data: GPTConfig (the shape of a model) and TrainConfig (how to train it).

Each field carries its help text in its metadata, which is where the command line gets it.
Nothing here imports the rest of the package: every other module may import this one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _help(text: str) -> dict[str, str]:
    """Field metadata holding the help text that ``python -m slm_course.train --help`` prints."""
    return {"help": text}


@dataclass
class GPTConfig:
    """The shape of a GPT. Every field is checked on construction, so a bad size fails here with a
    message naming the field, rather than later as a shape error deep inside torch."""

    # The defaults are GPT-2's vocabulary (50,000 merges + 256 bytes + <|endoftext|>) and the seed's shape.
    vocab_size: int = field(default=50257, metadata=_help(
        "rows of the embedding; at least the tokenizer's number of tokens"))
    block_size: int = field(default=128, metadata=_help("context length: the most tokens the model sees at once"))
    n_layer: int = field(default=6, metadata=_help("transformer blocks"))
    n_head: int = field(default=6, metadata=_help("attention heads per block (must divide n_embd)"))
    n_embd: int = field(default=384, metadata=_help("width of the residual stream"))
    dropout: float = field(default=0.1, metadata=_help("dropout probability while training (0 for short runs)"))
    bias: bool = field(default=True, metadata=_help("biases in the Linear layers and LayerNorms, as in GPT-2"))

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig.n_embd ({self.n_embd}) must be divisible by GPTConfig.n_head "
                f"({self.n_head}) so every head gets n_embd // n_head dimensions; "
                f"pick n_head from {_divisors(self.n_embd)} or change n_embd"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"GPTConfig.bias must be True or False, got {self.bias!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "GPTConfig":
        """Build a config from a dict (e.g. a checkpoint's JSON), naming any field we don't know."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown GPTConfig field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**values)

    def replace(self, **changes: Any) -> "GPTConfig":
        """A copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def seed(cls) -> "GPTConfig":
        """The seed project's model: 6 layers, 6 heads, 384 dims, GPT-2 vocabulary, 29.995M params."""
        return cls(vocab_size=50257, block_size=128, n_layer=6, n_head=6, n_embd=384, dropout=0.1, bias=True)

    @classmethod
    def gpt2(cls) -> "GPTConfig":
        """GPT-2 small (124M parameters), for comparison in lesson 00."""
        return cls(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0)

    @classmethod
    def tiny(cls, vocab_size: int = 256) -> "GPTConfig":
        """A model small enough to train in seconds on a CPU: tests and quick demos."""
        return cls(vocab_size=vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0)


@dataclass
class TrainConfig:
    """How to train: data, optimizer, schedule, evaluation, precision and where the run is kept.

    Every field is checked on construction, so a bad value fails here with a message naming it.
    """

    # data
    tokenizer: str = field(default="gpt2", metadata=_help(
        "'gpt2', 'bpe-N' (our BPE with N tokens, trained on the training stories and cached), "
        "or the path of a saved BPETokenizer"))
    data_source: str | None = field(default=None, metadata=_help(
        "where the stories come from (see slm_course.corpus.load_tinystories; default: the best available)"))
    max_stories: int | None = field(default=None, metadata=_help("use only the first N stories of each split"))
    data_dir: str | None = field(default=None, metadata=_help(
        "a directory already holding train.bin and validation.bin tokenized with `tokenizer` "
        "(skips loading and tokenizing stories)"))
    # optimizer and schedule
    batch_size: int = field(default=32, metadata=_help("sequences per micro-batch (per process)"))
    grad_accum_steps: int = field(default=1, metadata=_help(
        "micro-batches per optimizer update, in total over all processes"))
    max_iters: int = field(default=2000, metadata=_help("optimizer updates in the whole run"))
    lr: float = field(default=6e-4, metadata=_help("peak learning rate, reached after warmup"))
    min_lr: float = field(default=6e-5, metadata=_help("learning rate at the end of the cosine decay (<= lr)"))
    warmup_iters: int = field(default=100, metadata=_help("updates of linear warmup before the cosine decay"))
    weight_decay: float = field(default=0.1, metadata=_help("AdamW weight decay, applied to 2-D weights only"))
    betas: tuple[float, float] = field(default=(0.9, 0.95), metadata=_help("AdamW's beta1 and beta2"))
    grad_clip: float = field(default=1.0, metadata=_help("clip the gradient norm to this (0 = no clipping)"))
    # evaluation and logging
    eval_interval: int = field(default=200, metadata=_help("evaluate and save a checkpoint every N updates"))
    eval_iters: int = field(default=20, metadata=_help("batches per split in each evaluation"))
    log_interval: int = field(default=10, metadata=_help("log the training loss every N updates"))
    # hardware and bookkeeping
    device: str | None = field(default=None, metadata=_help("cpu, cuda or mps (default: the best available)"))
    dtype: str = field(default="auto", metadata=_help(
        "auto, float32, bfloat16 or float16 (auto: bf16 on recent GPUs, fp16 on older ones, fp32 on CPU)"))
    compile: bool = field(default=False, metadata=_help("torch.compile the model (GPU; needs a C++ compiler)"))
    seed: int = field(default=1337, metadata=_help("seed for initialisation, batches and dropout"))
    out_dir: str = field(default="runs/default", metadata=_help("run directory: checkpoints, metrics, config"))

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        for name in ("batch_size", "grad_accum_steps", "max_iters", "eval_interval", "eval_iters", "log_interval"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("warmup_iters", self.warmup_iters, minimum=0)
        _check_int("seed", self.seed, minimum=0)
        if self.max_stories is not None:
            _check_int("max_stories", self.max_stories, minimum=1)
        if self.warmup_iters >= self.max_iters:
            raise ValueError(
                f"TrainConfig.warmup_iters ({self.warmup_iters}) must be smaller than TrainConfig.max_iters "
                f"({self.max_iters}) so that the cosine decay has steps to run; a few percent of max_iters is typical"
            )
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be positive, got {self.lr!r}")
        if self.min_lr > self.lr:
            raise ValueError(
                f"TrainConfig.min_lr ({self.min_lr:g}) is larger than TrainConfig.lr ({self.lr:g}): the cosine "
                f"phase would *raise* the learning rate instead of decaying it. This is the seed project's bug "
                f"(eta_min 5e-4 > lr 1e-4). Set min_lr to about lr / 10."
            )
        if self.min_lr < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig.min_lr, weight_decay and grad_clip must not be negative")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"TrainConfig.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not isinstance(self.tokenizer, str) or not self.tokenizer:
            raise ValueError(f"TrainConfig.tokenizer must be 'gpt2', 'bpe-N' or a file path, got {self.tokenizer!r}")
        bpe = self.tokenizer.startswith("bpe-") and self.tokenizer[4:].isdigit()
        if bpe and int(self.tokenizer[4:]) <= 256:
            raise ValueError(
                f"TrainConfig.tokenizer={self.tokenizer!r}: a BPE vocabulary needs more than the 256 byte "
                f"tokens (try 'bpe-4096')"
            )
        if bpe and self.data_dir is not None:
            raise ValueError(
                f"TrainConfig.tokenizer={self.tokenizer!r} trains a new tokenizer, which can't be the one that "
                f"tokenized data_dir={self.data_dir!r}: set tokenizer to that tokenizer's file (or 'gpt2')"
            )

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 64) + 1) if n % d == 0]
