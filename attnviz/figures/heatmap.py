"""The attention heatmap: source tokens across the top, one row per output token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from .style import (
    CELL_PX,
    CHOSEN_COLOR,
    COLOR_SCALE,
    FONT_SIZE,
    MARGIN,
    display_token,
    escaped,
    search_label,
)

if TYPE_CHECKING:  # read by attribute only: drawing needs neither torch nor Streamlit
    from ..alignment_matrix import AlignmentMatrix

__all__ = ["alignment_heatmap", "attention_heatmap"]


def attention_heatmap(
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    attention: np.ndarray,
    title: str,
    links: Sequence[tuple[int, int]] = (),
) -> go.Figure:
    """Heatmap of ``attention`` (tgt_len, src_len).

    links: (source index, target index) pairs drawn as outlined squares on top (hard
    alignments); they never change the colours.
    """
    attention = np.asarray(attention, dtype=float)
    n_tgt, n_src = attention.shape
    src_labels = [display_token(t) for t in source_tokens]
    tgt_labels = [display_token(t) for t in target_tokens]
    hover = [
        [
            f"“{tgt_labels[i]}” ← “{src_labels[j]}”: {attention[i, j]:.2f} (step {i + 1})"
            for j in range(n_src)
        ]
        for i in range(n_tgt)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=attention,
            x=list(range(n_src)),
            y=list(range(n_tgt)),
            zmin=0.0,
            zmax=1.0,
            colorscale=COLOR_SCALE,
            colorbar=dict(title="weight", thickness=14),
            text=hover,
            hoverinfo="text",
            xgap=1,
            ygap=1,
        )
    )
    if links:
        xs, ys = zip(*links, strict=True)
        figure.add_trace(
            go.Scatter(
                x=list(xs),
                y=list(ys),
                mode="markers",
                marker=dict(
                    symbol="square-open", size=CELL_PX - 10, color=CHOSEN_COLOR, line=dict(width=3)
                ),
                name="hard alignment",
                hoverinfo="skip",
                showlegend=False,
            )
        )
    # Numeric axes with tick text: a categorical axis would merge repeated tokens.
    figure.update_xaxes(
        side="top",
        tickmode="array",
        tickvals=list(range(n_src)),
        ticktext=src_labels,
        tickangle=-45,
        showgrid=False,
        zeroline=False,
        tickfont=dict(size=FONT_SIZE),
    )
    figure.update_yaxes(
        autorange="reversed",
        tickmode="array",
        tickvals=list(range(n_tgt)),
        ticktext=tgt_labels,
        showgrid=False,
        zeroline=False,
        tickfont=dict(size=FONT_SIZE),
    )
    figure.update_layout(
        title=dict(text=escaped(title), y=0.98),
        width=MARGIN["l"] + MARGIN["r"] + max(n_src, 4) * CELL_PX + 80,
        height=MARGIN["t"] + MARGIN["b"] + max(n_tgt, 3) * CELL_PX,
        margin=MARGIN,
        font=dict(size=FONT_SIZE),
    )
    return figure


def alignment_heatmap(matrix: AlignmentMatrix, model: str, beam_size: int) -> go.Figure:
    """The Align view's figure: ``matrix`` (see :mod:`attnviz.alignment_matrix`) of the best
    translation of ``model`` with beam ``beam_size``, its links outlined."""
    unit = "word" if matrix.unit == "words" else "piece"
    title = f"Attention of {model} ({search_label(beam_size)}), by {unit}"
    return attention_heatmap(matrix.source, matrix.target, matrix.attention, title, matrix.links)
