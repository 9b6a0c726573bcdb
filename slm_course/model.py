"""A GPT in one readable file, in the spirit of nanoGPT's ``model.py``.

Token + position embeddings, a stack of pre-LayerNorm transformer blocks (causal self-attention,
then a 4x GELU MLP, each wrapped in a residual connection), a final LayerNorm, and a language-model
head that shares its weight matrix with the token embedding.

That is GPT-2, and the default. ``GPTConfig`` can swap in the parts later small models train
better with: rotary positions (``pos_emb="rope"``), RMSNorm (``norm="rmsnorm"``), a gated or
squared-ReLU MLP (``mlp="swiglu" | "relu2"``), normalised queries and keys (``qk_norm``) and a
separate output head (``tie_embeddings=False``).

For sampling, a ``KVCache`` keeps every layer's keys and values so that each new token costs one
position's worth of work instead of a pass over the whole context (see ``GPT.next_token_logits``).
"""

from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from slm_course.config import GPTConfig
from slm_course.fused_loss import fused_loss_applies, linear_cross_entropy


def check_token_ids(
    ids: torch.Tensor,
    vocab_size: int,
    where: str = "the input",
    hint: str = "was it tokenized with a different tokenizer than GPTConfig.vocab_size assumes?",
) -> None:
    """Raise a ValueError if any id in ``ids`` is outside ``[0, vocab_size)``, naming ``where``.

    An id past the embedding table fails deep inside torch (or, on a GPU, as an asynchronous
    device assert); the usual cause is data tokenized by another tokenizer. The one check every
    entry point uses: tokenized data (once per run), the sampler's prompt, a CPU forward.

    Example: ``check_token_ids(torch.tensor([[1, 2, 9]]), 8)`` -> ValueError "token id 9 is outside
    the vocabulary [0, 8) in the input; ..."
    """
    if ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(f"token id {bad} is outside the vocabulary [0, {vocab_size}) in {where}; {hint}")


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's ``nn.LayerNorm`` can't drop just the bias)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class RMSNorm(nn.Module):
    """x / rms(x) * gain: LayerNorm without subtracting the mean and without a bias.

    Centring turns out not to matter for transformers; dropping it saves a reduction per call.
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, 1e-5)


def make_norm(config: GPTConfig) -> nn.Module:
    """The normalisation layer ``config.norm`` names, over the residual stream's width."""
    return RMSNorm(config.n_embd) if config.norm == "rmsnorm" else LayerNorm(config.n_embd, bias=config.bias)


