"""The fused head + cross-entropy gives F.cross_entropy's loss and gradients, and the model takes it
exactly when it should."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import slm_course.model as model_module
from slm_course.config import GPTConfig
from slm_course.fused_loss import CHUNK_ROWS, fused_loss_applies, linear_cross_entropy
from slm_course.model import GPT


def plain_and_fused(rows: int, vocab: int, width: int, targets: torch.Tensor, grad_scale: float = 1.0):
    """(loss, grad of hidden, grad of weight) both ways, from the same random inputs."""
    generator = torch.Generator().manual_seed(rows + vocab)
    hidden = torch.randn(rows, width, generator=generator) * 3  # confident logits, far from uniform
    weight = torch.randn(vocab, width, generator=generator)
    results = []
    for loss_fn in (lambda h, w: F.cross_entropy(h @ w.t(), targets, ignore_index=-1),
                    lambda h, w: linear_cross_entropy(h, w, targets)):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        loss = loss_fn(h, w)
        (loss * grad_scale).backward()
        results.append((loss.detach(), h.grad, w.grad))
    return results


@pytest.mark.parametrize("rows, vocab, ignored", [
    (7, 11, []),  # fewer rows than one chunk
    (CHUNK_ROWS, 64, [0]),  # exactly one chunk
    (2 * CHUNK_ROWS + 5, 300, [3, CHUNK_ROWS + 1, 2 * CHUNK_ROWS + 4]),  # a ragged last chunk, ignored rows in each
])
def test_loss_and_gradients_equal_cross_entropys(rows, vocab, ignored):
    targets = torch.randint(0, vocab, (rows,), generator=torch.Generator().manual_seed(1))
    targets[ignored] = -1
    (loss, grad_h, grad_w), (fused, fused_h, fused_w) = plain_and_fused(rows, vocab, 16, targets, grad_scale=3.0)
    torch.testing.assert_close(fused, loss)
    torch.testing.assert_close(fused_h, grad_h)
    torch.testing.assert_close(fused_w, grad_w)
    assert float(fused) > 1.0  # a real loss, not a uniform guess's ln(vocab) by accident of zeros


def test_no_scored_target_gives_nan_loss_and_zero_gradients_like_cross_entropy():
    (loss, grad_h, grad_w), (fused, fused_h, fused_w) = plain_and_fused(5, 9, 4, torch.full((5,), -1))
    assert loss.isnan() and fused.isnan()
    torch.testing.assert_close(fused_h, grad_h)
    torch.testing.assert_close(fused_w, grad_w)


def test_a_frozen_head_gets_no_gradient():
    hidden = torch.randn(6, 4, requires_grad=True)
    weight = torch.randn(10, 4)  # requires no gradient
    linear_cross_entropy(hidden, weight, torch.arange(6)).backward()
    assert weight.grad is None and hidden.grad is not None


def test_the_docstring_example():
    loss = linear_cross_entropy(torch.zeros(2, 4), torch.zeros(8, 4), torch.tensor([1, 5]))
    assert abs(float(loss) - 2.0794) < 1e-4  # ln 8


def test_it_applies_only_to_a_recorded_fp32_cpu_forward():
    x = torch.randn(2, 3, requires_grad=True)
    assert fused_loss_applies(x)
    assert not fused_loss_applies(x.detach())
    assert not fused_loss_applies(x.double())
    with torch.no_grad():
        assert not fused_loss_applies(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused_loss_applies(x)


def test_a_training_forward_of_the_gpt_matches_the_plain_path(monkeypatch):
    """Tied weights included: the head's gradient and the embedding's add up the same both ways."""
    cfg = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 16))
    targets = torch.randint(0, cfg.vocab_size, (3, 16))
    targets[0, :4] = -1

    def loss_and_grads():
        model.zero_grad(set_to_none=True)
        logits, loss = model(idx, targets)
        loss.backward()
        return logits, loss.detach(), [p.grad.clone() for p in model.parameters()]

    fused_logits, fused, fused_grads = loss_and_grads()
    monkeypatch.setattr(model_module, "fused_loss_applies", lambda hidden: False)
    plain_logits, plain, plain_grads = loss_and_grads()
    assert fused_logits is None and plain_logits.shape == (3, 16, cfg.vocab_size)
    torch.testing.assert_close(fused, plain)
    for fused_grad, plain_grad in zip(fused_grads, plain_grads):
        torch.testing.assert_close(fused_grad, plain_grad)
