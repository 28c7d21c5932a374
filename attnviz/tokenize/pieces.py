"""What every tokenizer kind shares: the :class:`Tokenizer` protocol, the reserved pieces,
text normalisation and grouping pieces into words."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ..errors import InputError

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "EOS_PIECE",
    "PAD_ID",
    "SPECIAL_IDS",
    "UNK_ID",
    "WORD_START",
    "Tokenizer",
    "check_utf8",
    "group_words",
    "normalize_text",
    "pieces_to_words",
    "without_eos",
    "word_of_piece",
]

WORD_START = "\u2581"  # SentencePiece's "▁": this piece begins a new word
# The end-of-sentence piece of attnviz's models and of Joey NMT's and OpenNMT-py's vocabularies.
EOS_PIECE = "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# The ids every attnviz SentencePiece model reserves, as (pad, unk, bos, eos). They are the
# defaults of ModelConfig; code that has a model at hand reads the model's own ids from its
# config instead, since a model imported from another toolkit may reserve others.
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


class Tokenizer(Protocol):
    """One side's tokenizer (source or target): text <-> pieces <-> ids, and words.

    A piece is what the model reads or writes (a SentencePiece piece, a BPE unit such as
    "th@@", a word); its id is its row in the model's embedding. Implementations are
    immutable after construction and safe across threads.
    """

    @property
    def vocab_size(self) -> int:
        """Number of ids (the model's embedding rows on this side)."""
        ...

    @property
    def special_ids(self) -> tuple[int, int, int, int]:
        """The (pad, unk, bos, eos) ids this tokenizer reserves."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (pre-processed first), without BOS/EOS."""
        ...

    def pieces(self, text: str) -> list[str]:
        """The pieces of ``text`` before they become ids (a piece outside the vocabulary
        keeps its text here and becomes the unknown id in :meth:`encode`)."""
        ...

    def id_to_piece(self, token_id: int) -> str: ...

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece``; the unknown id for a piece outside the vocabulary."""
        ...

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a model's output ids, as the toolkit that made the model prints it."""
        ...

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        """The text of a few pieces (e.g. one word), special pieces kept as they are."""
        ...

    def word_of_piece(self, pieces: Sequence[str]) -> list[int]:
        """Index of the word each piece belongs to; "</s>" is a word of its own."""
        ...


def check_utf8(text: str) -> str:
    """``text`` unchanged; InputError for lone surrogates: bytes that were not UTF-8, decoded
    with Python's ``surrogateescape`` (standard input in a C locale, the CLI's input files),
    which no tokenizer can read."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the text is not valid UTF-8 (an undecodable byte at character {exc.start + 1}); "
            "save it as UTF-8"
        ) from None
    return text


def normalize_text(text: str) -> str:
    """NFC, every kind of whitespace (incl. narrow no-break space) as one plain space.

    A typed "▁" counts as whitespace too: SentencePiece reads it as a word boundary, so
    keeping it would give more words in the pieces than in the text.

    Raises InputError for text that is not valid UTF-8 (see :func:`check_utf8`).
    """
    check_utf8(text)
    return " ".join(unicodedata.normalize("NFC", text).replace(WORD_START, " ").split())


def without_eos(pieces: Sequence[str]) -> list[str]:
    """``pieces`` without the "</s>" that a finished side ends with.

    A source always ends with "</s>"; a target does unless the search stopped at the length
    limit. That "</s>" stands for no word of the text, so its attention row or column takes
    no part in alignments or coverage. The one place that knows this rule.
    """
    return list(pieces[:-1] if pieces and pieces[-1] == EOS_PIECE else pieces)


def pieces_to_words(pieces: Sequence[str], starts_word: Callable[[int], bool]) -> list[int]:
    """Word index of each piece, where ``starts_word(i)`` says piece i begins a new word.

    The first piece, "</s>" and the piece after "</s>" always begin one.
    """
    words: list[int] = []
    current = -1
    for i, piece in enumerate(pieces):
        starts = i == 0 or piece == EOS_PIECE or pieces[i - 1] == EOS_PIECE or starts_word(i)
        if starts:
            current += 1
        words.append(current)
    return words


def word_of_piece(pieces: Sequence[str]) -> list[int]:
    """Index of the word each SentencePiece piece belongs to. A word starts at a piece
    beginning with "▁"; "</s>" is a word of its own.

    >>> word_of_piece(["▁The", "▁red", "d", "ish", "▁car", "</s>"])
    [0, 1, 1, 1, 2, 3]
    """
    return pieces_to_words(pieces, lambda i: pieces[i].startswith(WORD_START))


def group_words(tokenizer: Tokenizer, pieces: Sequence[str]) -> list[str]:
    """The words of ``pieces`` as text (byte pieces decoded back to what was typed, BPE
    separators removed, Moses escapes undone).

    A word that decodes to nothing visible (a model may output "<s>", "<pad>" or "<unk>",
    which decoding drops, or a byte piece of a space) is shown as its pieces, so that every
    word has a visible label (and is not lost when the words are joined and split again).
    """
    mapping = tokenizer.word_of_piece(pieces)
    groups: list[list[str]] = [[] for _ in range(mapping[-1] + 1 if mapping else 0)]
    for piece, word in zip(pieces, mapping, strict=True):
        groups[word].append(piece)
    return [EOS_PIECE if group == [EOS_PIECE] else _word_text(tokenizer, group) for group in groups]


def _word_text(tokenizer: Tokenizer, group: list[str]) -> str:
    text = tokenizer.decode_pieces(group)
    return text if text.strip() else "".join(group)
