"""Training: batching of token-id pairs and the teacher-forced loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .model import AttentionRNN


def make_batch(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, bos_id: int, eos_id: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad a list of (source ids, target ids) pairs; EOS is appended to both sides.

    returns src (batch, src_len), src_lengths (batch,), tgt_in (batch, tgt_len) starting with
    BOS, tgt_out (batch, tgt_len) ending with EOS and padded with pad_id.
    """
    src_len = max(len(s) for s, _ in pairs) + 1
    tgt_len = max(len(t) for _, t in pairs) + 1
    src = torch.full((len(pairs), src_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((len(pairs), tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((len(pairs), tgt_len), pad_id, dtype=torch.long)
    lengths = torch.empty(len(pairs), dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s) + 1] = torch.tensor([*s, eos_id])
        tgt_in[i, : len(t) + 1] = torch.tensor([bos_id, *t])
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, eos_id])
        lengths[i] = len(s) + 1
    return src, lengths, tgt_in, tgt_out


def batch_loss(
    model: AttentionRNN,
    src: Tensor,
    src_lengths: Tensor,
    tgt_in: Tensor,
    tgt_out: Tensor,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, int]:
    """Mean cross-entropy per target token, and the number of target tokens.

    src: (batch, src_len); src_lengths: (batch,); tgt_in, tgt_out: (batch, tgt_len)
    """
    logits, _ = model(src, src_lengths, tgt_in)
    pad = model.config.pad_id
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        tgt_out.reshape(-1),
        ignore_index=pad,
        label_smoothing=label_smoothing,
    )
    return loss, int((tgt_out != pad).sum())
