"""Padded batches: (source ids, target ids) pairs -> the tensors the model trains on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["make_batch", "process_share"]


def make_batch(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    bos_id: int,
    eos_id: int,
    source_eos: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad a list of (source ids, target ids) pairs; EOS is appended to the target, and to
    the source unless ``source_eos`` is False (models that read sources without it).

    returns src (batch, src_len), src_lengths (batch,), tgt_in (batch, tgt_len) starting with
    BOS, tgt_out (batch, tgt_len) ending with EOS and padded with pad_id.
    """
    eos = [eos_id] if source_eos else []
    src_len = max(len(s) for s, _ in pairs) + len(eos)
    tgt_len = max(len(t) for _, t in pairs) + 1
    src = torch.full((len(pairs), src_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((len(pairs), tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((len(pairs), tgt_len), pad_id, dtype=torch.long)
    lengths = torch.empty(len(pairs), dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s) + len(eos)] = torch.tensor([*s, *eos])
        tgt_in[i, : len(t) + 1] = torch.tensor([bos_id, *t])
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, eos_id])
        lengths[i] = len(s) + len(eos)
    return src, lengths, tgt_in, tgt_out


def process_share(batches: Sequence[Sequence[int]], rank: int, world: int) -> list[list[int]]:
    """Process ``rank``'s part of each of ``batches`` (what one process would train on), when
    ``world`` processes train data-parallel: every world-th item of each batch, starting at
    ``rank``. A batch holds pairs sorted by length (``bucket_batches``), so every process
    gets as many pairs of the same lengths, and none waits for a longer share at the
    gradients' exchange; together they train on the one process's batches. Batches of fewer
    items than processes are left out.
    """
    return [list(batch[rank::world]) for batch in batches if len(batch) >= world]
