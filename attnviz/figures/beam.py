"""Beam search figures: the tree of every candidate the beam considered, and two hypotheses'
attention side by side from where they diverge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from ..search import NodeStatus
from .heatmap import HeatmapBlock, stacked_heatmaps
from .style import CHOSEN_COLOR, FONT_SIZE, display_token, escaped

if TYPE_CHECKING:
    from ..translator import BeamNode, Hypothesis

__all__ = [
    "STATUS_STYLE",
    "DrawnNode",
    "beam_tree_figure",
    "collapse_pruned",
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
STEP_PX = 120  # horizontal room per step: the marker and its piece
NODE_PX = 28  # vertical room per node
LABEL_SIZE = FONT_SIZE - 2  # node labels: 14 px, read from the back of a classroom
PATH_LABEL_BG = "rgba(255, 255, 255, 0.92)"  # the picked path's labels sit on its line
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


def tree_layout(nodes: Sequence[BeamNode | DrawnNode]) -> dict[int, tuple[float, float]]:
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


@dataclass(frozen=True)
class DrawnNode:
    """A marker of the tree: one node of the beam, or the pruned children of one parent
    collapsed into one (``count`` > 1, ``label`` "7 pruned", the pieces in ``hover``)."""

    id: int
    step: int
    parent: int
    label: str
    cumulative_logprob: float
    status: NodeStatus
    hover: str
    count: int = 1


def _hover(node: BeamNode) -> str:
    return (
        f"“{display_token(node.piece)}” at step {node.step + 1}, {node.status}<br>"
        f"log-prob {node.logprob:.3f}<br>cumulative log-prob {node.cumulative_logprob:.3f}"
    )


def _drawn(node: BeamNode) -> DrawnNode:
    """One node of the tree, drawn as itself."""
    return DrawnNode(
        node.id,
        node.step,
        node.parent,
        display_token(node.piece),
        node.cumulative_logprob,
        node.status,
        _hover(node),
    )


def collapse_pruned(nodes: Sequence[BeamNode]) -> list[DrawnNode]:
    """The markers to draw: every kept, finished and stopped node, and each parent's pruned
    children as one marker when there are several (beam 10 prunes ~90 nodes a step; drawn
    one by one the tree is metres tall). Collapsed markers get ids below -1."""
    drawn = [_drawn(n) for n in nodes if n.status != NodeStatus.PRUNED]
    pruned: dict[int, list[BeamNode]] = {}
    for n in nodes:
        if n.status == NodeStatus.PRUNED:
            pruned.setdefault(n.parent, []).append(n)
    for parent, group in pruned.items():
        if len(group) == 1:
            (n,) = group
            drawn.append(_drawn(n))
            continue
        group.sort(key=lambda n: -n.cumulative_logprob)
        pieces = "<br>".join(
            f"“{display_token(n.piece)}” {n.cumulative_logprob:.3f}" for n in group
        )
        drawn.append(
            DrawnNode(
                -2 - len(drawn),
                group[0].step,
                parent,
                f"{len(group)} pruned",
                group[0].cumulative_logprob,
                NodeStatus.PRUNED,
                f"{len(group)} pruned at step {group[0].step + 1} "
                f"(cumulative log-prob):<br>{pieces}",
                len(group),
            )
        )
    return drawn


def _edges(nodes: Sequence[DrawnNode], position: dict) -> go.Scatter:
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


def _nodes(
    nodes: Sequence[DrawnNode], position: dict, status: NodeStatus, on_path: set[int]
) -> go.Scatter:
    """The markers of one status; labels of the picked path are drawn apart (on top)."""
    label, color, symbol = STATUS_STYLE[status]
    chosen = [n for n in nodes if n.status == status]
    return go.Scatter(
        x=[position[n.id][0] for n in chosen],
        y=[position[n.id][1] for n in chosen],
        mode="markers+text",
        marker=dict(color=color, symbol=symbol, size=11),
        text=["" if n.id in on_path else n.label for n in chosen],
        textposition="middle right",
        textfont=dict(size=LABEL_SIZE),
        hovertext=[n.hover for n in chosen],
        hoverinfo="text",
        name=label,
        legendgroup=status,
    )


def beam_tree_figure(
    nodes: Sequence[BeamNode], title: str, highlight: Sequence[int] = ()
) -> go.Figure:
    """Every node the beam expanded: x = step, edges parent -> child, status by colour and
    symbol, hover with piece, log-prob and cumulative log-prob; each parent's pruned
    children collapse into one marker (see :func:`collapse_pruned`). ``highlight``: node ids
    of a path from the start (a hypothesis, see :func:`hypothesis_path`), drawn under the
    markers, its labels on a light ground above its line."""
    drawn = collapse_pruned(nodes)
    position = tree_layout(drawn)
    figure = go.Figure(_edges(drawn, position))
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
            textfont=dict(size=LABEL_SIZE),
            hoverinfo="skip",
            name="start",
        )
    )
    on_path = set(highlight)
    for status in STATUS_STYLE:
        if any(n.status == status for n in drawn):
            figure.add_trace(_nodes(drawn, position, status, on_path))
    for n in drawn:
        if n.id in on_path:
            figure.add_annotation(
                x=position[n.id][0],
                y=position[n.id][1],
                text=f"<b>{n.label}</b>",
                xanchor="left",
                xshift=12,
                showarrow=False,
                bgcolor=PATH_LABEL_BG,
                font=dict(size=LABEL_SIZE, color=CHOSEN_COLOR),
            )
    steps = max((n.step for n in drawn), default=-1) + 2
    widest = max((sum(n.step == s for n in drawn) for s in range(steps - 1)), default=1)
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
        title=dict(text=escaped(title), x=0, xref="paper", y=0.99, yanchor="top"),
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
    first differ, see :func:`first_divergence`) to their ends, one above the other over the
    same source columns (side by side, a long sentence would push the second off-screen)."""
    blocks = [
        HeatmapBlock(
            h.pieces[start:],
            h.attention[start:],
            title=f"rank {h.rank}: steps {start + 1} to {len(h.pieces)}",
            first_step=start + 1,
        )
        for h in (first, second)
    ]
    return stacked_heatmaps(source_tokens, blocks, title)
