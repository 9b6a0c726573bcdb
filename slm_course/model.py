"""A GPT in one readable file, in the spirit of nanoGPT's ``model.py``.

Token + position embeddings, a stack of pre-LayerNorm transformer blocks (causal self-attention,
then a 4x GELU MLP, each wrapped in a residual connection), a final LayerNorm, and a language-model
head that shares its weight matrix with the token embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from slm_course.config import GPTConfig


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's ``nn.LayerNorm`` can't drop just the bias)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t may only look at positions <= t.

    Two paths compute the same thing. The fast one calls ``F.scaled_dot_product_attention`` (fused
    kernels, no T x T matrix kept for backward on GPUs). The explicit one spells out
    softmax(QK^T / sqrt(d) + mask) V so that the attention weights can be returned and plotted.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project x (B, T, C) to queries, keys and values, each (B, n_head, T, head_dim)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        return tuple(t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend over x (B, T, C). With ``return_weights`` take the explicit path and also return
        the attention weights (B, n_head, T, T), each row a probability distribution."""
        B, T, C = x.shape
        q, k, v = self.split_heads(x)
        if return_weights:
            y, weights = self.explicit_attention(q, k, v)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
            )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # put the heads side by side again
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if return_weights else y

    def explicit_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """softmax(QK^T / sqrt(d) + causal mask) V, written out. Returns (output, weights)."""
        T = q.size(-2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        weights = F.softmax(scores, dim=-1)
        return self.attn_dropout(weights) @ v, weights


class MLP(nn.Module):
    """Position-wise feed-forward network: expand 4x, GELU, project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One transformer block, pre-LN: x + attn(ln(x)), then x + mlp(ln(x)).

    Normalising *before* each sub-layer keeps the residual stream an untouched sum, so gradients
    flow straight from the loss to the embeddings; that is what lets deep stacks train without
    warm-up tricks (post-LN, the original 2017 layout, needs them).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if return_weights:
            attn_out, weights = self.attn(self.ln_1(x), return_weights=True)
            x = x + attn_out
            return x + self.mlp(self.ln_2(x)), weights
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The whole language model: token ids in, next-token logits (and optionally the loss) out."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the matrix that turns a token into a vector also scores vectors as tokens.
        # It saves vocab_size * n_embd parameters (64% of the seed model) and trains better.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * n_layer),
        # because each of the 2 * n_layer residual branches adds its variance to the stream.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Count parameters (tied weights once). ``non_embedding`` leaves out the token and position
        embeddings, the convention of the scaling-law papers (Kaplan et al., 2020)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward), nanoGPT's estimate: 6N + 12 * L * C * T.

        N counts every weight used in a matmul (the tied lm_head included, the position table
        not); 12 * L * C * T covers the attention scores and weighted sums.
        """
        cfg = self.config
        T = seq_len or cfg.block_size
        n = self.num_params() - self.transformer.wpe.weight.numel()
        return 6 * n + 12 * cfg.n_layer * cfg.n_embd * T

    def _check_input(self, idx: torch.Tensor) -> None:
        if idx.dim() != 2:
            raise ValueError(f"idx must be a (batch, time) tensor of token ids, got shape {tuple(idx.shape)}")
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(
                f"sequence length {T} exceeds GPTConfig.block_size={self.config.block_size}; "
                f"crop the input to its last {self.config.block_size} tokens"
            )
        if torch.compiler.is_compiling() or idx.numel() == 0:
            return  # data-dependent checks would break the compiled graph
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.config.vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"token id {bad} is outside the vocabulary [0, {self.config.vocab_size}); "
                f"was the data tokenized with a different tokenizer than GPTConfig.vocab_size assumes?"
            )

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits (B, T, vocab_size), mean cross-entropy or None).

        Targets equal to -1 are ignored in the loss (useful for padding).
        """
        self._check_input(idx)
        x = self.embed(idx)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def embed(self, idx: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        """Token embedding plus the learned embedding of each absolute position."""
        pos = torch.arange(start_pos, start_pos + idx.size(1), dtype=torch.long, device=idx.device)
        return self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))

    @torch.no_grad()
    def attention_weights(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for idx (B, T): shape (n_layer, B, n_head, T, T).

        Used by the attention explorer; runs the explicit attention path.
        """
        self._check_input(idx)
        x = self.embed(idx)
        maps = []
        for block in self.transformer.h:
            x, weights = block(x, return_weights=True)
            maps.append(weights)
        return torch.stack(maps)

    @torch.no_grad()
    def generate(
        self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None
    ) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to idx (B, T), feeding the model at most its
        last ``block_size`` tokens each step. Returns (B, T + max_new_tokens)."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]
            logits, _ = self(context)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            next_id = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, next_id), dim=1)
        return idx
