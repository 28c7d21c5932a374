"""Align: translate a sentence and show which source tokens each output token attended to."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ..align import (
    DEFAULT_METHOD,
    STATISTICAL_METHOD,
    UNITS,
    AlignerPriors,
    GoldAlignment,
    Link,
    alignment_scores,
    format_pharaoh,
    model_priors,
    own_links,
    statistical_align,
)
from ..alignment_matrix import alignment_matrix
from ..errors import AttnvizError
from ..figures.captions import ALIGN_HEATMAP
from ..figures.heatmap import alignment_heatmap
from ..locations import models_dir
from ..translator import Translation
from .downloads import TextFile, download_row, file_stem, show_figure
from .inputs import beam_input, controls, sentence_input
from .models import PickedModel, translation_or_message
from .state import ALIGN, LINKS, UNIT, flag, init_from_url, one_of, to_url

__all__ = ["render"]


def links_text(translation: Translation, unit: str) -> str:
    """The hard links of ``translation`` in ``unit`` as one line of "source-target" pairs."""
    return format_pharaoh(alignment_matrix(translation, unit, links=True).links) + "\n"


@dataclass(frozen=True)
class AlignerOverlay:
    """The word aligner's links for one translation (word indices, source first) and the AER
    of the attention's word links against them; or why there are none (``reason``)."""

    links: list[Link]
    aer: float | None
    reason: str = ""


@st.cache_resource(show_spinner=False)
def saved_priors(name: str) -> AlignerPriors | str:
    """The aligner priors saved with the model, read once per process; else why not."""
    try:
        return model_priors(models_dir() / name)
    except AttnvizError as exc:
        return str(exc)


def aligner_overlay(model: PickedModel, translation: Translation) -> AlignerOverlay:
    """eflomal's links of the source and its translation, with the model's priors."""
    priors = saved_priors(model.name)
    if isinstance(priors, str):
        return AlignerOverlay([], None, priors)
    source = " ".join(translation.source_text_words)
    target = " ".join(translation.target_text_words)
    try:
        (links,) = statistical_align([(source, target)], priors).links
    except AttnvizError as exc:
        return AlignerOverlay([], None, str(exc))
    attention = own_links(translation, DEFAULT_METHOD, "words")
    aer = alignment_scores([attention], [GoldAlignment.of(links)]).aer
    return AlignerOverlay(links, aer)


def in_pieces(links: list[Link], translation: Translation) -> list[Link]:
    """Word links as the links of every piece of the one word with every piece of the other."""
    source, target = translation.source_word_of_piece, translation.target_word_of_piece
    return [
        (i, j)
        for s, t in links
        for i, word in enumerate(source)
        if word == s
        for j, other in enumerate(target)
        if other == t
    ]


def show_agreement(overlay: AlignerOverlay) -> None:
    if overlay.aer is None:
        st.caption(f"No word-aligner overlay: {overlay.reason}")
        return
    st.caption(
        f"Orange dots: the {STATISTICAL_METHOD} word aligner's links. Agreement: the "
        f"attention's hard links ({DEFAULT_METHOD}) have an AER of {overlay.aer:.2f} against "
        "them (0 = the same links; attention is not alignment)."
    )


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
    reference = aligner_overlay(model, translation)
    dots = reference.links if unit == "words" else in_pieces(reference.links, translation)
    figure = alignment_heatmap(drawn, model.name, translation.beam_size, dots)
    show_figure(figure, key="heatmap", caption=ALIGN_HEATMAP, tokens=[*drawn.source, *drawn.target])
    show_agreement(reference)
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
