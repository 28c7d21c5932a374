"""attnviz's own tokenizer: one joint SentencePiece model for source and target.

Ids 0-3 are reserved for padding, unknown, beginning and end of sentence. Byte fallback keeps
characters never seen in training (emoji, other scripts): they become byte pieces such as
``<0xF0>`` and decode back to what was typed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from ..errors import CheckpointError
from .pieces import BOS_ID, EOS_ID, EOS_PIECE, PAD_ID, SPECIAL_IDS, UNK_ID, normalize_text
from .pieces import word_of_piece as sentencepiece_word_of_piece

__all__ = ["SentencePieceTokenizer", "load_sentencepiece", "train_tokenizer"]


def load_sentencepiece(model_proto: bytes) -> spm.SentencePieceProcessor:
    """A SentencePiece processor of ``model_proto``; CheckpointError when it is not one."""
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model_proto)
    except Exception as exc:  # sentencepiece raises RuntimeError/OSError on bad protos
        raise CheckpointError(f"not a valid SentencePiece model: {exc}") from None
    return processor


class SentencePieceTokenizer:
    """A SentencePiece model whose own ids are the model's ids (attnviz's models).

    Implements :class:`attnviz.tokenize.Tokenizer`. Immutable after construction and safe
    across threads.
    """

    def __init__(self, model_proto: bytes) -> None:
        processor = load_sentencepiece(model_proto)
        special = (processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id())
        if processor.GetPieceSize() < 5 or special != SPECIAL_IDS:
            raise CheckpointError(
                "SentencePiece model must reserve ids pad=0 unk=1 bos=2 eos=3 "
                "(train it with attnviz.tokenize.train_tokenizer)"
            )
        self._sp = processor
        self.model_proto = model_proto

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceTokenizer:
        return cls(Path(path).read_bytes())

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def special_ids(self) -> tuple[int, int, int, int]:
        return SPECIAL_IDS

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
        """Detokenize ids; special ids (pad, unk, bos, eos) are dropped."""
        return self._sp.DecodeIds([int(i) for i in ids if i > BOS_ID])

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        return self.decode(self.piece_to_id(p) for p in pieces if p != EOS_PIECE)

    def word_of_piece(self, pieces: Sequence[str]) -> list[int]:
        return sentencepiece_word_of_piece(pieces)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    max_sentences: int = 2_000_000,
) -> SentencePieceTokenizer:
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
    return SentencePieceTokenizer(proto.getvalue())
