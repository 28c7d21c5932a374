"""Figures that explain one decoding step: how the scorer's raw scores become the attention
weights and the context vector, and whether attention agrees with gradient saliency.

Built from :class:`attnviz.explain.StepExplanation` and plain arrays (no torch, no Streamlit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import CELL_PX, FONT_SIZE, MARGIN, display_token, escaped

if TYPE_CHECKING:
    from ..explain import StepExplanation

__all__ = ["context_rows", "saliency_figure", "step_explanation_figure"]

CONTEXT_SCALE = "PuOr"  # diverging: vector entries have a sign (red means "chosen" elsewhere)
# One colour per head; a single-head model uses the first.
HEAD_COLORS = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#8c6d31", "#d6616b")
ATTENTION_COLOR = "#08519c"  # the dark end of the attention colour scale (Blues)
SALIENCY_COLOR = "#fd8d3c"
BAR_PANEL_PX = 240
ROW_PX = 22  # one row of the context heatmap
GAP_PX = 90  # between panels: their titles and the rotated source labels


def context_rows(explanation: StepExplanation) -> tuple[np.ndarray, list[str]]:
    """(rows, row names) of the context panel: α_j m_j for every source position, then their
    sum; for multi-head also the context c_t = W_o · sum. rows: (src_len + 1 or 2, dim)."""
    names = [f"α·m  {display_token(p)}" for p in explanation.source_pieces]
    rows = [explanation.contributions, explanation.weighted_sum[None, :]]
    if explanation.heads == 1:
        names.append("c_t = Σ α·m")
    else:
        names += ["Σ α·m (heads)", "c_t = W_o · Σ"]
        rows.append(explanation.context[None, :])
    return np.concatenate(rows), names


def _bars(explanation: StepExplanation, values: np.ndarray, what: str) -> list[go.Bar]:
    """One bar trace per head over the source positions. values: (heads, src_len)."""
    labels = [display_token(p) for p in explanation.source_pieces]
    traces = []
    for h, row in enumerate(values):
        name = "attention" if explanation.heads == 1 else f"head {h + 1}"
        traces.append(
            go.Bar(
                x=list(range(len(labels))),
                y=row,
                name=name,
                legendgroup=name,
                showlegend=explanation.heads > 1 and what == "e",
                marker=dict(color=HEAD_COLORS[h % len(HEAD_COLORS)]),
                text=[f"{v:.2f}" for v in row],
                textposition="outside",
                cliponaxis=False,
                customdata=[
                    f"“{s}” ({name}): {what} = {v:.4g}" for s, v in zip(labels, row, strict=True)
                ],
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    return traces


def _context_heatmap(explanation: StepExplanation) -> go.Heatmap:
    rows, names = context_rows(explanation)
    limit = float(np.abs(rows).max()) or 1.0
    return go.Heatmap(
        z=rows,
        x=list(range(1, rows.shape[1] + 1)),
        y=list(range(len(names))),
        zmin=-limit,
        zmax=limit,
        colorscale=CONTEXT_SCALE,
        colorbar=dict(title="value", thickness=14, len=0.3, y=0.0, yanchor="bottom"),
        customdata=[[name] * rows.shape[1] for name in names],
        hovertemplate="%{customdata}, dimension %{x}: %{z:.3f}<extra></extra>",
        ygap=1,
    )


def step_explanation_figure(explanation: StepExplanation, title: str) -> go.Figure:
    """Three panels for one step: the raw scores e_j over the source pieces, the weights α_j
    the softmax makes of them, and the context vector as the sum of the rows α_j m_j (each
    row one source position's share, the last row c_t, with a colour bar and its norm)."""
    rows, names = context_rows(explanation)
    heat_px = max(len(names) * ROW_PX, 120)
    heights = [BAR_PANEL_PX, BAR_PANEL_PX, heat_px]
    norm = float(np.linalg.norm(explanation.context))
    figure = make_subplots(
        rows=3,
        cols=1,
        row_heights=heights,
        vertical_spacing=GAP_PX / (sum(heights) + 2 * GAP_PX),
        subplot_titles=(
            "1. Raw scores e_j of the scorer, before the softmax",
            "2. The softmax makes them weights α_j: all positive, summing to 1",
            f"3. Context vector: row j is α_j·m_j, the last row their sum c_t (norm {norm:.2f})",
        ),
    )
    for trace in _bars(explanation, explanation.energies, "e"):
        figure.add_trace(trace, row=1, col=1)
    for trace in _bars(explanation, explanation.weights, "α"):
        figure.add_trace(trace, row=2, col=1)
    figure.add_trace(_context_heatmap(explanation), row=3, col=1)
    labels = [display_token(p) for p in explanation.source_pieces]
    source_axis = dict(
        tickmode="array",
        tickvals=list(range(len(labels))),
        ticktext=labels,
        tickangle=-45,
        tickfont=dict(size=FONT_SIZE),
    )
    figure.update_xaxes(source_axis, row=1, col=1)
    figure.update_xaxes(source_axis, row=2, col=1)
    figure.update_xaxes(title="dimension of the vector", row=3, col=1)
    figure.update_yaxes(title="e_j", zeroline=True, zerolinecolor="#444", row=1, col=1)
    figure.update_yaxes(title="α_j", range=[0, 1.15], tickvals=[0, 0.5, 1], row=2, col=1)
    figure.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(names))),
        ticktext=names,
        autorange="reversed",
        tickfont=dict(size=FONT_SIZE - 2),
        row=3,
        col=1,
    )
    longest = max(len(n) for n in names)
    left = max(MARGIN["l"], 24 + int(0.55 * FONT_SIZE * longest))
    figure.update_layout(
        title=dict(text=escaped(title)),
        width=max(left + 140 + len(labels) * CELL_PX, 900),
        height=150 + sum(heights) + 2 * GAP_PX,
        margin=dict(l=left, r=140, t=110, b=60),
        font=dict(size=FONT_SIZE),
        barmode="group",
        legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
    )
    return figure


