"""Align: translate a sentence and show which source tokens each output token attended to."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ..align import DEFAULT_METHOD, argmax_links, score_links, sorted_links, word_attention
from ..errors import InputError
from ..figures import attention_heatmap
from ..translator import Translation, Translator
from .models import translate_cached
from .state import flag, init_from_url, int_in, one_of, to_url

EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "assets" / "examples.txt"
MAX_CHARS = 2000
UNITS = ["words", "pieces"]


def examples() -> list[str]:
    if not EXAMPLES_FILE.is_file():
        return ["The red car is fast."]
    return [line for line in EXAMPLES_FILE.read_text(encoding="utf-8").splitlines() if line]


def heatmap(translation: Translation, model: str, by_words: bool, overlay: bool):
    """The view's figure; hard links come from the very attention that is drawn."""
    if by_words:
        attention = word_attention(
            translation.attention,
            translation.source_word_of_piece,
            translation.target_word_of_piece,
        )
        source, target = translation.source_words, translation.target_words
        links = []
        if overlay:
            words = " ".join(source[:-1]), " ".join(target[:-1])  # without "</s>"
            links = sorted_links(score_links(translation, *words, DEFAULT_METHOD))
    else:
        attention = translation.attention
        source, target = translation.source_pieces, translation.target_pieces
        links = argmax_links(attention) if overlay else []
    search = "greedy" if translation.beam_size == 1 else f"beam {translation.beam_size}, best"
    title = f"Attention of {model} ({search}), by {'word' if by_words else 'piece'}"
    return attention_heatmap(source, target, attention, title, links)


def use_example() -> None:
    """Copy the picked example into the text box (a callback runs before the next rerun)."""
    if st.session_state.example:
        st.session_state.text = st.session_state.example


def render(translator: Translator, model: str) -> None:
    """The Align view for the chosen model."""
    init_from_url("text", examples()[0])
    init_from_url("beam", 5, int_in(1, 10))
    init_from_url("unit", "words", one_of(UNITS))
    init_from_url("links", True, flag)
    text = st.text_area("Sentence to translate", max_chars=MAX_CHARS, key="text", height=80)
    st.selectbox(
        "Or pick an example",
        examples(),
        index=None,
        placeholder="Example sentences",
        key="example",
        on_change=use_example,
    )
    left, middle, right = st.columns(3)
    beam = left.slider("Beam size", 1, 10, key="beam")
    unit = middle.radio("Show", UNITS, horizontal=True, key="unit")
    overlay = right.toggle("Hard alignment", key="links")
    to_url(model=model, text=text, beam=beam, unit=unit, links=overlay)
    try:
        with st.spinner("Translating…"):
            translation = translate_cached(model, text, beam)
    except InputError as exc:
        st.warning(str(exc))
        return
    if translation.truncated:
        st.warning(
            f"The sentence is longer than this model reads ({translator.config.max_src_len - 1} "
            "pieces); only its beginning was translated."
        )
    st.subheader("Translation")
    st.text(translation.text)  # st.text: what the model wrote is never read as Markdown/HTML
    figure = heatmap(translation, model, unit == "words", overlay)
    st.plotly_chart(figure, width="content", key="heatmap")
