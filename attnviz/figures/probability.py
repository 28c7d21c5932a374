"""What-if's figure: the probability the model gives each piece of a forced target, the
surprising ones marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .style import CELL_PX, CHOSEN_COLOR, FONT_SIZE, MARGIN, display_token, escaped

__all__ = ["PROBABILITY_SCALE", "SURPRISE", "format_probability", "token_probability_figure"]

SURPRISE = 0.1  # a forced token the model gives less probability than this stands out
# Low (surprising) probabilities red, likely ones blue; orange at the SURPRISE threshold.
PROBABILITY_SCALE = [
    [0.0, CHOSEN_COLOR],
    [SURPRISE, "#fdae61"],
    [0.35, "#9ecae1"],
    [1.0, "#08519c"],
]


def format_probability(prob: float) -> str:
    """Two significant digits: 0.93, 0.012, 3.1e-05 (tiny ones stay distinguishable)."""
    return f"{prob:.2g}"


def token_probability_figure(
    pieces: Sequence[str], logprobs: np.ndarray, title: str, threshold: float = SURPRISE
) -> go.Figure:
    """Bars of the probability the model gives each piece of a forced target.

    logprobs: (tgt_len,) natural-log probability of ``pieces[i]``. Bars are coloured by
    probability (red when low); pieces below ``threshold`` get a marker above their bar.
    """
    probs = np.exp(np.asarray(logprobs, dtype=float))
    labels = [display_token(p) for p in pieces]
    positions = list(range(len(pieces)))
    hover = [
        f"“{label}”: p = {format_probability(p)}, log p = {lp:.2f} (position {i + 1})"
        for i, (label, p, lp) in enumerate(zip(labels, probs, logprobs, strict=True))
    ]
    figure = go.Figure(
        go.Bar(
            x=positions,
            y=probs,
            marker=dict(
                color=probs,
                cmin=0.0,
                cmax=1.0,
                colorscale=PROBABILITY_SCALE,
                colorbar=dict(title="probability", thickness=14),
            ),
            text=[format_probability(p) for p in probs],
            textposition="outside",
            textfont=dict(size=FONT_SIZE - 2),
            constraintext="none",
            cliponaxis=False,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            name="probability",
        )
    )
    surprising = [i for i in positions if probs[i] < threshold]
    figure.add_trace(
        go.Scatter(
            x=surprising,
            y=[1.2] * len(surprising),
            mode="markers",
            marker=dict(symbol="triangle-down", size=18, color=CHOSEN_COLOR),
            name=f"surprising (p < {threshold:g})",
            hoverinfo="skip",
        )
    )
    figure.add_hline(y=threshold, line=dict(dash="dash", color=CHOSEN_COLOR, width=1))
    figure.update_xaxes(
        tickmode="array",
        tickvals=positions,
        ticktext=labels,
        tickangle=-45,
        tickfont=dict(size=FONT_SIZE),
        range=[-0.5, max(len(pieces), 4) - 0.5],
    )
    figure.update_yaxes(range=[0, 1.3], tickvals=[0, 0.25, 0.5, 0.75, 1], title="probability")
    figure.update_layout(
        title=dict(text=f"{escaped(title)} (▼ and dashed line: p < {threshold:g})"),
        width=MARGIN["l"] + MARGIN["r"] + max(len(pieces), 4) * CELL_PX + 80,
        height=460,
        margin=dict(MARGIN, t=80, b=120),
        font=dict(size=FONT_SIZE),
        showlegend=False,
        bargap=0.15,
    )
    return figure
