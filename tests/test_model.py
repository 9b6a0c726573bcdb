"""The GPT core: shapes, causality, the two attention paths, init, parameter count, tying, learning."""

import math

import pytest
import torch

from slm_course import sample
from slm_course.config import GPTConfig
from slm_course.model import GPT, MLP, Block, CausalSelfAttention, LayerNorm, RMSNorm, Rotary, mlp_hidden


def make(cfg: GPTConfig, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg)


@pytest.fixture
def cfg() -> GPTConfig:
    return GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.0)


def closed_form_params(c: GPTConfig) -> int:
    """Parameters of a GPT: embeddings + L blocks + final norm, for every architecture option.

    GPT-2's block has 12C^2 weights (qkv 3C^2, attention projection C^2, MLP 4C^2 + 4C^2) and 2
    LayerNorm gains (2C); with biases add 9C for the Linear layers and 2C for the LayerNorms.
    SwiGLU's MLP has three C x H matrices (gate, up, down), H = 8C/3 rounded up to 64; RMSNorm has
    a gain and never a bias; QK-norm adds a gain of head_dim for queries and one for keys; RoPE has
    no position table; an untied head adds a second V x C matrix.
    """
    C, H = c.n_embd, (64 * math.ceil(8 * c.n_embd / 3 / 64) if c.mlp == "swiglu" else 4 * c.n_embd)
    norm = 2 * C if c.norm == "layernorm" and c.bias else C
    mlp = (3 if c.mlp == "swiglu" else 2) * C * H + ((2 * H if c.mlp == "swiglu" else H) + C if c.bias else 0)
    attn = 4 * C * C + (4 * C if c.bias else 0) + (2 * c.head_dim if c.qk_norm else 0)
    embeddings = c.vocab_size * C * (1 if c.tie_embeddings else 2) + (c.block_size * C if c.pos_emb == "learned" else 0)
    return embeddings + c.n_layer * (attn + mlp + 2 * norm) + norm


OPTIONS = [{}, {"pos_emb": "rope"}, {"norm": "rmsnorm"}, {"mlp": "swiglu"}, {"mlp": "relu2"}, {"qk_norm": True},
           {"tie_embeddings": False},
           {"pos_emb": "rope", "norm": "rmsnorm", "mlp": "swiglu", "qk_norm": True, "tie_embeddings": False}]


def test_shapes(cfg):
    model = make(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 11))
    logits, loss = model(idx)
    assert logits.shape == (3, 11, cfg.vocab_size) and loss is None
    logits, loss = model(idx, targets=idx)
    assert loss.shape == () and torch.isfinite(loss)
    assert model.attention_weights(idx).shape == (cfg.n_layer, 3, cfg.n_head, 11, 11)


def test_causality_future_tokens_do_not_change_past_logits(cfg):
    model = make(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.block_size))
    changed = idx.clone()
    t = 6
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % cfg.vocab_size
    a, _ = model(idx)
    b, _ = model(changed)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


@pytest.mark.parametrize("train_mode, dropout", [(True, 0.0), (False, 0.0), (False, 0.2)])
def test_sdpa_path_equals_explicit_path(train_mode, dropout):
    torch.manual_seed(0)
    attn = CausalSelfAttention(GPTConfig(block_size=16, n_head=4, n_embd=32, dropout=dropout))
    attn.train(train_mode)
    x = torch.randn(2, 13, 32)
    fast = attn(x)
    explicit, weights = attn(x, return_weights=True)
    torch.testing.assert_close(fast, explicit, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 13))
    assert torch.all(weights.triu(diagonal=1) == 0), "a position attended to the future"


def test_layernorm_without_bias_matches_torch():
    x = torch.randn(4, 8)
    ours = LayerNorm(8, bias=False)
    assert ours.bias is None
    torch.testing.assert_close(ours(x), torch.nn.functional.layer_norm(x, (8,)))


