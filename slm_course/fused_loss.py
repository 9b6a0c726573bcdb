"""The language-model head and its cross-entropy in one pass, in row chunks: a faster training
step on the CPU, with the same loss and gradients as ``F.cross_entropy(hidden @ weight.T, targets)``.

Why: the plain path writes all (rows x vocab) logits, keeps them and their log-softmax for the
backward pass, then in backward zero-fills a gradient of the same size and reads both back. For a
small model those are the biggest arrays of the step (32 MB at 2,048 tokens x 4,096 words), and on a
CPU the passes over them cost as much as a third of the head's matmuls. Yet cross-entropy is the
last operation, so its gradient with respect to the logits is already known in the forward pass:
(softmax - one-hot) / n. This computes it there, a chunk of rows at a time so that each chunk's
logits stay in the cache, turns it at once into the gradients of the hidden states and of the
head's weight, and keeps only those (as big as the input and the weight). Backward just scales
them by the incoming gradient.

Used by ``GPT.forward`` while training in fp32 on the CPU, where it was measured faster (see
docs/benchmarks.md); elsewhere the model takes the plain path, whose logits the caller also gets.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 512  # rows of logits per chunk: 8 MB at a 4,096-word vocabulary; 512-1,024 timed best


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward computes the mean loss *and* both gradients; backward returns them scaled."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        want_hidden, want_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        scored = targets != -1  # -1 marks a position the loss ignores, as ignore_index=-1 does
        count = scored.sum()
        safe_targets = torch.where(scored, targets, 0)
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight) if want_weight else None
        total = hidden.new_zeros((), dtype=torch.float32)
        logits_buffer = hidden.new_empty(min(CHUNK_ROWS, hidden.size(0)), weight.size(0))
        for start in range(0, hidden.size(0), CHUNK_ROWS):
            h = hidden[start:start + CHUNK_ROWS]
            t, keep = safe_targets[start:start + CHUNK_ROWS], scored[start:start + CHUNK_ROWS]
            rows = torch.arange(h.size(0), device=h.device)
            logits = torch.mm(h, weight.t(), out=logits_buffer[: h.size(0)])
            row_max, target_logit = logits.amax(dim=-1), logits[rows, t]
            probs = torch.softmax(logits, dim=-1, out=logits)  # in place: the logits are not needed again
            # log-sum-exp = max + log(sum exp(logit - max)), and that sum is 1 / p(argmax), which is
            # at least 1 / vocab: no underflow, however confident the model
            log_sum_exp = row_max - torch.log(probs.amax(dim=-1))
            total += torch.where(keep, log_sum_exp - target_logit, 0.0).sum()
            probs[rows, t] -= 1  # d loss / d logits = softmax - one-hot (times 1/count, below)
            if not bool(keep.all()):
                probs[~keep] = 0
            if want_hidden:
                torch.mm(probs, weight, out=grad_hidden[start:start + CHUNK_ROWS])
            if want_weight:
                grad_weight.addmm_(probs.t(), h)
        # No scored target at all: a nan loss and zero gradients, as F.cross_entropy gives.
        for grad in (grad_hidden, grad_weight):
            if grad is not None:
                grad.div_(count.clamp(min=1))
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        return (None if grad_hidden is None else grad_hidden * grad_loss,
                None if grad_weight is None else grad_weight * grad_loss, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the logits ``hidden @ weight.T`` against ``targets`` (-1: ignored),
    without ever holding all the logits.

    hidden (n, C), weight (vocab, C), targets (n,). Call ``backward()`` on the result once, as a
    training step does: the gradients were computed with the loss, so a loss nobody backpropagates
    wasted two matmuls (evaluation runs under ``torch.no_grad`` and takes the plain path).

    Example: ``linear_cross_entropy(torch.zeros(2, 4), torch.zeros(8, 4), torch.tensor([1, 5]))``
    -> ``tensor(2.0794)``, ln 8: all-zero logits are a uniform guess over 8 words.
    """
    return _LinearCrossEntropy.apply(hidden, weight, targets)


def fused_loss_applies(hidden: torch.Tensor) -> bool:
    """Whether the training loss should take :func:`linear_cross_entropy`: gradients are being
    recorded, on the CPU, in fp32, outside autocast and ``torch.compile`` (which fuses the plain
    path itself). That is where it was measured faster; on a GPU, ``F.cross_entropy``'s kernels
    were not compared against it, so the plain path stays."""
    return (torch.is_grad_enabled() and hidden.requires_grad and hidden.device.type == "cpu"
            and hidden.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling())
