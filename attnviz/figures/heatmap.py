"""The attention heatmap: source tokens across the top, one row per output token.

A source too long for the screen wraps: its columns continue in a second band of the same
rows underneath (like lines of text), so every label, every column and the colour bar stay
within :data:`~attnviz.figures.style.FIT_PX` instead of running past the right edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from .style import (
    CHAR_PX,
    CHOSEN_COLOR,
    COLOR_SCALE,
    FIT_PX,
    FONT_SIZE,
    column_lines,
    display_token,
    escaped,
    search_label,
    stack_bands,
)

if TYPE_CHECKING:  # read by attribute only: drawing needs neither torch nor Streamlit
    from ..alignment_matrix import AlignmentMatrix

__all__ = [
    "REFERENCE_COLOR",
    "HeatmapBlock",
    "alignment_heatmap",
    "attention_heatmap",
    "stacked_heatmaps",
]

COLORBAR_PX = 90  # right of the plot: the colour bar, its ticks and title
TITLE_PX = 34  # a block's own title
TOP_PX = 44  # the figure's title
GAP_PX = 18  # between the wrapped lines of a block
MAX_LABEL_CHARS = 16  # longer labels reach into the band above; they never widen the figure
# The word aligner's links: dots, so that they read apart from the attention's outlined
# squares and leave the cell's colour visible around them; orange reads on white and dark blue.
REFERENCE_COLOR = "#ff7f0e"


@dataclass
class HeatmapBlock:
    """Rows of attention over the source of a stacked heatmap figure.

    attention: (rows, src_len); row i is output step ``first_step + i`` (1-based), its token
    ``target_tokens[i]``. links: (source index, row index) pairs outlined on top.
    reference_links: (source index, row index) pairs of a word aligner, dots on top.
    """

    target_tokens: Sequence[str]
    attention: np.ndarray
    title: str = ""
    first_step: int = 1
    links: Sequence[tuple[int, int]] = ()
    reference_links: Sequence[tuple[int, int]] = ()


def _label_band_px(labels: Sequence[str]) -> int:
    """Height of the rotated (45°) source labels over a band."""
    longest = min(max((len(t) for t in labels), default=1), MAX_LABEL_CHARS)
    return 20 + int(0.7 * CHAR_PX * longest)


def _hover(src: Sequence[str], tgt: Sequence[str], attention: np.ndarray, first: int) -> list:
    return [
        [
            f"“{tgt[i]}” ← “{src[j]}”: {attention[i, j]:.2f} (step {first + i})"
            for j in range(len(src))
        ]
        for i in range(len(tgt))
    ]


def stacked_heatmaps(
    source_tokens: Sequence[str], blocks: Sequence[HeatmapBlock], title: str
) -> go.Figure:
    """Heatmaps over one source, one under the other, fitting :data:`FIT_PX` in width.

    Each block's source columns wrap into lines; every (block, line) is a heatmap trace of
    its own axes (trace ``i`` on ``xaxis{i+1}``, hover "“voiture” ← “car”: 0.83 (step 2)"),
    all on one colour scale fixed to [0, 1] with one colour bar.
    """
    src = [display_token(t) for t in source_tokens]
    tgts = [[display_token(t) for t in b.target_tokens] for b in blocks]
    longest_target = max((len(t) for tgt in tgts for t in tgt), default=1)
    left = max(80, 24 + int(CHAR_PX * min(longest_target, 24)))
    lines, cell = column_lines(len(src), FIT_PX - left - COLORBAR_PX)
    plot_px = max(len(lines[0]), 4) * cell
    bands: dict[str, int] = {}
    for b, block in enumerate(blocks):
        if block.title:
            bands[f"title{b}"] = TITLE_PX
        for n, line in enumerate(lines):
            bands[f"labels{b}.{n}"] = _label_band_px([src[j] for j in line])
            bands[f"rows{b}.{n}"] = max(len(block.target_tokens), 1) * cell
            bands[f"gap{b}.{n}"] = GAP_PX
    domains = stack_bands(bands)
    figure = go.Figure()
    axis = 0
    for b, block in enumerate(blocks):
        attention = np.asarray(block.attention, dtype=float)
        hover = _hover(src, tgts[b], attention, block.first_step)
        if block.title:
            figure.add_annotation(
                text=escaped(block.title),
                x=0,
                y=domains[f"title{b}"][0],
                xref="paper",
                yref="paper",
                xanchor="left",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=FONT_SIZE + 2),
            )
        for n, line in enumerate(lines):
            axis += 1
            _add_line(figure, axis, line, block, attention, hover, cell, src, tgts[b])
            x_end = len(line) * cell / plot_px
            figure.layout[_name("xaxis", axis)].domain = [0, x_end]
            figure.layout[_name("yaxis", axis)].domain = domains[f"rows{b}.{n}"]
    figure.data[0].update(
        showscale=True,
        colorbar=dict(
            title="weight",
            thickness=14,
            lenmode="pixels",
            len=min(220, max(120, sum(bands.values()) // 2)),
            x=1.0,
            xanchor="left",
            xpad=12,
            y=domains["rows0.0"][1],  # beside the first rows, under the rotated labels
            yanchor="top",
        ),
    )
    figure.update_layout(
        title=dict(
            text=escaped(title),
            x=0,
            xref="paper",
            xanchor="left",
            y=1,
            yref="container",
            yanchor="top",
            pad=dict(t=12),
        ),
        width=left + plot_px + COLORBAR_PX,
        height=TOP_PX + sum(bands.values()) + 10,
        margin=dict(l=left, r=COLORBAR_PX, t=TOP_PX, b=10),
        font=dict(size=FONT_SIZE),
        showlegend=False,
    )
    return figure


def _name(kind: str, axis: int) -> str:
    return kind if axis == 1 else f"{kind}{axis}"


def _add_line(
    figure: go.Figure,
    axis: int,
    line: range,
    block: HeatmapBlock,
    attention: np.ndarray,
    hover: list,
    cell: int,
    src: Sequence[str],
    tgt: Sequence[str],
) -> None:
    """One wrapped line of a block: its heatmap, its links, its two axes."""
    x, y = _name("x", axis), _name("y", axis)
    columns = list(line)
    figure.add_trace(
        go.Heatmap(
            z=attention[:, columns],
            x=columns,
            y=list(range(len(tgt))),
            zmin=0.0,
            zmax=1.0,
            colorscale=COLOR_SCALE,
            showscale=False,
            text=[row[line.start : line.stop] for row in hover],
            hoverinfo="text",
            xgap=1,
            ygap=1,
            xaxis=x,
            yaxis=y,
        )
    )
    outlined = dict(symbol="square-open", size=cell - 8, color=CHOSEN_COLOR, line=dict(width=3))
    dots = dict(symbol="circle", size=max(8, cell // 4), color=REFERENCE_COLOR)
    for links, marker, name in (
        (block.links, outlined, "hard alignment"),
        (block.reference_links, dots, "word aligner"),
    ):
        shown = [(s, t) for s, t in links if s in line]
        if shown:
            figure.add_trace(
                go.Scatter(
                    x=[s for s, _ in shown],
                    y=[t for _, t in shown],
                    mode="markers",
                    marker=marker,
                    name=name,
                    hoverinfo="skip",
                    xaxis=x,
                    yaxis=y,
                )
            )
    # Numeric axes with tick text: a categorical axis would merge repeated tokens.
    figure.update_layout(
        {
            _name("xaxis", axis): dict(
                anchor=y,
                side="top",
                tickmode="array",
                tickvals=columns,
                ticktext=[src[j] for j in columns],
                range=[line.start - 0.5, line.start + len(line) - 0.5],
                tickangle=-45,
                showgrid=False,
                zeroline=False,
                tickfont=dict(size=FONT_SIZE),
            ),
            _name("yaxis", axis): dict(
                anchor=x,
                range=[len(tgt) - 0.5, -0.5],  # first step on top; markers add no padding
                tickmode="array",
                tickvals=list(range(len(tgt))),
                ticktext=list(tgt),
                showgrid=False,
                zeroline=False,
                tickfont=dict(size=FONT_SIZE),
            ),
        }
    )


def attention_heatmap(
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    attention: np.ndarray,
    title: str,
    links: Sequence[tuple[int, int]] = (),
    reference_links: Sequence[tuple[int, int]] = (),
) -> go.Figure:
    """Heatmap of ``attention`` (tgt_len, src_len), wrapped to fit the screen's width.

    links: (source index, target index) pairs drawn as outlined squares on top (hard
    alignments); reference_links: a word aligner's pairs, drawn as dots. Neither changes the
    colours.
    """
    block = HeatmapBlock(target_tokens, attention, links=links, reference_links=reference_links)
    return stacked_heatmaps(source_tokens, [block], title)


def alignment_heatmap(
    matrix: AlignmentMatrix,
    model: str,
    beam_size: int,
    reference_links: Sequence[tuple[int, int]] = (),
) -> go.Figure:
    """The Align view's figure: ``matrix`` (see :mod:`attnviz.alignment_matrix`) of the best
    translation of ``model`` with beam ``beam_size``, its links outlined; ``reference_links``
    (a word aligner's, in the matrix's unit) dotted."""
    unit = "word" if matrix.unit == "words" else "piece"
    title = f"Attention of {model} ({search_label(beam_size)}), by {unit}"
    return attention_heatmap(
        matrix.source, matrix.target, matrix.attention, title, matrix.links, reference_links
    )
