"""A toolkit's vocabulary file: one piece per line, the line number is the piece's id.

Joey NMT writes its ``src_vocab.txt``/``trg_vocab.txt`` this way and reads them back with
``str.splitlines``; attnviz's OpenNMT-py importer writes the vocabulary stored in the
checkpoint in the same format. The special pieces are found by name: Joey NMT reserves
``<unk> <pad> <s> </s>`` (ids 0-3 by default), OpenNMT-py ``<unk> <blank> <s> </s>``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import CheckpointError
from .pieces import EOS_PIECE

__all__ = ["BOS_PIECE", "PAD_PIECES", "UNK_PIECE", "Vocabulary"]

UNK_PIECE = "<unk>"
PAD_PIECES = ("<pad>", "<blank>")  # Joey NMT's, OpenNMT-py's
BOS_PIECE = "<s>"


class Vocabulary:
    """Pieces <-> ids of one side; a piece outside it has the unknown id."""

    def __init__(self, pieces: Sequence[str], name: str = "vocabulary") -> None:
        self.pieces = list(pieces)
        self.ids = {piece: i for i, piece in enumerate(self.pieces)}
        if len(self.ids) != len(self.pieces):
            seen: set[str] = set()
            twice = next(p for p in self.pieces if p in seen or seen.add(p))
            raise CheckpointError(f"{name}: the piece {twice!r} is listed twice")
        pad = [p for p in PAD_PIECES if p in self.ids]
        missing = [p for p in (UNK_PIECE, BOS_PIECE, EOS_PIECE) if p not in self.ids]
        if missing or not pad:
            raise CheckpointError(
                f"{name}: the special pieces {', '.join(missing + ([] if pad else ['<pad>']))} "
                f"are missing; a vocabulary lists {UNK_PIECE}, <pad> or <blank>, {BOS_PIECE} "
                f"and {EOS_PIECE}"
            )
        self.pad_piece = pad[0]
        self.special_ids = (
            self.ids[self.pad_piece],
            self.ids[UNK_PIECE],
            self.ids[BOS_PIECE],
            self.ids[EOS_PIECE],
        )
        self.unk_id = self.ids[UNK_PIECE]

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "vocabulary") -> Vocabulary:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(f"{name}: not UTF-8 text") from None
        return cls(text.splitlines(), name)

    def __len__(self) -> int:
        return len(self.pieces)

    def lookup(self, piece: str) -> int:
        return self.ids.get(piece, self.unk_id)

    @property
    def special_pieces(self) -> frozenset[str]:
        """Padding, beginning and end of sentence: pieces that stand for no text."""
        return frozenset((self.pad_piece, BOS_PIECE, EOS_PIECE))
