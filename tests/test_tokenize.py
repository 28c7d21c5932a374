"""SentencePiece wrapper: normalisation, words of pieces, characters never seen in training."""

from __future__ import annotations

import random

import pytest

from attnviz.errors import CheckpointError
from attnviz.tokenize import (
    EOS_PIECE,
    SentencePieceTokenizer,
    Tokenizer,
    group_words,
    normalize_text,
    train_tokenizer,
    word_of_piece,
)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    rng = random.Random(0)
    vocab = ["the", "red", "car", "is", "fast", "la", "voiture", "rouge", "est", "rapide"]
    texts = [" ".join(rng.choices(vocab, k=6)) + "." for _ in range(2000)]
    return train_tokenizer(texts, vocab_size=300)


def test_normalize_text_makes_nfc_and_plain_spaces():
    assert normalize_text("  Cafe\u0301\u202f!\u00a0ok\t\n") == "Café ! ok"


def test_round_trip_of_known_text(tokenizer):
    text = "the red car is fast."
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert "".join(tokenizer.pieces(text)).replace("▁", " ").strip() == text


@pytest.mark.parametrize(
    "text",
    ["Grüße 😀 日本語 👩‍👩‍👧", "<script>alert(1)</script>", "ÅÅÅ ẞ ﬁ", "a\u0000b", "\U0010ffff"],
)
def test_characters_never_seen_survive(tokenizer, text):
    ids = tokenizer.encode(text)
    assert 1 not in ids  # byte fallback: nothing becomes <unk>
    assert tokenizer.decode(ids) == normalize_text(text)


def test_words_of_pieces_are_shown_as_typed(tokenizer):
    pieces = tokenizer.pieces("the voiture 😀 Grüße") + [EOS_PIECE]
    mapping = word_of_piece(pieces)
    assert mapping[0] == 0 and mapping[-1] == 4
    assert mapping == sorted(mapping)
    assert group_words(tokenizer, pieces) == ["the", "voiture", "😀", "Grüße", EOS_PIECE]


def test_word_of_piece_by_hand():
    assert word_of_piece(["▁The", "▁red", "d", "ish", "▁car", "</s>"]) == [0, 1, 1, 1, 2, 3]
    assert word_of_piece([]) == []


def test_bad_model_bytes_raise_checkpoint_error():
    with pytest.raises(CheckpointError, match="SentencePiece"):
        SentencePieceTokenizer(b"definitely not a protobuf")


def test_model_without_the_reserved_ids_is_rejected(tmp_path):
    import io

    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter(["a b c d e f g"] * 50),
        model_writer=proto,
        vocab_size=12,
        minloglevel=2,
    )
    with pytest.raises(CheckpointError, match="reserve ids"):
        SentencePieceTokenizer(proto.getvalue())
