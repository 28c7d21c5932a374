"""The teacher-forced loss and one optimizer step: the one training step that the loop,
``attnviz bench`` and the tests' small models all take."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tokenize import PAD_ID

__all__ = ["batch_loss", "train_step"]


def batch_loss(
    model: torch.nn.Module,
    src: Tensor,
    src_lengths: Tensor,
    tgt_in: Tensor,
    tgt_out: Tensor,
    label_smoothing: float = 0.0,
    pad_id: int = PAD_ID,
) -> tuple[Tensor, int]:
    """Mean cross-entropy per target token, and the number of target tokens.

    src: (batch, src_len); src_lengths: (batch,); tgt_in, tgt_out: (batch, tgt_len)
    """
    logits, _ = model(src, src_lengths, tgt_in)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        tgt_out.reshape(-1),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )
    return loss, int((tgt_out != pad_id).sum())


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    *,
    clip: float,
    label_smoothing: float = 0.0,
    pad_id: int = PAD_ID,
    lr: float | None = None,
) -> tuple[float, int]:
    """Forward, backward, gradient clipping and one optimizer step on one batch.

    model: the model in training mode (or its DistributedDataParallel wrapper, which averages
    the gradients across processes during ``backward``); batch: src (batch, src_len),
    src_lengths (batch,), tgt_in and tgt_out (batch, tgt_len), as from ``make_batch``;
    clip: the largest gradient norm; lr: the rate of this step for every parameter group
    (None keeps the optimizer's). Returns the batch's mean loss per target token and the
    number of target tokens.
    """
    loss, tokens = batch_loss(model, *batch, label_smoothing, pad_id)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.step()
    return loss.item(), tokens
