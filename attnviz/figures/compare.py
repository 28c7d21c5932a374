"""Attention heatmaps of several translations in one figure, sharing one colour scale fixed to
[0, 1] and one colour bar: a row of them at the readable cell size (two beam hypotheses after
they diverge), or a grid of small multiples that fits one screen (the models of a family)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import CELL_PX, COLOR_SCALE, FIT_PX, display_token, escaped

__all__ = ["GRID_WIDTH_PX", "Panel", "heatmap_grid"]


# The grid fits the content column at 1024x768 (sidebar open), as every heatmap does, and,
# for an ordinary sentence, one 1280x720 projector screen in height.
GRID_WIDTH_PX = FIT_PX
GRID_HEIGHT_PX = 700
GRID_COLUMNS = 3  # the most; fewer where three would not fit GRID_WIDTH_PX
GRID_MIN_CELL_PX = 12  # below this a cell's shade and its label no longer read
GRID_FONT = 13
GRID_TITLE_PX = 44  # the figure's title
GRID_PANEL_TITLE_PX = 26  # each panel's name, under it
GRID_COLORBAR_PX = 60
CHAR_PX = 0.66 * GRID_FONT  # a label character's width, about (capitals are wider)


@dataclass
class Panel:
    """One heatmap of a side-by-side figure.

    attention: (rows, src_len); row i is output step ``first_step + i`` (1-based), its token
    ``target_tokens[i]``
    """

    title: str
    source_tokens: Sequence[str]
    target_tokens: Sequence[str]
    attention: np.ndarray
    first_step: int = 1


def _trace(panel: Panel) -> go.Heatmap:
    attention = np.asarray(panel.attention, dtype=float)
    src = [display_token(t) for t in panel.source_tokens]
    tgt = [display_token(t) for t in panel.target_tokens]
    hover = [
        [
            f"“{tgt[i]}” ← “{src[j]}”: {attention[i, j]:.2f} (step {panel.first_step + i})"
            for j in range(len(src))
        ]
        for i in range(len(tgt))
    ]
    return go.Heatmap(
        z=attention,
        x=list(range(len(src))),
        y=list(range(len(tgt))),
        coloraxis="coloraxis",
        text=hover,
        hoverinfo="text",
        xgap=1,
        ygap=1,
        name=escaped(panel.title),
    )


def label_px(tokens: Sequence[str], most: int) -> int:
    """Room for the longest of ``tokens`` as a label, at most ``most`` pixels."""
    longest = max((len(t) for t in tokens), default=1)
    return min(int(longest * CHAR_PX) + 12, most)


def _grid_columns(most: int, n_panels: int, n_src: int, left_px: int) -> int:
    """The most columns (up to ``most``) whose panels fit :data:`GRID_WIDTH_PX` with cells of
    :data:`GRID_MIN_CELL_PX`; one column when none do (the grid then scrolls sideways)."""
    for columns in range(max(1, min(most, n_panels)), 1, -1):
        if columns * (n_src * GRID_MIN_CELL_PX + left_px) + GRID_COLORBAR_PX <= GRID_WIDTH_PX:
            return columns
    return 1


def heatmap_grid(panels: Sequence[Panel], title: str, columns: int = GRID_COLUMNS) -> go.Figure:
    """Small multiples: ``panels`` in a grid up to ``columns`` wide, every cell the same size
    so that equal shades are equal weights, source tokens above each panel (read downwards;
    above the top row only when every panel has the same source), target tokens left of it,
    its title under it, one colour bar.

    The grid fits :data:`GRID_WIDTH_PX` and :data:`GRID_HEIGHT_PX`: it takes fewer columns
    where cells of :data:`GRID_MIN_CELL_PX` would not fit, and cells shrink to fit, never
    below that minimum (a longer sentence makes the figure grow and scroll)."""
    n_src = max(max((len(p.source_tokens) for p in panels), default=0), 3)
    n_tgt = max(max((len(p.target_tokens) for p in panels), default=0), 3)
    left_px = label_px([t for p in panels for t in p.target_tokens], 110)
    top_px = label_px([t for p in panels for t in p.source_tokens], 100)
    shared = all(list(p.source_tokens) == list(panels[0].source_tokens) for p in panels)
    columns = _grid_columns(columns, len(panels), n_src, left_px)
    rows = math.ceil(len(panels) / columns)
    gap_h = GRID_PANEL_TITLE_PX + (0 if shared else top_px)
    margin = dict(l=left_px, r=GRID_COLORBAR_PX, t=GRID_TITLE_PX + top_px, b=GRID_PANEL_TITLE_PX)
    wide = (GRID_WIDTH_PX - GRID_COLORBAR_PX - columns * left_px) / (columns * n_src)
    room_h = GRID_HEIGHT_PX - margin["t"] - margin["b"] - (rows - 1) * gap_h
    cell = int(min(CELL_PX, max(GRID_MIN_CELL_PX, min(wide, room_h / (rows * n_tgt)))))
    panel_w, panel_h = n_src * cell, n_tgt * cell
    plot_w = columns * panel_w + (columns - 1) * left_px
    plot_h = rows * panel_h + (rows - 1) * gap_h
    figure = make_subplots(
        rows=rows,
        cols=columns,
        horizontal_spacing=left_px / plot_w if columns > 1 else 0.0,
        vertical_spacing=gap_h / plot_h if rows > 1 else 0.0,
    )
    for index, panel in enumerate(panels):
        row, col = divmod(index, columns)
        labelled = row == 0 or not shared
        _grid_panel(figure, panel, (row + 1, col + 1), (n_src, n_tgt), labelled)
    figure.update_layout(
        title=dict(text=escaped(title), y=1.0, yanchor="top", x=0, pad=dict(t=8)),
        coloraxis=dict(
            colorscale=COLOR_SCALE,
            cmin=0.0,
            cmax=1.0,
            colorbar=dict(title="weight", thickness=14, len=min(1.0, 300 / plot_h)),
        ),
        width=plot_w + margin["l"] + margin["r"],
        height=plot_h + margin["t"] + margin["b"],
        margin=margin,
        font=dict(size=GRID_FONT),
    )
    return figure


def _grid_panel(
    figure: go.Figure,
    panel: Panel,
    cell: tuple[int, int],
    size: tuple[int, int],
    source_labels: bool,
) -> None:
    """One panel of :func:`heatmap_grid` at (row, col) ``cell``, (n_src, n_tgt) ``size``
    cells large: its heatmap, labelled axes (the source above it if ``source_labels``) and
    title."""
    row, col = cell
    n_src, n_tgt = size
    figure.add_trace(_trace(panel), row=row, col=col)
    figure.update_xaxes(
        side="top",
        range=[-0.5, n_src - 0.5],
        tickmode="array",
        tickvals=list(range(len(panel.source_tokens))),
        ticktext=[display_token(t) for t in panel.source_tokens],
        tickangle=-90,
        tickfont=dict(size=GRID_FONT),
        showticklabels=source_labels,
        showgrid=False,
        zeroline=False,
        row=row,
        col=col,
    )
    figure.update_yaxes(
        range=[n_tgt - 0.5, -0.5],  # first step on top
        tickmode="array",
        tickvals=list(range(len(panel.target_tokens))),
        ticktext=[display_token(t) for t in panel.target_tokens],
        tickfont=dict(size=GRID_FONT),
        showgrid=False,
        zeroline=False,
        row=row,
        col=col,
    )
    subplot = figure.get_subplot(row, col)
    figure.add_annotation(
        text=escaped(panel.title),
        x=sum(subplot.xaxis.domain) / 2,
        y=subplot.yaxis.domain[0],
        xref="paper",
        yref="paper",
        xanchor="center",
        yanchor="top",
        yshift=-4,
        showarrow=False,
        font=dict(size=GRID_FONT + 1),
    )
