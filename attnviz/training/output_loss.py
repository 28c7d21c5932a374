"""The output layer and the label-smoothed cross-entropy as one operation, a block of rows
at a time.

On a CPU the output layer and its loss are about half of a training step: the logits of a
2,000-token batch over an 8,000-piece vocabulary are 64 MB, and ``F.cross_entropy`` with
label smoothing walks that array a dozen times (log-softmax, its gradient, the smoothing's
sums, copies and fills), each time from main memory. Here the forward pass computes the
logits of ``chunk_rows`` rows (a block that stays in the cache), their loss and at once the
gradient of the mean loss with respect to them,

    (softmax(logits) - ((1 - e) * onehot(target) + e / vocab)) / tokens,

which is all that the backward pass needs: it multiplies it by the weight and the features
(the two matmuls of a linear layer's backward). The rows are the non-padding target
positions only, so padding costs no output layer at all.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CHUNK_ROWS", "output_loss"]

# Rows per block: 128 rows x 8,000 logits is 4 MB, about the share of the L3 cache that one
# core of a small server has, and enough rows for the matmul to run at full speed.
CHUNK_ROWS = 128


def output_loss(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    label_smoothing: float = 0.0,
    chunk_rows: int = CHUNK_ROWS,
) -> Tensor:
    """Mean label-smoothed cross-entropy of ``F.linear(features, weight, bias)`` against
    ``targets``: the value and gradients of ``F.cross_entropy(logits, targets,
    label_smoothing=label_smoothing)``, without holding the logits.

    features: (rows, in_features) the output layer's input, one row per target token
    weight:   (vocab, in_features); bias: (vocab,) or None
    targets:  (rows,) long, each in [0, vocab)
    returns a scalar; NaN when there are no rows (as ``F.cross_entropy`` over no tokens)
    """
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (features, weight, bias)
    )
    if needs_grad:
        return _OutputLoss.apply(features, weight, bias, targets, label_smoothing, chunk_rows)
    with torch.no_grad():
        total, _ = _chunked_loss(features, weight, bias, targets, label_smoothing, chunk_rows)
    return total / len(targets)


def _chunked_loss(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    label_smoothing: float,
    chunk_rows: int,
    grad_logits: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """The summed loss of all rows; with ``grad_logits`` (rows, vocab) also fills it with the
    gradient of the mean loss with respect to the logits.

    For logits z of one row, m = max z, s = sum exp(z - m) and lse = m + log s:
    -log p(target) = lse - z_target, and the smoothing term -mean_v log p(v) = lse - mean z.
    """
    rows, vocab = len(targets), len(weight)
    total = features.new_zeros(())
    for start in range(0, rows, chunk_rows):
        block = slice(start, min(start + chunk_rows, rows))
        target = targets[block, None]
        logits = features[block] @ weight.t()
        if bias is not None:
            logits += bias
        top = logits.amax(dim=1, keepdim=True)
        logits -= top  # z - m: no exp overflows
        mean_shifted = logits.mean(dim=1, keepdim=True)
        target_shifted = logits.gather(1, target)
        probs = logits.exp_()
        sums = probs.sum(dim=1, keepdim=True)
        log_sums = sums.log()
        nll = log_sums - target_shifted
        smooth = log_sums - mean_shifted
        total += ((1.0 - label_smoothing) * nll + label_smoothing * smooth).sum()
        if grad_logits is not None:
            grad = grad_logits[block]
            torch.mul(probs, sums.reciprocal_().div_(rows), out=grad)
            grad -= label_smoothing / (vocab * rows)
            grad.scatter_add_(
                1, target, grad.new_full(target.shape, -(1.0 - label_smoothing) / rows)
            )
    return total, grad_logits


class _OutputLoss(torch.autograd.Function):
    """The fused layer and loss; forward keeps the gradient of the logits for backward."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        features: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        label_smoothing: float,
        chunk_rows: int,
    ) -> Tensor:
        grad_logits = features.new_empty(len(targets), len(weight))
        total, _ = _chunked_loss(
            features, weight, bias, targets, label_smoothing, chunk_rows, grad_logits
        )
        ctx.save_for_backward(features, weight, grad_logits)
        ctx.has_bias = bias is not None
        return total / len(targets)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_loss: Tensor
    ) -> tuple[Tensor | None, ...]:
        features, weight, grad_logits = ctx.saved_tensors
        if bool(grad_loss != 1.0):  # 1 for a loss that is not scaled: no 64 MB copy
            grad_logits = grad_logits * grad_loss
        grad_features = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_features = grad_logits @ weight
        if ctx.needs_input_grad[1]:
            grad_weight = grad_logits.t() @ features
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_logits.sum(dim=0)
        return grad_features, grad_weight, grad_bias, None, None, None
