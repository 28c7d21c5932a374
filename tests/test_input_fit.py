"""Signals that a sentence does not fit a model, measured on the shipped tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnviz.input_fit import input_fit, script_of
from attnviz.tokenize import SentencePieceTokenizer, Tokenizer

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def tokenizer(model: str) -> Tokenizer:
    return SentencePieceTokenizer.from_file(PRETRAINED / model / "spm.model")


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ("en-fr-additive", "The dog is running in the snow."),
        ("fr-en-additive", "J'ai froid."),
        ("dates-additive", "Thursday, 1 February 1962"),
        ("reversal-additive", "h i d z t f l"),
    ],
)
def test_a_sentence_like_the_training_data_fits(model, text):
    fit = input_fit(tokenizer(model), text)
    assert fit.pieces > 0 and fit.unfamiliar_share == 0.0
    assert fit.unseen_characters == "" and fit.warning() is None


def test_chinese_into_an_english_model_is_a_script_it_never_saw():
    fit = input_fit(tokenizer("en-fr-additive"), "我喜欢猫")
    assert fit.unseen_characters == "我喜欢猫" and fit.unseen_scripts == ("CJK",)
    assert fit.byte_pieces == 12 and fit.unknown == 0  # three UTF-8 bytes per character
    assert fit.unfamiliar_share == pytest.approx(12 / 13)
    assert "我 喜 欢 猫" in fit.warning() and "CJK" in fit.warning()


def test_an_emoji_becomes_byte_pieces_and_is_named():
    fit = input_fit(tokenizer("en-fr-additive"), "I love 🍕")
    assert fit.unseen_characters == "🍕" and fit.byte_pieces == 4
    assert "🍕" in fit.warning() and "4 of 7 pieces" in fit.warning()


@pytest.mark.parametrize("model", ["reversal-additive", "dates-additive"])
def test_english_into_a_synthetic_model_is_flagged(model):
    fit = input_fit(tokenizer(model), "The red car is fast.")
    assert fit.byte_pieces > 0 and "." in fit.unseen_characters
    assert fit.warning() is not None


def test_empty_text_has_no_pieces_and_no_warning():
    fit = input_fit(tokenizer("en-fr-additive"), "   ")
    assert (fit.pieces, fit.unfamiliar_share, fit.warning()) == (0, 0.0, None)


def test_scripts_of_characters():
    assert [script_of(c) for c in "aЖ猫7.🍕"] == [
        "LATIN",
        "CYRILLIC",
        "CJK",
        "digit",
        "punctuation",
        "symbol",
    ]
