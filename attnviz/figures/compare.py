"""Attention heatmaps side by side in one figure (e.g. two beam hypotheses after they
diverge), sharing one colour scale fixed to [0, 1] and one colour bar."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import CELL_PX, COLOR_SCALE, FONT_SIZE, MARGIN, display_token, escaped

__all__ = ["Panel", "side_by_side_heatmaps"]

LABEL_PX = 110  # room left of each panel for its target-token labels
CAPTION_PX = 50  # room under the panels for their titles


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


def side_by_side_heatmaps(panels: Sequence[Panel], title: str) -> go.Figure:
    """One row of attention heatmaps, each with its own source and target tokens, titled
    underneath; every panel keeps the readable cell size (wide figures scroll)."""
    widths = [max(len(p.source_tokens), 4) * CELL_PX for p in panels]
    plot_px = sum(widths) + LABEL_PX * (len(panels) - 1)
    spacing = dict(horizontal_spacing=LABEL_PX / plot_px) if len(panels) > 1 else {}
    figure = make_subplots(rows=1, cols=len(panels), column_widths=widths, **spacing)
    rows = max(max((len(p.target_tokens) for p in panels), default=0), 3)
    for col, panel in enumerate(panels, start=1):
        figure.add_trace(_trace(panel), row=1, col=col)
        figure.update_xaxes(
            side="top",
            tickmode="array",
            tickvals=list(range(len(panel.source_tokens))),
            ticktext=[display_token(t) for t in panel.source_tokens],
            tickangle=-45,
            showgrid=False,
            zeroline=False,
            row=1,
            col=col,
        )
        figure.update_yaxes(
            range=[rows - 0.5, -0.5],  # first step on top; every panel's rows equally tall
            tickmode="array",
            tickvals=list(range(len(panel.target_tokens))),
            ticktext=[display_token(t) for t in panel.target_tokens],
            showgrid=False,
            zeroline=False,
            row=1,
            col=col,
        )
        # Titles go under the panels: above them are the (rotated) source tokens.
        domain = figure.get_subplot(1, col).xaxis.domain
        figure.add_annotation(
            text=escaped(panel.title),
            x=(domain[0] + domain[1]) / 2,
            y=0,
            xref="paper",
            yref="paper",
            xanchor="center",
            yanchor="top",
            yshift=-8,
            showarrow=False,
        )
    figure.update_layout(
        title=dict(text=escaped(title), y=0.98),
        coloraxis=dict(
            colorscale=COLOR_SCALE, cmin=0.0, cmax=1.0, colorbar=dict(title="weight", thickness=14)
        ),
        width=MARGIN["l"] + MARGIN["r"] + plot_px + 80,
        height=MARGIN["t"] + MARGIN["b"] + CAPTION_PX + rows * CELL_PX,
        margin={**MARGIN, "b": MARGIN["b"] + CAPTION_PX},
        font=dict(size=FONT_SIZE),
    )
    return figure
