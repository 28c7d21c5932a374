"""Beam search: the n-best list, one hypothesis' heatmap, the beam tree with its pruned
branches, and two hypotheses side by side from where they diverge."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..figures.beam import beam_tree_figure, divergence_figure, first_divergence, hypothesis_path
from ..figures.captions import BEAM_DIVERGENCE, BEAM_TREE
from ..figures.heatmap import attention_heatmap
from ..translator import Hypothesis, Translation
from .downloads import download_row, file_stem, show_figure
from .inputs import MAX_BEAM, beam_input, controls, sentence_input
from .models import PickedModel, translation_or_message
from .state import (
    BEAM_SEARCH,
    DIVERGE_FIRST,
    DIVERGE_SECOND,
    HYPOTHESIS,
    init_from_url,
    int_in,
    to_url,
)

__all__ = ["divergence_sentence", "nbest_table", "rank_picker", "render"]

NUMBER = st.column_config.NumberColumn(format="%.3f")


def nbest_table(translation: Translation) -> pd.DataFrame:
    """One row per hypothesis, best first."""
    return pd.DataFrame(
        {
            "rank": [h.rank for h in translation.hypotheses],
            "text": [h.text for h in translation.hypotheses],
            "score": [h.score for h in translation.hypotheses],
            "log-prob": [h.logprob for h in translation.hypotheses],
            "length (pieces)": [len(h.pieces) for h in translation.hypotheses],
            "finished": [h.finished for h in translation.hypotheses],
        }
    )


def rank_picker(label: str, key: str, default: int, count: int, container=st) -> int:
    """A rank among ``count`` hypotheses, kept in the URL (a rank past the end is clamped)."""
    init_from_url(key, default, int_in(0, MAX_BEAM - 1))
    st.session_state[key] = min(st.session_state[key], count - 1)
    rank = container.selectbox(
        label, list(range(count)), format_func=lambda r: f"rank {r}", key=key
    )
    to_url(**{key: rank})
    return rank


def show_tree(translation: Translation, model: str, rank: int) -> None:
    if translation.beam_size == 1:
        st.info(
            "Beam size 1 is greedy search: it follows one hypothesis and keeps no alternatives, "
            "so there is no beam tree. Raise the beam size to see one."
        )
        return
    pieces = translation.hypotheses[rank].pieces
    figure = beam_tree_figure(
        translation.beam_tree,
        f"Beam tree of {model} (beam {translation.beam_size}), rank {rank} highlighted",
        hypothesis_path(translation.beam_tree, pieces),
    )
    show_figure(figure, key="beam-tree", caption=BEAM_TREE, tokens=pieces)
    stem = file_stem(BEAM_SEARCH, model, f"beam-{translation.beam_size}", "tree")
    download_row(stem, key="beam-tree", figure=figure)


def show_divergence(translation: Translation, model: str) -> None:
    count = len(translation.hypotheses)
    left, right = st.columns(2)
    first = rank_picker("First hypothesis", DIVERGE_FIRST, 0, count, left)
    second = rank_picker("Second hypothesis", DIVERGE_SECOND, 1, count, right)
    a, b = translation.hypotheses[first], translation.hypotheses[second]
    start = first_divergence(a.pieces, b.pieces)
    if start is None:
        st.info("Pick two different hypotheses to see where they part.")
        return
    st.text(divergence_sentence(a, b, start))  # st.text: pieces are never read as Markdown
    figure = divergence_figure(
        translation.source_pieces,
        a,
        b,
        start,
        f"Attention of {model} after the divergence: rank {first} and rank {second}",
    )
    tokens = [*translation.source_pieces, *a.pieces, *b.pieces]
    show_figure(figure, key="beam-divergence", caption=BEAM_DIVERGENCE, tokens=tokens)
    download_row(
        file_stem(BEAM_SEARCH, model, f"ranks-{first}-{second}"),
        key="beam-divergence",
        figure=figure,
    )


def divergence_sentence(first: Hypothesis, second: Hypothesis, start: int) -> str:
    """Where two hypotheses part, in words."""

    def wrote(h: Hypothesis) -> str:
        piece = f"“{h.pieces[start]}”" if start < len(h.pieces) else "nothing more"
        return f"rank {h.rank} writes {piece}"

    ranks = f"Ranks {first.rank} and {second.rank}"
    if start == 0:
        shared = f"{ranks} differ from the start"
    else:
        shared = f"{ranks} share their first {'piece' if start == 1 else f'{start} pieces'}"
    return f"{shared}; at step {start + 1} {wrote(first)} and {wrote(second)}."


def render(picked: PickedModel) -> None:
    """The Beam search view for the chosen model."""
    with controls():
        text = sentence_input(picked.translator)
        beam = beam_input()
    translation = translation_or_message(picked, text, beam, n_best=beam, spinner="Searching…")
    model = picked.name
    if translation is None:
        return
    st.subheader("N-best list")
    table = nbest_table(translation)
    st.dataframe(
        table,
        hide_index=True,
        column_config={"score": NUMBER, "log-prob": NUMBER},
        key="nbest",
    )
    st.caption("score: log-prob / length (pieces), which ranks the finished hypotheses.")
    count = len(translation.hypotheses)
    rank = rank_picker("Hypothesis to show", HYPOTHESIS, 0, count)
    hypothesis = translation.hypotheses[rank]
    st.text(hypothesis.text)
    figure = attention_heatmap(
        translation.source_pieces,
        hypothesis.pieces,
        hypothesis.attention,
        f"Attention of {model} (beam {beam}), hypothesis rank {rank} of {count}",
    )
    show_figure(figure, key="beam-heatmap")
    download_row(
        file_stem(BEAM_SEARCH, model, f"rank-{rank}"),
        key="beam",
        figure=figure,
        numbers=lambda: translation,
        table=table,
    )
    st.subheader("Beam tree")
    show_tree(translation, model, rank)
    if count > 1:
        st.subheader("Where two hypotheses diverge")
        show_divergence(translation, model)
