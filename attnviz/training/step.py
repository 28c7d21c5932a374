"""The teacher-forced loss and one optimizer step: the one training step that the loop,
``attnviz bench`` and the tests' small models all take, and its guided twin, which adds the
guidance loss on the attention (:mod:`attnviz.training.guidance`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from ..model import AttentionRNN
from ..tokenize import PAD_ID
from .guidance import guidance_loss
from .output_loss import output_loss

__all__ = ["adam", "batch_loss", "guided_train_step", "train_step"]


def adam(parameters: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam as every training run takes its steps: PyTorch's fused kernel, which updates each
    parameter in one pass. The default on the CPU walks each tensor about a dozen times: for
    a flagship model's 4 M parameters, 16.9 ms a step against 3.3 ms on one thread, about 4%
    of a training step (the README). The steps are the same within rounding (tests)."""
    return torch.optim.Adam(parameters, lr=lr, fused=True)


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

    model: an AttentionRNN or its DistributedDataParallel wrapper;
    src: (batch, src_len); src_lengths: (batch,); tgt_in, tgt_out: (batch, tgt_len)
    """
    features, _ = model(src, src_lengths, tgt_in, features=True)
    return _translation_loss(model, features, tgt_out, label_smoothing, pad_id), int(
        (tgt_out != pad_id).sum()
    )


def _translation_loss(
    model: torch.nn.Module, features: Tensor, tgt_out: Tensor, label_smoothing: float, pad_id: int
) -> Tensor:
    """The mean label-smoothed cross-entropy over the non-padding target tokens, with the
    output layer applied to those rows only (``output_loss``).

    features: (batch, tgt_len, out_features) from ``forward(..., features=True)``;
    tgt_out: (batch, tgt_len)
    """
    network: AttentionRNN = getattr(model, "module", model)  # inside DDP's wrapper
    weight, bias = network.output_layer()
    tokens = tgt_out != pad_id
    return output_loss(features[tokens], weight, bias, tgt_out[tokens], label_smoothing)


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
    _update(model, optimizer, loss, clip, lr)
    return loss.item(), tokens


def guided_train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    targets: Tensor,
    *,
    weight: float,
    heads: str | int,
    clip: float,
    label_smoothing: float = 0.0,
    pad_id: int = PAD_ID,
    lr: float | None = None,
) -> tuple[float, float, int]:
    """:func:`train_step` on the translation loss plus ``weight`` times the guidance loss.

    targets: (batch, tgt_len, src_len) the links as distributions, from ``link_targets``;
    heads: "all" or the index of the guided head (see ``guidance_loss``). Returns the mean
    translation loss per target token, the guidance loss (unweighted) and the number of
    target tokens.
    """
    src, src_lengths, tgt_in, tgt_out = batch
    features, attention = model(src, src_lengths, tgt_in, return_attention=True, features=True)
    translation = _translation_loss(model, features, tgt_out, label_smoothing, pad_id)
    guidance = guidance_loss(attention, targets, heads)
    _update(model, optimizer, translation + weight * guidance, clip, lr)
    return translation.item(), guidance.item(), int((tgt_out != pad_id).sum())


def _update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: Tensor,
    clip: float,
    lr: float | None,
) -> None:
    """Backward, gradient clipping, the step's rate, one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.step()
