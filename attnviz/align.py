"""Attention as alignment: word-level aggregation and hard links from soft attention."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def word_attention(
    attention: np.ndarray,
    source_word_of_piece: Sequence[int],
    target_word_of_piece: Sequence[int],
) -> np.ndarray:
    """Piece attention (tgt_pieces, src_pieces) -> word attention (tgt_words, src_words).

    A source word receives the sum of its pieces' weights (rows still sum to 1); a target
    word's row is the mean of its pieces' rows.
    """
    src = np.asarray(source_word_of_piece)
    tgt = np.asarray(target_word_of_piece)
    summed = np.zeros((attention.shape[0], src.max() + 1))
    np.add.at(summed.T, src, attention.T)
    words = np.zeros((tgt.max() + 1, summed.shape[1]))
    np.add.at(words, tgt, summed)
    return words / np.bincount(tgt)[:, None]


def argmax_links(attention: np.ndarray, skip_last: bool = True) -> list[tuple[int, int]]:
    """(source, target) links: each target row to its most attended source position.

    With ``skip_last`` the end-of-sentence row and column take no part (they align nothing).
    """
    rows, cols = attention.shape
    if skip_last:
        rows, cols = rows - 1, cols - 1
    if rows <= 0 or cols <= 0:
        return []
    best = attention[:rows, :cols].argmax(axis=1)
    return [(int(j), i) for i, j in enumerate(best)]
