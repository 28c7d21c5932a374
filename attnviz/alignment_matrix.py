"""What an alignment heatmap of one translation draws: its attention by word or by piece and
the hard links read off that very attention. The Align view and ``attnviz bench`` build their
figure from it; the exports write what it holds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .align import UNITS, Link, own_links, sorted_links, word_attention
from .translator import Translation

__all__ = ["AlignmentMatrix", "alignment_matrix"]


@dataclass(frozen=True)
class AlignmentMatrix:
    """Rows are target tokens, columns source tokens, both in ``unit``.

    attention: (tgt_len, src_len) in ``unit``; rows sum to 1.
    links: (source index, target index) pairs into ``source`` and ``target``, ordered by
    target; empty when not asked for.
    """

    unit: str
    source: list[str]
    target: list[str]
    attention: np.ndarray
    links: list[Link]


def alignment_matrix(translation: Translation, unit: str, links: bool) -> AlignmentMatrix:
    """``translation``'s attention in ``unit`` ("words" or "pieces"), with its hard links
    when ``links``."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    found = sorted_links(own_links(translation, unit=unit)) if links else []
    if unit == "pieces":
        return AlignmentMatrix(
            unit, translation.source_pieces, translation.target_pieces, translation.attention, found
        )
    attention = word_attention(
        translation.attention, translation.source_word_of_piece, translation.target_word_of_piece
    )
    return AlignmentMatrix(
        unit, translation.source_words, translation.target_words, attention, found
    )
