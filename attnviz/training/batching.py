"""Padded batches: (source ids, target ids) pairs -> the tensors the model trains on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["make_batch"]


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
