"""Worked solutions to the code exercises, one function per exercise, named like the lessons' stubs.

Look here after you have tried: each function is what ``slm_course.lessons.exercises`` accepts,
written to be read. ``tests/test_exercises.py`` runs every checker against its solution here.
Pass one to its checker to see the praise, e.g. ``check_best_pair(solutions.best_pair)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from slm_course.config import GPTConfig, TrainConfig
from slm_course.model import GPT

# --- Lesson 00 ---


def count_params(config: GPTConfig) -> int:
    """Embeddings, L blocks of attention + MLP + two LayerNorms, the final LayerNorm; tied head."""
    V, T, C, L = config.vocab_size, config.block_size, config.n_embd, config.n_layer
    b = 1 if config.bias else 0
    layer_norm = C + b * C  # weight, and a bias only with bias=True
    attention = C * 3 * C + b * 3 * C + C * C + b * C
    mlp = C * 4 * C + b * 4 * C + 4 * C * C + b * C
    return V * C + T * C + L * (2 * layer_norm + attention + mlp) + layer_norm


# --- Lesson 01 ---


def best_pair(ids: list[int]) -> tuple[int, int] | None:
    """The most frequent neighbouring pair; ties go to the smallest pair."""
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda pair: (-counts[pair], pair))


def encode(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Merge the lowest-ranked pair present until no pair of neighbours is in ``merges``."""
    ids = list(ids)
    while len(ids) >= 2:
        present = [pair for pair in zip(ids, ids[1:]) if pair in merges]
        if not present:
            break
        pair = min(present, key=merges.__getitem__)
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(merges[pair])
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids


# --- Lesson 02 ---


def get_batch(
    tokens: np.ndarray, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One randint call for the starts, one fancy-indexing read for all the windows."""
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    windows = torch.from_numpy(tokens[(starts[:, None] + torch.arange(block_size + 1)).numpy()].astype(np.int64))
    return windows[:, :-1], windows[:, 1:]


def bigram_counts(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """table[a, b] = how often b follows a; np.add.at counts a repeated pair every time."""
    tokens = np.asarray(tokens, dtype=np.int64)
    table = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    np.add.at(table, (tokens[:-1], tokens[1:]), 1)
    return table


# --- Lesson 03 ---


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head): split the features, then move heads before time."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) v over the last two dimensions."""
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v


# --- Lesson 04 ---


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight, per token."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """The gate, through silu, times the up projection, then down."""
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


# --- Lesson 05 ---


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of logsumexp(z) - z[target] over the rows whose target is not -1."""
    keep = targets != -1
    logits, targets = logits[keep], targets[keep]
    picked = logits.gather(1, targets[:, None]).squeeze(1)
    return (torch.logsumexp(logits, dim=-1) - picked).mean()


# --- Lesson 06 ---


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warmup from lr / (warmup_iters + 1), then half a cosine down to min_lr."""
    c = config
    if step < c.warmup_iters:
        return c.lr * (step + 1) / (c.warmup_iters + 1)
    progress = (step - c.warmup_iters) / (c.max_iters - c.warmup_iters)
    return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def train_step(
    model: GPT, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]], grad_clip: float
) -> float:
    """Accumulate the mean gradient over the batches, clip, step, zero; return the mean loss."""
    total = 0.0
    for x, y in batches:
        _, loss = model(x, y)
        (loss / len(batches)).backward()
        total += loss.item()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / len(batches)


# --- Lesson 07 ---


def top_p_filter(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Keep a token while the mass ranked before it is below p; renormalise each row."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    needed = (sorted_probs.cumsum(dim=-1) - sorted_probs) < p
    keep = torch.zeros_like(needed).scatter(-1, order, needed)
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)


def kv_cache_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append the new key and value, then let the one new query attend to every position."""
    k_cache, v_cache = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
    weights = torch.softmax(q @ k_cache.transpose(-2, -1) / math.sqrt(k.size(-1)), dim=-1)
    return weights @ v_cache, k_cache, v_cache


# --- Lesson 08 ---


def fit_power_law(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """A power law is a straight line in log-log: fit log y = log scale + exponent * log x."""
    exponent, log_scale = np.polyfit(np.log(x), np.log(y), 1)
    return float(math.exp(log_scale)), float(exponent)
