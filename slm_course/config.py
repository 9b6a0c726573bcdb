"""The two configs as data: GPTConfig (the shape of a model) and TrainConfig (how to train it).

Each field carries its help text in its metadata, which is where the command line gets it.
Nothing here imports the rest of the package: every other module may import this one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

DTYPES = ("auto", "fastest", "float32", "bfloat16", "float16")
# GPTConfig's architecture choices; the first of each is GPT-2's, and the default.
POS_EMBS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu", "relu2")


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
    # Architecture choices beyond GPT-2. The defaults are GPT-2's, so a config.json written before
    # these fields existed loads as the model it was.
    pos_emb: str = field(default="learned", metadata=_help(
        "positions: 'learned' (a table added to the token embedding, GPT-2) or 'rope' (queries and "
        "keys rotated by their position, so attention sees relative positions)"))
    norm: str = field(default="layernorm", metadata=_help(
        "'layernorm' (GPT-2) or 'rmsnorm' (no mean subtraction, no bias: cheaper, as good)"))
    mlp: str = field(default="gelu", metadata=_help(
        "'gelu' (4x wide, GPT-2), 'swiglu' (gated, 8/3x wide: same parameters) or 'relu2' (4x, ReLU squared)"))
    qk_norm: bool = field(default=False, metadata=_help(
        "RMS-normalise each head's queries and keys before attention (keeps attention logits bounded)"))
    tie_embeddings: bool = field(default=True, metadata=_help(
        "share one matrix between the token embedding and the output head, as GPT-2 does"))

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
        for name in ("bias", "qk_norm", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GPTConfig.{name} must be True or False, got {getattr(self, name)!r}")
        for name, choices in (("pos_emb", POS_EMBS), ("norm", NORMS), ("mlp", MLPS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"GPTConfig.{name} must be one of {choices}, got {getattr(self, name)!r}")
        if self.pos_emb == "rope" and self.head_dim % 2:
            raise ValueError(
                f"GPTConfig.pos_emb='rope' rotates pairs of dimensions, so the head size n_embd // n_head "
                f"({self.head_dim}) must be even; change n_embd or n_head, or use pos_emb='learned'"
            )

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
    max_iters: int = field(default=2000, metadata=_help(
        "optimizer updates in the whole run (with time_budget: replaced by what fits in the budget)"))
    time_budget: str | float | None = field(default=None, metadata=_help(
        "wall-clock budget of the whole run (data, updates, evaluations, checkpoints): seconds, or "
        "'10m', '90s', '1h'. The run times its warmup updates, then fixes max_iters and the schedule to "
        "fit, and records that max_iters in config.json. 'none': exactly max_iters updates, reproducible"))
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
        "auto, fastest, float32, bfloat16 or float16 (auto: bf16 on recent GPUs, fp16 on older ones, fp32 on "
        "CPU; fastest: as auto, but bf16 on a CPU with native bf16 that measures it much faster than fp32)"))
    compile: bool = field(default=False, metadata=_help("torch.compile the model (GPU; needs a C++ compiler)"))
    seed: int = field(default=1337, metadata=_help("seed for initialisation, batches and dropout"))
    out_dir: str = field(default="runs/default", metadata=_help("run directory: checkpoints, metrics, config"))

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.time_budget is not None:
            self.time_budget = parse_duration(self.time_budget, "TrainConfig.time_budget")
            if self.warmup_iters < MIN_BUDGET_WARMUP:
                raise ValueError(
                    f"TrainConfig.time_budget times the warmup updates to choose max_iters, so warmup_iters "
                    f"must be at least {MIN_BUDGET_WARMUP} (got {self.warmup_iters}); raise warmup_iters or "
                    f"set time_budget=None"
                )
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


# The fewest warmup updates a time budget can be measured on: the first update (allocations,
# kernel choices) is not timed, and one timed update alone is too noisy to plan a run on.
MIN_BUDGET_WARMUP = 5
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: float | int | str, name: str) -> float:
    """Seconds from a number or a string of seconds with an optional unit: s, m or h.

    Example: ``parse_duration("10m", "time_budget")`` -> ``600.0``; ``parse_duration(90, "x")`` -> ``90.0``
    """
    text = str(value).strip().lower()
    scale = _DURATION_UNITS.get(text[-1:], None)
    number = text[:-1] if scale is not None else text
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or a duration like '10m', '90s', '1h'; "
                         f"got {value!r}")
    return seconds


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 64) + 1) if n % d == 0]
