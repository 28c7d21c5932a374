"""Align: translate a sentence and show which source tokens each output token attended to."""

from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from ..align import (
    DEFAULT_METHOD,
    DEFAULT_SYMMETRIC_METHOD,
    STATISTICAL_METHOD,
    UNITS,
    Link,
    format_pharaoh,
    sorted_links,
    symmetric_links,
)
from ..alignment_matrix import AlignmentMatrix, alignment_matrix
from ..checkpoint import CONFIG_FILE
from ..figures.captions import ALIGN_HEATMAP
from ..figures.heatmap import alignment_heatmap
from ..locations import models_dir
from ..scorer_lab import guidance_weight
from ..translator import Translation
from .downloads import TextFile, download_row, file_stem, show_figure
from .inputs import beam_input, controls, sentence_input
from .models import BY_NAME, PickedModel, picked, score_cached, translation_or_message
from .state import ALIGN, LINKS, UNIT, flag, init_from_url, one_of, to_url
from .word_aligner import AlignerOverlay, aligner_overlay

__all__ = ["render"]


@dataclass(frozen=True)
class HardLinks:
    """How the view reads hard word links off the attention: ``agree`` with ``reverse`` (a
    target->source model in the models folder), else the model's own ``pieces`` links."""

    method: str
    reverse: str | None = None
    guided: bool = False

    @property
    def label(self) -> str:
        if self.reverse:
            return f"{self.method}, with the reverse model {self.reverse}"
        return f"{self.method}, of a guided model" if self.guided else self.method


@st.cache_resource(show_spinner=False, hash_funcs=BY_NAME)
def hard_links_of(model: PickedModel) -> HardLinks:
    """The best hard-link method the models folder allows for ``model``: ``agree`` with the
    reverse model its card names (the lowest AER on the gold sets), else ``pieces`` (also for
    a model trained with guided alignment, whose own attention is trained to align)."""
    checkpoint = model.translator.checkpoint
    card = checkpoint.card if checkpoint is not None else {}
    reverse = (card.get("alignment") or {}).get("reverse_model")
    guided = guidance_weight(checkpoint.recipe if checkpoint is not None else None) > 0
    if isinstance(reverse, str) and (models_dir() / reverse / CONFIG_FILE).is_file():
        return HardLinks(DEFAULT_SYMMETRIC_METHOD, reverse, guided)
    return HardLinks(DEFAULT_METHOD, None, guided)


def with_best_links(
    drawn: AlignmentMatrix, translation: Translation, how: HardLinks
) -> AlignmentMatrix:
    """``drawn`` with the word links of ``how``: a reverse model's agreement replaces the
    model's own links (pieces keep their own: agreement is between words)."""
    if how.reverse is None or drawn.unit != "words" or not drawn.links:
        return drawn
    source = " ".join(translation.source_text_words)
    target = " ".join(translation.target_text_words)
    back = score_cached(picked(how.reverse), target, source)
    links = symmetric_links(translation, back, source, target, how.method)
    return replace(drawn, links=sorted_links(links))


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


def show_agreement(overlay: AlignerOverlay, how: HardLinks) -> None:
    st.caption(f"Hard alignment (red squares): {how.label}.")
    if overlay.aer is None:
        st.caption(f"No word-aligner overlay: {overlay.reason}")
        return
    st.caption(
        f"Orange dots: the {STATISTICAL_METHOD} word aligner's links. Agreement: the "
        f"attention's hard word links have an AER of {overlay.aer:.2f} against them "
        "(0 = the same links; attention is not alignment)."
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
    how = hard_links_of(model)
    # Word links once per rerun: the figure (in words), the agreement and the Pharaoh file.
    words = with_best_links(alignment_matrix(translation, "words", links=True), translation, how)
    linked = words if unit == "words" else alignment_matrix(translation, unit, links=True)
    drawn = linked if overlay else replace(linked, links=[])
    reference = aligner_overlay(model.name, translation, words.links)
    dots = reference.links if unit == "words" else in_pieces(reference.links, translation)
    figure = alignment_heatmap(drawn, model.name, translation.beam_size, dots)
    show_figure(figure, key="heatmap", caption=ALIGN_HEATMAP, tokens=[*drawn.source, *drawn.target])
    show_agreement(reference, how)
    # Pharaoh links are word links whatever the figure shows (as `attnviz align` writes
    # them); piece links index pieces, so they go in a file of their own, named for pieces.
    files = [
        TextFile(
            "Pharaoh word links",
            file_stem(ALIGN, model.name, "words") + ".align",
            lambda: format_pharaoh(words.links) + "\n",
        )
    ]
    if unit == "pieces":
        files.append(
            TextFile(
                "Piece links",
                file_stem(ALIGN, model.name, "piece-links") + ".txt",
                lambda: format_pharaoh(linked.links) + "\n",
            )
        )
    download_row(
        file_stem(ALIGN, model.name, unit),
        key="align",
        figure=figure,
        numbers=lambda: {"translation": translation, "drawn": linked},
        files=files,
    )