def test_block_is_pre_ln_residual():
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=8, n_head=2, n_embd=16, dropout=0.0)
    block = Block(cfg).eval()
    x = torch.randn(1, 5, 16)
    h = x + block.attn(block.ln_1(x))
    torch.testing.assert_close(block(x), h + block.mlp(block.ln_2(h)))


def test_loss_at_init_is_close_to_log_vocab():
    cfg = GPTConfig(vocab_size=4096, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    model = make(cfg)
    idx = torch.randint(0, cfg.vocab_size, (8, 64))
    _, loss = model(idx, targets=torch.randint(0, cfg.vocab_size, (8, 64)))
    assert abs(loss.item() - math.log(cfg.vocab_size)) < 0.1


def test_residual_projections_use_scaled_init():
    cfg = GPTConfig(vocab_size=1000, block_size=32, n_layer=8, n_head=4, n_embd=256, dropout=0.0)
    model = make(cfg)
    proj = torch.cat([b.attn.c_proj.weight.flatten() for b in model.transformer.h])
    fc = torch.cat([b.mlp.c_fc.weight.flatten() for b in model.transformer.h])
    assert abs(proj.std().item() - 0.02 / math.sqrt(2 * cfg.n_layer)) < 5e-4
    assert abs(fc.std().item() - 0.02) < 5e-4


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_count_matches_closed_form(bias):
    cfg = GPTConfig(vocab_size=500, block_size=24, n_layer=3, n_head=4, n_embd=48, bias=bias)
    model = make(cfg)
    expected = closed_form_params(cfg)
    assert model.num_params() == expected
    assert model.num_params(non_embedding=True) == expected - (cfg.vocab_size + cfg.block_size) * cfg.n_embd


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "gpt2")
def test_parameter_count_and_flops_match_closed_form_with_every_option(options, bias):
    c = GPTConfig(vocab_size=500, block_size=24, n_layer=3, n_head=4, n_embd=48, bias=bias, **options)
    model = make(c)
    expected = closed_form_params(c)
    assert model.num_params() == expected == sum(p.numel() for p in set(model.parameters()))
    position_table = c.block_size * c.n_embd if c.pos_emb == "learned" else 0
    assert model.num_params(non_embedding=True) == expected - c.vocab_size * c.n_embd - position_table
    # 6N over the weights that multiply: everything but the position table and an untied token table
    matmul = expected - position_table - (0 if c.tie_embeddings else c.vocab_size * c.n_embd)
    assert model.flops_per_token() == 6 * matmul + 12 * c.n_layer * c.n_embd * c.block_size


def test_swiglu_keeps_about_the_gelu_mlps_parameters():
    c = GPTConfig(n_embd=192, n_head=4, mlp="swiglu")
    assert mlp_hidden(c) == 512 and 3 * 192 * 512 == 2 * 192 * 768  # exactly equal at 192 wide


@pytest.mark.parametrize("kind, reference", [
    ("gelu", lambda h: torch.nn.functional.gelu(h)),
    ("relu2", lambda h: torch.relu(h) ** 2),
    ("swiglu", lambda h: torch.nn.functional.silu(h.chunk(2, -1)[0]) * h.chunk(2, -1)[1]),
])
def test_mlp_computes_its_nonlinearity(kind, reference):
    torch.manual_seed(0)
    mlp = MLP(GPTConfig(n_embd=32, n_head=2, dropout=0.0, mlp=kind))
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(mlp(x), mlp.c_proj(reference(mlp.c_fc(x))))


