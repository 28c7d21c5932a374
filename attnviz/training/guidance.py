"""Guided alignment training: a word aligner's links as a target for the attention.

The loss is Chen et al.'s (2016) and Marian's ``--guided-alignment ce``: the cross-entropy
between the attention and the links, one target row per output step. The links come in
words, the model attends over pieces:

- every piece of a linked source word is linked with every piece of the linked target word;
- each target piece's row is normalised to a distribution over the source pieces that gives
  each linked source word an equal share (:func:`piece_links` says why);
- rows without links (target words the aligner left unaligned, padding) contribute nothing:
  the loss is the mean over the rows that have links; with ``null``, the unaligned words'
  rows are linked to the source "</s>" instead, IBM's empty word: the attention then says
  "no link" where the aligner does, and link readers leave such a word unaligned
  (:data:`attnviz.model.ModelConfig.null_attention`);
- the last step, which outputs "</s>", is linked to the source "</s>": both mark the end of
  the sentence, the one correspondence known without an aligner, so the "</s>" row that
  every heatmap draws points at the end of the source rather than at some word. Without
  ``null`` no other row is pointed at the source "</s>"; the word rows are drawn away from
  it, as the links give it no share.

The links of the training pairs come from :data:`LINKS_FILE` in the run's output folder, one
Pharaoh line per training pair, in the order :func:`attnviz.training.corpora.split_corpora`
gives the training pairs (before the length filter), 0-based indices of the whitespace
words of the pair's (normalised) text, source first. The word aligner writes it before
training starts; anyone can put their own aligner's links there instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..align.gold import Link, read_pharaoh
from ..data import EncodedPair, Pair
from ..errors import InputError
from ..tokenize import Tokenizer, word_of_piece

__all__ = [
    "LINKS_FILE",
    "PieceLinks",
    "guidance_loss",
    "link_targets",
    "piece_links",
    "read_word_links",
    "training_piece_links",
]

LINKS_FILE = "word_links.pharaoh"  # in the run's output folder
# The smallest attention weight whose log is taken: softmax can underflow to exactly 0.
_SMALLEST_WEIGHT = 1e-12


def read_word_links(folder: Path, pairs: Sequence[Pair]) -> list[set[Link]]:
    """The word links of ``pairs`` (the recipe's training pairs, in order) from
    ``folder / LINKS_FILE``; InputError when the file is missing, has another number of lines
    than there are pairs, or links a word that its pair does not have."""
    path = folder / LINKS_FILE
    contract = (
        f"guided alignment training ([guidance] weight > 0) needs {path}: one Pharaoh line "
        f"(0-based word links, source first) per training pair, in the order of the "
        f"recipe's training corpus, which has {len(pairs)} pairs"
    )
    if not path.is_file():
        raise InputError(f"{contract}; the file does not exist (the word aligner writes it)")
    lengths = [(len(p.source.split()), len(p.target.split())) for p in pairs]
    try:
        return read_pharaoh(path, lengths)
    except InputError as exc:
        raise InputError(f"{contract}; {exc}") from None


class PieceLinks(NamedTuple):
    """The links of one pair as target distributions over the source pieces.

    pieces:  (links, 2) int16, (source piece, target piece) of each link
    weights: (links,) float32, the link's share of its target piece's row (rows sum to 1)
    """

    pieces: np.ndarray
    weights: np.ndarray


def piece_links(
    links: set[Link],
    source_word_of_piece: Sequence[int],
    target_word_of_piece: Sequence[int],
    null: bool = False,
) -> PieceLinks:
    """Word links -> piece links, "</s>" to "</s>" included.

    Every piece of a linked source word is linked with every piece of the linked target word.
    A target piece's row gives each of its linked source words an equal share, split evenly
    among that word's pieces: attnviz reads a word's attention as the sum over its pieces,
    so the target is "these words, equally", and a word cut into many pieces does not
    outweigh a one-piece word.

    links: (source word, target word) links; *_word_of_piece: the word of each piece of a
    side, without "</s>" (the "</s>" pieces are then at index ``len(*_word_of_piece)``, where
    ``make_batch`` puts them). A link to a word that has no piece is left out. ``null``: the
    pieces of a target word without any link are linked to the source "</s>".
    """
    source_pieces: dict[int, list[int]] = {}
    for piece, word in enumerate(source_word_of_piece):
        source_pieces.setdefault(word, []).append(piece)
    sources_of_target: dict[int, list[int]] = {}
    for s, t in sorted(links):
        if s in source_pieces:
            sources_of_target.setdefault(t, []).append(s)
    found: list[tuple[int, int, float]] = []
    eos = len(source_word_of_piece)
    linked = {t for _, t in links}
    for j, t in enumerate(target_word_of_piece):
        if null and t not in linked:
            found.append((eos, j, 1.0))
        words = sources_of_target.get(t, [])
        for s in words:
            share = 1.0 / (len(words) * len(source_pieces[s]))
            found += [(i, j, share) for i in source_pieces[s]]
    found.append((eos, len(target_word_of_piece), 1.0))
    return PieceLinks(
        np.array([(i, j) for i, j, _ in found], dtype=np.int16),
        np.array([w for _, _, w in found], dtype=np.float32),
    )


def training_piece_links(
    links: Sequence[set[Link]], encoded: Sequence[EncodedPair], tokenizer: Tokenizer
) -> list[PieceLinks]:
    """:func:`piece_links` of each encoded training pair (ids without "</s>")."""
    return [
        piece_links(
            pair_links,
            word_of_piece([tokenizer.id_to_piece(i) for i in source]),
            word_of_piece([tokenizer.id_to_piece(i) for i in target]),
        )
        for pair_links, (source, target) in zip(links, encoded, strict=True)
    ]


def link_targets(links: Sequence[PieceLinks], src_len: int, tgt_len: int) -> Tensor:
    """The target distributions of a batch: row t of pair b is target piece t's share of
    the source pieces (all zero when the piece has no link, and for padding).

    links: per pair, from :func:`piece_links`
    returns (batch, tgt_len, src_len) float, the shape of the batch's attention
    """
    targets = torch.zeros(len(links), tgt_len, src_len)
    for row, pair_links in enumerate(links):
        index = torch.from_numpy(pair_links.pieces.astype(np.int64))
        targets[row, index[:, 1], index[:, 0]] = torch.from_numpy(pair_links.weights)
    return targets


def guidance_loss(attention: Tensor, targets: Tensor, heads: str | int) -> Tensor:
    """Mean cross-entropy between the links and the attention over the rows that have links.

    attention: (batch, tgt_len, heads, src_len) from ``AttentionRNN.forward``
    targets:   (batch, tgt_len, src_len) from :func:`link_targets`
    heads:     "all" guides the mean over heads, an index that head alone
    returns a scalar (0 with no gradient-carrying terms when no row has links)
    """
    guided = attention.mean(dim=2) if heads == "all" else attention[:, :, int(heads)]
    cross_entropy = -(targets * guided.clamp_min(_SMALLEST_WEIGHT).log()).sum(-1)
    linked = targets.sum(-1) > 0  # (batch, tgt_len)
    return cross_entropy.sum() / linked.sum().clamp_min(1)
