"""Align: translate a sentence and show which source tokens each output token attended to."""

from __future__ import annotations

import streamlit as st

from ..align import UNITS, format_pharaoh
from ..alignment_matrix import alignment_matrix
from ..figures.captions import ALIGN_HEATMAP
from ..figures.heatmap import alignment_heatmap
from ..translator import Translation
from .downloads import TextFile, download_row, file_stem, show_figure
from .inputs import beam_input, controls, sentence_input
from .models import PickedModel, translation_or_message
from .state import ALIGN, LINKS, UNIT, flag, init_from_url, one_of, to_url

__all__ = ["render"]


def links_text(translation: Translation, unit: str) -> str:
    """The hard links of ``translation`` in ``unit`` as one line of "source-target" pairs."""
    return format_pharaoh(alignment_matrix(translation, unit, links=True).links) + "\n"


def render(model: PickedModel) -> None:
    """The Align view for the chosen model."""
    init_from_url(UNIT, "words", one_of(UNITS))
    init_from_url(LINKS, True, flag)
    with controls():
        text = sentence_input(model.translator)
        left, middle, right = st.columns(3)
        beam = beam_input(left)
        unit = middle.radio("Show", UNITS, horizontal=True, key=UNIT)
        overlay = right.toggle("Hard alignment", key=LINKS)
    to_url(**{UNIT: unit, LINKS: overlay})
    translation = translation_or_message(model, text, beam)
    if translation is None:
        return
    st.subheader("Translation")
    st.text(translation.text)  # st.text: what the model wrote is never read as Markdown/HTML
    drawn = alignment_matrix(translation, unit, links=overlay)
    figure = alignment_heatmap(drawn, model.name, translation.beam_size)
    show_figure(figure, key="heatmap", caption=ALIGN_HEATMAP, tokens=[*drawn.source, *drawn.target])
    # Pharaoh links are word links whatever the figure shows (as `attnviz align` writes
    # them); piece links index pieces, so they go in a file of their own, named for pieces.
    files = [
        TextFile(
            "Pharaoh word links",
            file_stem(ALIGN, model.name, "words") + ".align",
            lambda: links_text(translation, "words"),
        )
    ]
    if unit == "pieces":
        files.append(
            TextFile(
                "Piece links",
                file_stem(ALIGN, model.name, "piece-links") + ".txt",
                lambda: links_text(translation, "pieces"),
            )
        )
    download_row(
        file_stem(ALIGN, model.name, unit),
        key="align",
        figure=figure,
        numbers=lambda: {
            "translation": translation,
            "drawn": alignment_matrix(translation, unit, links=True),
        },
        files=files,
    )