def test_rmsnorm_divides_by_the_root_mean_square():
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 9.0))
    x = torch.randn(3, 8)
    torch.testing.assert_close(norm(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight)


def test_rotary_scores_depend_only_on_the_distance_between_positions():
    rotary = Rotary(GPTConfig(block_size=64, n_head=2, n_embd=32))
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m: int, n: int) -> torch.Tensor:
        return (rotary(q, start_pos=m) * rotary(k, start_pos=n)).sum()

    torch.testing.assert_close(score(9, 4), score(40, 35), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(score(9, 4), score(9, 8))
    torch.testing.assert_close(rotary(q, start_pos=0), q)  # position 0: no rotation
    torch.testing.assert_close(rotary(q, start_pos=17).norm(), q.norm())  # a rotation keeps lengths


def test_rope_models_have_no_position_table_and_untied_heads_their_own_matrix():
    rope = make(GPTConfig.tiny().replace(pos_emb="rope"))
    assert "wpe" not in rope.transformer and not any("wpe" in name for name in rope.state_dict())
    assert not any("rotary" in name for name in rope.state_dict()), "cos/sin are recomputed, not saved"
    untied = make(GPTConfig.tiny().replace(tie_embeddings=False))
    assert untied.lm_head.weight.data_ptr() != untied.transformer.wte.weight.data_ptr()


@pytest.mark.parametrize("options", OPTIONS[1:], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_every_option_stays_causal_and_learns(options):
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=64, dropout=0.0, **options)
    model = make(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.block_size), generator=torch.Generator().manual_seed(0))
    changed = idx.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % cfg.vocab_size
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0][:, :9], model(changed)[0][:, :9])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        _, loss = model(idx[:, :-1], targets=idx[:, 1:].contiguous())
        first = first if first is not None else loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_a_config_without_the_architecture_fields_is_gpt2():
    old = {"vocab_size": 300, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.1, "bias": True}
    cfg = GPTConfig.from_dict(old)
    assert (cfg.pos_emb, cfg.norm, cfg.mlp, cfg.qk_norm, cfg.tie_embeddings) == ("learned", "layernorm", "gelu", False, True)


def test_seed_preset_has_29_995_million_parameters():
    cfg = GPTConfig.seed()
    assert closed_form_params(cfg) == 29_995_392
    assert make(cfg).num_params() == 29_995_392


def test_lm_head_and_token_embedding_share_storage(cfg):
    model = make(cfg)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    idx = torch.randint(0, cfg.vocab_size, (2, 8))
    _, loss = model(idx, targets=idx)
    loss.backward()
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


def test_tiny_model_overfits_one_batch():
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=64, dropout=0.0)
    model = make(cfg)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (4, 16), generator=gen)
    y = torch.randint(0, cfg.vocab_size, (4, 16), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(300):
        _, loss = model(x, targets=y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if loss.item() < 0.1:
            break
    assert loss.item() < 0.1, f"loss {loss.item():.3f} after {step + 1} steps"


def test_generate_length_and_context_crop(cfg):
    model = make(cfg).eval()
    seen_lengths = []
    model.transformer.wte.register_forward_hook(lambda m, inp, out: seen_lengths.append(inp[0].size(1)))
    idx = torch.randint(0, cfg.vocab_size, (2, 5))
    out = sample.generate(model, idx, max_new_tokens=cfg.block_size + 7, temperature=1.0, top_k=5)
    assert out.shape == (2, 5 + cfg.block_size + 7)
    assert torch.equal(out[:, :5], idx)
    assert int(out.max()) < cfg.vocab_size
    assert seen_lengths and max(seen_lengths) <= cfg.block_size


def test_bad_input_ids_and_lengths_get_clear_errors(cfg):
    model = make(cfg)
    with pytest.raises(ValueError, match=rf"token id {cfg.vocab_size} is outside the vocabulary"):
        model(torch.tensor([[1, 2, cfg.vocab_size]]))
    with pytest.raises(ValueError, match="token id -1"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match=r"exceeds GPTConfig\.block_size=16"):
        model(torch.zeros(1, cfg.block_size + 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(torch.zeros(5, dtype=torch.long))


def test_forward_backward_under_cpu_bf16_autocast(cfg):
    """Correctness only: on CPUs without AVX-512-BF16/AMX bf16 matmuls are slow, so we train in fp32."""
    model = make(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, targets=idx)
    assert logits.dtype == torch.bfloat16
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
