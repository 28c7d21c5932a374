"""Align: translate a sentence and show which source tokens each output token attended to."""

from __future__ import annotations

import streamlit as st

from ..align import (
    format_pharaoh,
    own_links,
    sorted_links,
    word_attention,
)
from ..figures import attention_heatmap
from ..translator import Translation, Translator
from .downloads import download_row, file_stem, show_figure
from .inputs import beam_input, sentence_input
from .models import translation_or_message
from .state import flag, init_from_url, one_of, to_url

UNITS = ["words", "pieces"]


def heatmap_data(translation: Translation, by_words: bool, overlay: bool) -> tuple:
    """(source tokens, target tokens, attention, links) as the view draws them; hard links
    come from the very attention that is drawn."""
    if not by_words:
        attention = translation.attention
        links = sorted_links(own_links(translation, unit="pieces")) if overlay else []
        return translation.source_pieces, translation.target_pieces, attention, links
    attention = word_attention(
        translation.attention, translation.source_word_of_piece, translation.target_word_of_piece
    )
    source, target = translation.source_words, translation.target_words
    links = sorted_links(own_links(translation)) if overlay else []
    return source, target, attention, links


def heatmap(translation: Translation, model: str, by_words: bool, overlay: bool):
    """The view's figure."""
    source, target, attention, links = heatmap_data(translation, by_words, overlay)
    search = "greedy" if translation.beam_size == 1 else f"beam {translation.beam_size}, best"
    title = f"Attention of {model} ({search}), by {'word' if by_words else 'piece'}"
    return attention_heatmap(source, target, attention, title, links)


def render(translator: Translator, model: str) -> None:
    """The Align view for the chosen model."""
    init_from_url("unit", "words", one_of(UNITS))
    init_from_url("links", True, flag)
    text = sentence_input()
    left, middle, right = st.columns(3)
    beam = beam_input(left)
    unit = middle.radio("Show", UNITS, horizontal=True, key="unit")
    overlay = right.toggle("Hard alignment", key="links")
    to_url(unit=unit, links=overlay)
    translation = translation_or_message(model, text, beam)
    if translation is None:
        return
    st.subheader("Translation")
    st.text(translation.text)  # st.text: what the model wrote is never read as Markdown/HTML
    figure = heatmap(translation, model, unit == "words", overlay)
    show_figure(figure, key="heatmap")
    by_words = unit == "words"
    download_row(
        file_stem(model, "align"),
        key="align",
        figure=figure,
        numbers=lambda: translation,
        links=lambda: format_pharaoh(heatmap_data(translation, by_words, True)[3]) + "\n",
    )
