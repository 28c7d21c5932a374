"""Beam search figures: the tree of every candidate the beam considered, and two hypotheses'
attention side by side from where they diverge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from ..search import NodeStatus
from .compare import Panel, side_by_side_heatmaps
from .style import CHOSEN_COLOR, FONT_SIZE, display_token, escaped

if TYPE_CHECKING:
    from ..translator import BeamNode, Hypothesis

__all__ = [
    "STATUS_STYLE",
    "beam_tree_figure",
    "divergence_figure",
    "first_divergence",
    "hypothesis_path",
    "tree_layout",
]

# status -> (legend label, colour, marker symbol): told apart by colour and by shape.
STATUS_STYLE = {
    NodeStatus.KEPT: ("kept (expanded further)", "#1f77b4", "circle"),
    NodeStatus.FINISHED: ("finished (a complete hypothesis)", "#2ca02c", "star"),
    NodeStatus.STOPPED: ("stopped (in the beam at the length limit)", "#ff7f0e", "diamond"),
    NodeStatus.PRUNED: ("pruned (fell out of the beam)", "#7f7f7f", "x"),
}
STEP_PX = 110  # horizontal room per step: the marker and its piece
NODE_PX = 26  # vertical room per node
TREE_MARGIN = dict(l=40, r=40, t=150, b=50)
EDGE_COLOR = "rgba(128, 128, 128, 0.45)"  # readable on light and dark backgrounds


def first_divergence(first: Sequence[str], second: Sequence[str]) -> int | None:
    """Index of the first position where two piece sequences differ (the shorter one's
    length when it is a prefix of the other); None when they are equal."""
    for i, (a, b) in enumerate(zip(first, second, strict=False)):
        if a != b:
            return i
    return None if len(first) == len(second) else min(len(first), len(second))


def hypothesis_path(nodes: Sequence[BeamNode], pieces: Sequence[str]) -> list[int]:
    """Ids of the tree nodes that spell ``pieces`` from the start, in order (a beam never
    proposes the same piece twice after one node, so the path is unique)."""
    children: dict[tuple[int, str], int] = {(n.parent, n.piece): n.id for n in nodes}
    path, parent = [], -1
    for piece in pieces:
        if (parent, piece) not in children:
            break
        parent = children[(parent, piece)]
        path.append(parent)
    return path


def tree_layout(nodes: Sequence[BeamNode]) -> dict[int, tuple[float, float]]:
    """Position (x, y) of each node id, the start (id -1) at (0, 0).

    x is the step (1 for the first output piece). Each step's nodes are stacked in the order
    of their parents, then best cumulative log-probability first, and centred on 0, so edges
    never cross and the best continuations sit on top.
    """
    position: dict[int, tuple[float, float]] = {-1: (0.0, 0.0)}
    for step in sorted({n.step for n in nodes}):
        column = sorted(
            (n for n in nodes if n.step == step),
            key=lambda n: (position[n.parent][1], -n.cumulative_logprob),
        )
        middle = (len(column) - 1) / 2
        for i, node in enumerate(column):
            position[node.id] = (float(step + 1), i - middle)
    return position


def _hover(node: BeamNode) -> str:
    return (
        f"“{display_token(node.piece)}” at step {node.step + 1}, {node.status}<br>"
        f"log-prob {node.logprob:.3f}<br>cumulative log-prob {node.cumulative_logprob:.3f}"
    )


def _edges(nodes: Sequence[BeamNode], position: dict) -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for node in nodes:
        for point in (position[node.parent], position[node.id], (None, None)):
            xs.append(point[0])
            ys.append(point[1])
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color=EDGE_COLOR, width=1),
        hoverinfo="skip",
        showlegend=False,
    )


def _nodes(nodes: Sequence[BeamNode], position: dict, status: NodeStatus) -> go.Scatter:
    label, color, symbol = STATUS_STYLE[status]
    chosen = [n for n in nodes if n.status == status]
    return go.Scatter(
        x=[position[n.id][0] for n in chosen],
        y=[position[n.id][1] for n in chosen],
        mode="markers+text",
        marker=dict(color=color, symbol=symbol, size=11),
        text=[display_token(n.piece) for n in chosen],
        textposition="middle right",
        textfont=dict(size=FONT_SIZE - 4),
        hovertext=[_hover(n) for n in chosen],
        hoverinfo="text",
        name=label,
        legendgroup=status,
    )


def beam_tree_figure(
    nodes: Sequence[BeamNode], title: str, highlight: Sequence[int] = ()
) -> go.Figure:
    """Every node the beam expanded: x = step, edges parent -> child, status by colour and
    symbol, hover with piece, log-prob and cumulative log-prob. ``highlight``: node ids of a
    path from the start (a hypothesis, see :func:`hypothesis_path`), drawn on top."""
    position = tree_layout(nodes)
    figure = go.Figure(_edges(nodes, position))
    if highlight:
        path = [position[-1], *(position[i] for i in highlight)]
        figure.add_trace(
            go.Scatter(
                x=[p[0] for p in path],
                y=[p[1] for p in path],
                mode="lines+markers",
                line=dict(color=CHOSEN_COLOR, width=4),
                marker=dict(color=CHOSEN_COLOR, symbol="circle-open", size=19, line=dict(width=2)),
                hoverinfo="skip",
                name="the picked hypothesis",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[0.0],
            y=[0.0],
            mode="markers+text",
            marker=dict(color="#9467bd", symbol="square", size=12),
            text=["start"],
            textposition="middle left",
            hoverinfo="skip",
            name="start",
        )
    )
    for status in STATUS_STYLE:
        if any(n.status == status for n in nodes):
            figure.add_trace(_nodes(nodes, position, status))
    steps = max((n.step for n in nodes), default=-1) + 2
    widest = max((sum(n.step == s for n in nodes) for s in range(steps - 1)), default=1)
    figure.update_xaxes(
        title="step",
        tickmode="array",
        tickvals=list(range(steps)),
        ticktext=["start", *(str(s) for s in range(1, steps))],
        range=[-0.7, steps - 0.2],
        showgrid=False,
        zeroline=False,
    )
    figure.update_yaxes(visible=False, autorange="reversed")
    figure.update_layout(
        title=dict(text=escaped(title), y=0.99, yanchor="top"),
        width=TREE_MARGIN["l"] + TREE_MARGIN["r"] + (steps + 1) * STEP_PX,
        height=TREE_MARGIN["t"] + TREE_MARGIN["b"] + max(widest, 4) * NODE_PX,
        margin=TREE_MARGIN,
        font=dict(size=FONT_SIZE),
        legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"),
    )
    return figure


def divergence_figure(
    source_tokens: Sequence[str],
    first: Hypothesis,
    second: Hypothesis,
    start: int,
    title: str,
) -> go.Figure:
    """The two hypotheses' attention rows from step ``start`` (0-based, where their pieces
    first differ, see :func:`first_divergence`) to their ends, side by side."""
    panels = [
        Panel(
            f"rank {h.rank}: steps {start + 1} to {len(h.pieces)}",
            source_tokens,
            h.pieces[start:],
            h.attention[start:],
            first_step=start + 1,
        )
        for h in (first, second)
    ]
    return side_by_side_heatmaps(panels, title)
