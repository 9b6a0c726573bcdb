"""Model sizes as data: one dataclass describes a GPT, and presets name the ones the course uses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class GPTConfig:
    """The shape of a GPT. Every field is checked on construction, so a bad size fails here with a
    message naming the field, rather than later as a shape error deep inside torch."""

    vocab_size: int = 50257  # GPT-2's BPE vocabulary (50,000 merges + 256 bytes + <|endoftext|>)
    block_size: int = 128  # context length: the most tokens the model sees at once
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.1
    bias: bool = True  # biases in Linear layers and LayerNorms, as in GPT-2

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


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 64) + 1) if n % d == 0]