class Rotary(nn.Module):
    """Rotary position embedding (RoPE): rotate each pair of a head's dimensions by an angle
    proportional to the position, a different frequency per pair.

    The dot product of a query rotated to position m and a key rotated to position n depends only
    on m - n, so attention sees *relative* positions, and there is no position table to learn.
    cos and sin are precomputed for every position up to block_size (buffers, not saved weights).
    """

    def __init__(self, config: GPTConfig, base: float = 10000.0) -> None:
        super().__init__()
        half = config.head_dim // 2
        freqs = base ** (-torch.arange(half, dtype=torch.float32) / half)  # (half,): 1 down to ~1/base
        angles = torch.outer(torch.arange(config.block_size, dtype=torch.float32), freqs)  # (block_size, half)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        """Rotate x (B, n_head, T, head_dim), whose first position is ``start_pos``."""
        T, half = x.size(-2), x.size(-1) // 2
        cos, sin = self.cos[start_pos : start_pos + T].to(x.dtype), self.sin[start_pos : start_pos + T].to(x.dtype)
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class LayerKVCache:
    """One layer's keys and values for the positions processed so far, in preallocated buffers.

    A token's key and value depend only on the tokens up to it, so once computed they never change
    (as long as no token's position changes): each sampling step appends one position instead of
    recomputing all of them.
    """

    def __init__(self, shape: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype) -> None:
        self.keys = torch.zeros(shape, device=device, dtype=dtype)  # (B, n_head, block_size, head_dim)
        self.values = torch.zeros_like(self.keys)
        self.length = 0  # positions filled

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, n_head, T, head_dim) as the next T positions; return all keys and values."""
        end = self.length + k.size(2)
        self.keys[:, :, self.length : end] = k
        self.values[:, :, self.length : end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class KVCache:
    """Keys and values of every layer for one batch of sequences, up to ``block_size`` positions.

    Make one with ``GPT.new_kv_cache(batch_size)`` and pass it to ``GPT.next_token_logits``.
    """

    def __init__(self, config: GPTConfig, batch_size: int, device: torch.device, dtype: torch.dtype) -> None:
        shape = (batch_size, config.n_head, config.block_size, config.head_dim)
        self.batch_size = batch_size
        self.layers = [LayerKVCache(shape, device, dtype) for _ in range(config.n_layer)]

    @property
    def length(self) -> int:
        """How many positions (the same in every layer) are cached."""
        return self.layers[0].length

    def reset(self) -> None:
        """Forget every position (the buffers are reused)."""
        for layer in self.layers:
            layer.length = 0


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
        self.rotary = Rotary(config) if config.pos_emb == "rope" else None
        # QK-norm: a learned gain per head dimension after RMS-normalising each query and key
        self.q_norm = RMSNorm(config.head_dim) if config.qk_norm else None
        self.k_norm = RMSNorm(config.head_dim) if config.qk_norm else None

    def split_heads(
        self, x: torch.Tensor, start_pos: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project x (B, T, C), whose first position is ``start_pos``, to queries, keys and values,
        each (B, n_head, T, head_dim); queries and keys normalised and rotated if the config says so."""
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(self.n_embd, dim=2))
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rotary is not None:
            q, k = self.rotary(q, start_pos), self.rotary(k, start_pos)
        return q, k, v

    def forward(
        self, x: torch.Tensor, return_weights: bool = False, kv_cache: LayerKVCache | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend over x (B, T, C). With ``return_weights`` take the explicit path and also return
        the attention weights (B, n_head, T, T), each row a probability distribution. With a
        ``kv_cache``, x holds only the positions after the cached ones, which attend to all of them."""
        B, T, C = x.shape
        q, k, v = self.split_heads(x, start_pos=0 if kv_cache is None else kv_cache.length)
        if kv_cache is not None:
            y = self.cached_attention(q, k, v, kv_cache)
        elif return_weights:
            y, weights = self.explicit_attention(q, k, v)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
            )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # put the heads side by side again
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if return_weights else y

    def cached_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_cache: LayerKVCache
    ) -> torch.Tensor:
        """Attention of T new queries over the cached keys and values plus their own."""
        start = kv_cache.length
        k, v = kv_cache.append(k, v)
        T = q.size(-2)
        # A single new token may see every position, so it needs no mask. Several new tokens (the
        # prompt) need the causal mask shifted right by the number of cached positions.
        mask = None if T == 1 else torch.ones(T, start + T, dtype=torch.bool, device=q.device).tril(start)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )

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


def mlp_hidden(config: GPTConfig) -> int:
    """The MLP's hidden width: 4 x n_embd, or for SwiGLU's three matrices 8/3 x n_embd (rounded up to
    a multiple of 64), which keeps the parameter count about that of two 4x matrices."""
    if config.mlp == "swiglu":
        return 64 * math.ceil(8 * config.n_embd / 3 / 64)
    return 4 * config.n_embd


class MLP(nn.Module):
    """Position-wise feed-forward network: expand, a nonlinearity, project back.

    ``gelu`` (GPT-2): GELU(x W1) W2. ``relu2``: relu(x W1)^2 W2, cheaper than GELU and as good or
    better in small-model speedruns. ``swiglu``: (silu(x Wg) * x Wu) W2, a gate deciding per hidden
    unit how much of the up-projection passes (Wg and Wu are stored as one matrix, ``c_fc``).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.kind = config.mlp
        hidden = mlp_hidden(config)
        fc_out = 2 * hidden if config.mlp == "swiglu" else hidden
        self.c_fc = nn.Linear(config.n_embd, fc_out, bias=config.bias)
        self.gelu = nn.GELU() if config.mlp == "gelu" else None
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        if self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        elif self.kind == "relu2":
            h = F.relu(h).square()
        else:
            h = self.gelu(h)
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """One transformer block, pre-LN: x + attn(ln(x)), then x + mlp(ln(x)).

    Normalising *before* each sub-layer keeps the residual stream an untouched sum, so gradients
    flow straight from the loss to the embeddings; that is what lets deep stacks train without
    warm-up tricks (post-LN, the original 2017 layout, needs them).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False, kv_cache: LayerKVCache | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if return_weights:
            attn_out, weights = self.attn(self.ln_1(x), return_weights=True)
            x = x + attn_out
            return x + self.mlp(self.ln_2(x)), weights
        x = x + self.attn(self.ln_1(x), kv_cache=kv_cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The whole language model: token ids in, next-token logits (and optionally the loss) out."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        layers = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))
        if config.pos_emb == "learned":  # with RoPE, positions enter inside attention instead
            layers["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        layers |= dict(
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=make_norm(config),
        )
        self.transformer = nn.ModuleDict(layers)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the matrix that turns a token into a vector also scores vectors as tokens.
        # It saves vocab_size * n_embd parameters (64% of the seed model) and trains better.
        if config.tie_embeddings:
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

    def _lookup_params(self) -> int:
        """Parameters only looked up, never multiplied: the position table, and the token table
        when it is not also the head."""
        n = self.transformer.wpe.weight.numel() if "wpe" in self.transformer else 0
        return n + (0 if self.config.tie_embeddings else self.transformer.wte.weight.numel())

    def num_params(self, non_embedding: bool = False) -> int:
        """Count parameters (tied weights once). ``non_embedding`` leaves out the token and position
        embeddings, the convention of the scaling-law papers (Kaplan et al., 2020); an untied head
        is a matmul, not an embedding, and stays in."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel()
            n -= self.transformer.wpe.weight.numel() if "wpe" in self.transformer else 0
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward), nanoGPT's estimate: 6N + 12 * L * C * T.

        N counts every weight used in a matmul (the lm_head included, the position table and an
        untied token table not); 12 * L * C * T covers the attention scores and weighted sums.
        """
        cfg = self.config
        T = seq_len or cfg.block_size
        n = self.num_params() - self._lookup_params()
        return 6 * n + 12 * cfg.n_layer * cfg.n_embd * T

    def _check_input(self, idx: torch.Tensor) -> None:
        """Shape checks always; id checks only on the CPU, where they cost no device sync.

        On a GPU, reading ``idx.min()`` back would stall every forward until the GPU catches up,
        so there ids are checked where data enters instead (the tokenized data, the first
        batch of a run, the sampler's prompt), all through :func:`check_token_ids`.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be a (batch, time) tensor of token ids, got shape {tuple(idx.shape)}")
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(
                f"sequence length {T} exceeds GPTConfig.block_size={self.config.block_size}; "
                f"crop the input to its last {self.config.block_size} tokens"
            )
        if idx.device.type == "cpu" and not torch.compiler.is_compiling():
            check_token_ids(idx, self.config.vocab_size)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> (logits (B, T, vocab_size), mean cross-entropy or None).

        Targets equal to -1 are ignored in the loss (useful for padding). A training forward in
        fp32 on the CPU (targets given, gradients recorded) returns logits None: its loss comes
        from :func:`~slm_course.fused_loss.linear_cross_entropy`, which never holds them all.
        """
        self._check_input(idx)
        x = self.embed(idx)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None and fused_loss_applies(x):
            return None, linear_cross_entropy(x.flatten(0, 1), self.lm_head.weight, targets.reshape(-1))
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def embed(self, idx: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        """Token embedding plus the learned embedding of each absolute position (with RoPE, the
        token embedding alone: attention rotates queries and keys by position)."""
        x = self.transformer.wte(idx)
        if "wpe" in self.transformer:
            x = x + self.transformer.wpe(torch.arange(start_pos, start_pos + idx.size(1), device=idx.device))
        return self.transformer.drop(x)

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

    def new_kv_cache(self, batch_size: int) -> KVCache:
        """An empty KV cache for ``batch_size`` sequences, on the model's device and in its dtype."""
        weight = self.lm_head.weight
        return KVCache(self.config, batch_size, weight.device, weight.dtype)

    def next_token_logits(self, idx: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, vocab_size) for the token that follows idx (B, T), the whole sequence so far.

        Only the last position goes through the lm_head, the largest matmul of a small model,
        since sampling needs no other. Without a cache, the model reads the last ``block_size``
        tokens from scratch. With one, it reads only the tokens of idx the cache hasn't seen (so
        idx must extend the sequence the cache was filled with) and appends them to the cache.

        Past ``block_size`` tokens the context window slides, and with learned absolute positions
        every token in it moves to a new position: all cached keys and values go stale at once.
        Reusing them anyway would be an approximation; we stay exact instead, so from then on each
        call recomputes the whole window like the no-cache path (the cache is emptied, unused),
        and the cache saves nothing past the window.
        """
        window = idx[..., -self.config.block_size :]  # the most the model can see
        self._check_input(window)
        T = idx.size(1)
        if T == 0:
            raise ValueError("idx has no tokens; start from at least one, e.g. <|endoftext|>")
        if kv_cache is None or T > self.config.block_size:
            if kv_cache is not None:
                kv_cache.reset()
            x = self.embed(window)
            for block in self.transformer.h:
                x = block(x)
        else:
            start = kv_cache.length
            if kv_cache.batch_size != idx.size(0) or start >= T:
                raise ValueError(
                    f"the KV cache holds {start} positions of {kv_cache.batch_size} sequences, but idx "
                    f"is {tuple(idx.shape)}: pass the sequences the cache was filled with, plus new tokens"
                )
            x = self.embed(idx[:, start:], start_pos=start)
            for block, layer_cache in zip(self.transformer.h, kv_cache.layers):
                x = block(x, kv_cache=layer_cache)
        return self.lm_head(self.transformer.ln_f(x[:, -1, :]))
