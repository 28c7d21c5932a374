"""Figures that explain one decoding step: how the scorer's raw scores become the attention
weights and the context vector, and whether attention agrees with gradient saliency.

Built from :class:`attnviz.explain.StepExplanation` and plain arrays (no torch, no Streamlit).
Both figures fit :data:`~attnviz.figures.style.FIT_PX`: the source positions narrow to a
readable minimum, and a longer source wraps its bars into lines, one panel per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import CELL_PX, FIT_PX, FONT_SIZE, MARGIN, column_lines, display_token, escaped

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
SALIENCY_CELL_PX = int(1.5 * CELL_PX)  # two bars a position
SALIENCY_MIN_CELL_PX = 40
SALIENCY_LINE_PX = 200  # one line of the saliency bars
COLORBAR_PX = 90  # right of the plot: the context panel's colour bar and its ticks
MAX_NAME_CHARS = 24  # longer row names of the context panel are cut in the margin


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


def _bars(
    explanation: StepExplanation, values: np.ndarray, what: str, line: range, first: bool
) -> list[go.Bar]:
    """One bar trace per head over the source positions of ``line``; the legend comes from
    the ``first`` line's scores. values: (heads, src_len)."""
    labels = [display_token(explanation.source_pieces[j]) for j in line]
    traces = []
    for h, full_row in enumerate(values):
        row = full_row[line.start : line.stop]
        name = "attention" if explanation.heads == 1 else f"head {h + 1}"
        traces.append(
            go.Bar(
                x=list(line),
                y=row,
                name=name,
                legendgroup=name,
                showlegend=explanation.heads > 1 and what == "e" and first,
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
        colorbar=dict(
            title="value", thickness=14, lenmode="pixels", len=120, y=0.0, yanchor="bottom"
        ),
        customdata=[[name] * rows.shape[1] for name in names],
        hovertemplate="%{customdata}, dimension %{x}: %{z:.3f}<extra></extra>",
        ygap=1,
    )


def _source_axis(labels: list[str], line: range, per_line: int) -> dict:
    """An x axis over the source positions of ``line``, as wide as ``per_line`` of them so
    that every line's cells are equally wide."""
    return dict(
        tickmode="array",
        tickvals=list(line),
        ticktext=[labels[j] for j in line],
        tickangle=-45,
        tickfont=dict(size=FONT_SIZE),
        range=[line.start - 0.5, line.start + per_line - 0.5],
    )


def _cut(name: str) -> str:
    """A row name short enough for the left margin (the hover keeps it whole)."""
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _left_px(names: Sequence[str]) -> int:
    """Room left of the plots for the context panel's row names."""
    longest = min(max(len(n) for n in names), MAX_NAME_CHARS)
    return max(MARGIN["l"], 24 + int(0.55 * FONT_SIZE * longest))


def step_explanation_figure(explanation: StepExplanation, title: str) -> go.Figure:
    """Three panels for one step: the raw scores e_j over the source pieces, the weights α_j
    the softmax makes of them, and the context vector as the sum of the rows α_j m_j (each
    row one source position's share, the last row c_t, with a colour bar and its norm).

    A source too long for :data:`FIT_PX` wraps: panels 1 and 2 get one row of bars per line
    of source positions, each line's bars on axes of their own."""
    rows, names = context_rows(explanation)
    labels = [display_token(p) for p in explanation.source_pieces]
    left = _left_px(names)
    lines, cell = column_lines(len(labels), FIT_PX - left - COLORBAR_PX)
    per_line = max(len(lines[0]), 4)
    heat_px = max(len(names) * ROW_PX, 120)
    heights = [BAR_PANEL_PX] * (2 * len(lines)) + [heat_px]
    norm = float(np.linalg.norm(explanation.context))
    more = " (continued)"
    figure = make_subplots(
        rows=len(heights),
        cols=1,
        row_heights=heights,
        vertical_spacing=GAP_PX / (sum(heights) + (len(heights) - 1) * GAP_PX),
        subplot_titles=(
            "1. Raw scores e_j of the scorer, before the softmax",
            *[f"1.{more}"] * (len(lines) - 1),
            "2. The softmax makes them weights α_j: all positive, summing to 1",
            *[f"2.{more}"] * (len(lines) - 1),
            f"3. Context vector: row j is α_j·m_j, the last row their sum c_t (norm {norm:.2f})",
        ),
    )
    for panel, (values, what) in enumerate(
        ((explanation.energies, "e"), (explanation.weights, "α"))
    ):
        for n, line in enumerate(lines):
            row = panel * len(lines) + n + 1
            for trace in _bars(explanation, values, what, line, first=n == 0):
                figure.add_trace(trace, row=row, col=1)
            figure.update_xaxes(_source_axis(labels, line, per_line), row=row, col=1)
            if what == "e":
                figure.update_yaxes(title="e_j", zeroline=True, zerolinecolor="#444", row=row)
            else:
                figure.update_yaxes(title="α_j", range=[0, 1.15], tickvals=[0, 0.5, 1], row=row)
    heat_row = len(heights)
    figure.add_trace(_context_heatmap(explanation), row=heat_row, col=1)
    figure.update_xaxes(title="dimension of the vector", row=heat_row, col=1)
    figure.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(names))),
        ticktext=[_cut(n) for n in names],
        autorange="reversed",
        tickfont=dict(size=FONT_SIZE - 2),
        row=heat_row,
        col=1,
    )
    figure.update_layout(
        title=dict(text=escaped(title)),
        width=left + per_line * cell + COLORBAR_PX,
        height=150 + sum(heights) + (len(heights) - 1) * GAP_PX,
        margin=dict(l=left, r=COLORBAR_PX, t=110, b=60),
        font=dict(size=FONT_SIZE),
        barmode="group",
        legend=dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom"),
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
    source pieces, with their Spearman rank correlation in the title; a long source wraps
    into lines of bars, one under the other.

    attention: (src_len,) the step's weights; saliency: (src_len,) |gradient x input|,
    normalised to sum to 1
    """
    labels = [display_token(p) for p in source_pieces]
    room = FIT_PX - MARGIN["l"] - MARGIN["r"]
    lines, cell = column_lines(len(labels), room, SALIENCY_CELL_PX, SALIENCY_MIN_CELL_PX)
    per_line = max(len(lines[0]), 4)
    figure = make_subplots(
        rows=len(lines),
        cols=1,
        vertical_spacing=GAP_PX / (len(lines) * SALIENCY_LINE_PX + (len(lines) - 1) * GAP_PX),
    )
    for n, line in enumerate(lines):
        for name, values, color in (
            ("attention", attention, ATTENTION_COLOR),
            ("saliency (|gradient × input|, share)", saliency, SALIENCY_COLOR),
        ):
            shown = values[line.start : line.stop]
            figure.add_trace(
                go.Bar(
                    x=list(line),
                    y=shown,
                    name=name,
                    legendgroup=name,
                    showlegend=n == 0,
                    marker=dict(color=color),
                    text=[f"{v:.2f}" for v in shown],
                    textposition="outside",
                    cliponaxis=False,
                    customdata=[f"“{labels[j]}”: {name} {values[j]:.3f}" for j in line],
                    hovertemplate="%{customdata}<extra></extra>",
                ),
                row=n + 1,
                col=1,
            )
        figure.update_xaxes(_source_axis(labels, line, per_line), row=n + 1, col=1)
    rho = "undefined (one of them is constant)" if np.isnan(spearman) else f"{spearman:+.2f}"
    figure.update_yaxes(range=[0, 1.15], tickvals=[0, 0.25, 0.5, 0.75, 1], title="share")
    figure.update_layout(
        title=dict(text=f"{escaped(title)}: Spearman ρ = {rho}"),
        width=MARGIN["l"] + MARGIN["r"] + per_line * cell,
        height=220 + len(lines) * SALIENCY_LINE_PX + (len(lines) - 1) * GAP_PX,
        margin=dict(MARGIN, t=110, b=110),
        font=dict(size=FONT_SIZE),
        barmode="group",
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    )
    return figure
