"""SentencePiece tokenization: text <-> pieces, piece -> word grouping, detokenization.

One joint model serves source and target. Ids 0-3 are reserved for padding, unknown,
beginning and end of sentence. Byte fallback keeps characters never seen in training (emoji,
other scripts): they become byte pieces such as ``<0xF0>`` and decode back to what was typed.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from .errors import CheckpointError, InputError

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "EOS_PIECE",
    "PAD_ID",
    "SPECIAL_IDS",
    "UNK_ID",
    "WORD_START",
    "Tokenizer",
    "group_words",
    "normalize_text",
    "train_tokenizer",
    "word_of_piece",
]

WORD_START = "\u2581"  # SentencePiece's "▁": this piece begins a new word
EOS_PIECE = "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# The ids every attnviz SentencePiece model reserves, as (pad, unk, bos, eos). They are the
# defaults of ModelConfig; code that has a model at hand reads the model's own ids from its
# config instead, since a model imported from another toolkit may reserve others.
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


def normalize_text(text: str) -> str:
    """NFC, every kind of whitespace (incl. narrow no-break space) as one plain space.

    A typed "▁" counts as whitespace too: SentencePiece reads it as a word boundary, so
    keeping it would give more words in the pieces than in the text.

    Raises InputError for lone surrogates: bytes that were not UTF-8, decoded with Python's
    ``surrogateescape`` (standard input in a C locale, the CLI's input files), which no
    tokenizer can read.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the text is not valid UTF-8 (an undecodable byte at character {exc.start + 1}); "
            "save it as UTF-8"
        ) from None
    return " ".join(unicodedata.normalize("NFC", text).replace(WORD_START, " ").split())


class Tokenizer:
    """A loaded SentencePiece model. Immutable after construction and safe across threads."""

    def __init__(self, model_proto: bytes) -> None:
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(model_proto)
        except Exception as exc:  # sentencepiece raises RuntimeError/OSError on bad protos
            raise CheckpointError(f"not a valid SentencePiece model: {exc}") from None
        special = (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id())
        if processor.GetPieceSize() < 5 or special != SPECIAL_IDS:
            raise CheckpointError(
                "SentencePiece model must reserve ids pad=0 unk=1 bos=2 eos=3 "
                "(train it with attnviz.tokenize.train_tokenizer)"
            )
        self._sp = processor
        self.model_proto = model_proto

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        return cls(Path(path).read_bytes())

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (normalised first), without BOS/EOS."""
        return self._sp.EncodeAsIds(normalize_text(text))

    def pieces(self, text: str) -> list[str]:
        return [self._sp.IdToPiece(i) for i in self.encode(text)]

    def id_to_piece(self, token_id: int) -> str:
        if token_id == EOS_ID:
            return EOS_PIECE
        return self._sp.IdToPiece(int(token_id))

    def piece_to_id(self, piece: str) -> int:
        if piece == EOS_PIECE:
            return EOS_ID
        return self._sp.PieceToId(piece)

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenize ids; special ids (pad, bos, eos) are dropped."""
        return self._sp.DecodeIds([int(i) for i in ids if i > BOS_ID])

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        return self.decode(self.piece_to_id(p) for p in pieces if p != EOS_PIECE)


def without_eos(pieces: Sequence[str]) -> list[str]:
    """``pieces`` without the "</s>" that a finished side ends with.

    A source always ends with "</s>"; a target does unless the search stopped at the length
    limit. That "</s>" stands for no word of the text, so its attention row or column takes
    no part in alignments or coverage. The one place that knows this rule.
    """
    return list(pieces[:-1] if pieces and pieces[-1] == EOS_PIECE else pieces)


def word_of_piece(pieces: Sequence[str]) -> list[int]:
    """Index of the word each piece belongs to. A word starts at a piece beginning with "▁";
    "</s>" is a word of its own.

    >>> word_of_piece(["▁The", "▁red", "d", "ish", "▁car", "</s>"])
    [0, 1, 1, 1, 2, 3]
    """
    words: list[int] = []
    current = -1
    for i, piece in enumerate(pieces):
        starts = i == 0 or piece.startswith(WORD_START) or piece == EOS_PIECE
        starts = starts or (i > 0 and pieces[i - 1] == EOS_PIECE)
        if starts:
            current += 1
        words.append(current)
    return words


def group_words(tokenizer: Tokenizer, pieces: Sequence[str]) -> list[str]:
    """The words of ``pieces`` as text (byte pieces decoded back to what was typed).

    A word that decodes to nothing visible (a model may output "<s>", "<pad>" or "<unk>",
    which decoding drops, or a byte piece of a space) is shown as its pieces, so that every
    word has a visible label (and is not lost when the words are joined and split again).
    """
    mapping = word_of_piece(pieces)
    groups: list[list[str]] = [[] for _ in range(mapping[-1] + 1 if mapping else 0)]
    for piece, word in zip(pieces, mapping, strict=True):
        groups[word].append(piece)
    return [EOS_PIECE if group == [EOS_PIECE] else _word_text(tokenizer, group) for group in groups]


def _word_text(tokenizer: Tokenizer, group: list[str]) -> str:
    text = tokenizer.decode_pieces(group)
    return text if text.strip() else "".join(group)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    max_sentences: int = 2_000_000,
) -> Tokenizer:
    """Train a joint SentencePiece model on ``texts`` (both languages) in memory."""
    proto = io.BytesIO()
    spm.SentencePieceTrainer.Train(
        sentence_iterator=(normalize_text(t) for t in texts),
        model_writer=proto,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        byte_fallback=True,
        # normalize_text already did NFC and whitespace; NFKC would change what people typed
        # ("ﬁ" -> "fi", "²" -> "2") and the app shows tokens as typed.
        normalization_rule_name="identity",
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        hard_vocab_limit=False,
        num_threads=2,
        minloglevel=2,
    )
    return Tokenizer(proto.getvalue())