def saliency_figure(
    source_pieces: Sequence[str],
    attention: np.ndarray,
    saliency: np.ndarray,
    spearman: float,
    title: str,
) -> go.Figure:
    """Attention and gradient x input saliency of one output token, side by side over the
    source pieces, with their Spearman rank correlation in the title.

    attention: (src_len,) the step's weights; saliency: (src_len,) |gradient x input|,
    normalised to sum to 1
    """
    labels = [display_token(p) for p in source_pieces]
    positions = list(range(len(labels)))
    figure = go.Figure()
    for name, values, color in (
        ("attention", attention, ATTENTION_COLOR),
        ("saliency (|gradient × input|, share)", saliency, SALIENCY_COLOR),
    ):
        figure.add_trace(
            go.Bar(
                x=positions,
                y=values,
                name=name,
                marker=dict(color=color),
                text=[f"{v:.2f}" for v in values],
                textposition="outside",
                cliponaxis=False,
                customdata=[f"“{s}”: {name} {v:.3f}" for s, v in zip(labels, values, strict=True)],
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    rho = "undefined (one of them is constant)" if np.isnan(spearman) else f"{spearman:+.2f}"
    figure.update_xaxes(
        tickmode="array",
        tickvals=positions,
        ticktext=labels,
        tickangle=-45,
        tickfont=dict(size=FONT_SIZE),
    )
    figure.update_yaxes(range=[0, 1.15], tickvals=[0, 0.25, 0.5, 0.75, 1], title="share")
    figure.update_layout(
        title=dict(text=f"{escaped(title)}: Spearman ρ = {rho}"),
        width=max(MARGIN["l"] + MARGIN["r"] + len(labels) * CELL_PX * 1.5, 700),
        height=440,
        margin=dict(MARGIN, t=110, b=110),
        font=dict(size=FONT_SIZE),
        barmode="group",
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    )
    return figure
