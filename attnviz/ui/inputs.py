"""The inputs several views share (the sentence, the beam size): one key each, so switching
views keeps them, and each is mirrored in the URL."""

from __future__ import annotations

import streamlit as st

from ..locations import examples_file
from .state import init_from_url, int_in, to_url

MAX_CHARS = 10_000  # a pasted page still arrives; the model reads its first pieces and says so
MAX_BEAM = 10


def examples() -> list[str]:
    path = examples_file()
    if not path.is_file():
        return ["The red car is fast."]
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def use_example() -> None:
    """Copy the picked example into the text box (a callback runs before the next rerun)."""
    if st.session_state.example:
        st.session_state.text = st.session_state.example


def sentence_input() -> str:
    """Text box with example sentences; returns the sentence to translate."""
    choices = examples()
    init_from_url("text", choices[0])
    text = st.text_area("Sentence to translate", max_chars=MAX_CHARS, key="text", height=80)
    st.selectbox(
        "Or pick an example",
        choices,
        index=None,
        placeholder="Example sentences",
        key="example",
        on_change=use_example,
    )
    to_url(text=text)
    return text


def beam_input(container=st) -> int:
    """Beam size slider (1 = greedy search)."""
    init_from_url("beam", 5, int_in(1, MAX_BEAM))
    beam = container.slider("Beam size", 1, MAX_BEAM, key="beam")
    to_url(beam=beam)
    return beam
