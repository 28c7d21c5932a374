"""The inputs several views share (the sentence, the beam size): one key each, so switching
views keeps them, and each is mirrored in the URL. Each model offers its own example
sentences, in its own source language. In presentation mode a view's controls fold away."""

from __future__ import annotations

from contextlib import AbstractContextManager

import streamlit as st

from ..adapter import adapter_examples
from ..locations import examples_file
from ..text_lines import read_lines
from ..translator import Translator
from .state import BEAM, EXAMPLE, PRESENT, TEXT, init_from_url, int_in, to_url

__all__ = [
    "MAX_BEAM",
    "MAX_CHARS",
    "beam_input",
    "controls",
    "examples",
    "sentence_input",
]

MAX_CHARS = 10_000  # a pasted page still arrives; the model reads its first pieces and says so
MAX_BEAM = 10
OFFERED = "examples_offered"  # session key: the examples the picker offered on the last run


def examples(translator: Translator) -> list[str]:
    """The sources of the examples of the model's card or its adapter (sentences it was
    trained to translate); without them, the English sentences of assets/examples.txt."""
    card = translator.checkpoint.card if translator.checkpoint is not None else {}
    found = card.get("examples") if isinstance(card, dict) else None
    found = adapter_examples(translator) or found
    if isinstance(found, (dict, list)) and found:
        return [str(source) for source in found]
    path = examples_file()
    if not path.is_file():
        return ["The red car is fast."]
    return [line for line in read_lines(path) if line]


def use_example() -> None:
    """Copy the picked example into the text box (a callback runs before the next rerun)."""
    if st.session_state[EXAMPLE]:
        st.session_state[TEXT] = st.session_state[EXAMPLE]


def sentence_input(translator: Translator) -> str:
    """Text box with the model's example sentences; returns the sentence to translate.

    An example of the previous model is replaced by this model's first example when the
    model changes: it was picked for the other model's source language."""
    choices = examples(translator)
    init_from_url(TEXT, choices[0])
    offered = st.session_state.get(OFFERED, choices)
    if st.session_state[TEXT] in offered and st.session_state[TEXT] not in choices:
        st.session_state[TEXT] = choices[0]
    st.session_state[OFFERED] = choices
    # One line, so that Enter translates (a text area wants Ctrl+Enter); a pasted page
    # arrives with its line breaks turned into spaces.
    text = st.text_input("Sentence to translate", max_chars=MAX_CHARS, key=TEXT)
    st.selectbox(
        "Or pick an example",
        choices,
        index=None,
        placeholder="Example sentences of this model",
        key=EXAMPLE,
        on_change=use_example,
    )
    to_url(**{TEXT: text})
    return text


def controls(label: str = "Sentence and settings") -> AbstractContextManager:
    """Where a view puts its inputs: in presentation mode an expander named ``label``,
    closed, so that the figure is on the first screen; otherwise the page itself."""
    if st.session_state.get(PRESENT):
        return st.expander(label, expanded=False)
    return st.container()


def beam_input(container=st) -> int:
    """Beam size slider (1 = greedy search)."""
    init_from_url(BEAM, 5, int_in(1, MAX_BEAM))
    beam = container.slider("Beam size", 1, MAX_BEAM, key=BEAM)
    to_url(**{BEAM: beam})
    return beam
