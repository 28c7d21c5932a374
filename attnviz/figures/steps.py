"""The step-through figure: attention at step t, the output so far, the top-k next tokens and
the context vector, one animation frame per step.

The figure fits :data:`~attnviz.figures.style.FIT_PX` in width whatever the sentence: the
attention over a long source wraps into lines (like text), so the attended word, the current
token and its probability are never past the right edge.

Steps are :class:`attnviz.translator.Step` objects read by attribute only, so this module needs
neither torch nor Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from .style import (
    CELL_PX,
    CHAR_PX,
    CHOSEN_COLOR,
    COLOR_SCALE,
    FIT_PX,
    FONT_SIZE,
    MARGIN,
    column_lines,
    display_token,
    escaped,
    stack_bands,
)

if TYPE_CHECKING:
    from ..translator import Step

__all__ = ["attention_rows", "output_text", "step_figure", "topk_bars"]

OTHER_COLOR = "#6baed6"  # bars other than the chosen token: a mid blue, legible in both themes
CONTEXT_SCALE = "PuOr"  # diverging (context values have a sign); not red, which means "chosen"
FRAME_MS = 900  # one step every 0.9 s: time to say it aloud in a classroom
BAR_PX = 36
STRIP_PX = 40
CONTEXT_BAR_PX = 110  # the context strip's colour bar: long enough for three numbers
TITLE_PX = 34  # a panel's title
GAP_PX = 28  # between panels
LINE_PX = 30  # one line of the output text
LINE_GAP_PX = 10  # between the wrapped lines of the attention
MIN_STEP_CELL_PX = 40  # an attention cell holds its weight ("0.23") as text
RIGHT_PX = 110  # the colour bars
MAX_LABEL_CHARS = 16  # longer source labels reach into the band above


def topk_bars(step: Step) -> tuple[list[str], list[float], int]:
    """(pieces, probabilities, index of the chosen one) of the top-k bars of ``step``.

    The chosen token is always shown: beam search or a forced prefix may choose a token
    outside the top-k, which then comes as one more bar.
    """
    pieces = [c.piece for c in step.candidates]
    probs = [float(c.prob) for c in step.candidates]
    if step.piece not in pieces:
        pieces.append(step.piece)
        probs.append(float(step.prob))
    return pieces, probs, pieces.index(step.piece)


def attention_rows(step: Step) -> tuple[np.ndarray, list[str]]:
    """(rows, row names): the attention of ``step`` over the source, (rows, src_len); for a
    multi-head model the mean of the heads first, then each head."""
    mean = np.asarray(step.attention, dtype=float)[None, :]
    heads = np.asarray(step.head_attention, dtype=float)
    if heads.shape[0] == 1:
        return mean, ["attention"]
    names = ["mean of heads"] + [f"head {h + 1}" for h in range(heads.shape[0])]
    return np.concatenate([mean, heads]), names


def output_text(target_tokens: Sequence[str], index: int, chars_per_line: int) -> str:
    """The output up to step ``index`` (0-based) as Plotly text, the token of that step
    highlighted, wrapped into lines of about ``chars_per_line`` characters."""
    shown = [display_token(t) for t in target_tokens[: index + 1]]
    shown[-1] = f'<b><span style="color:{CHOSEN_COLOR}">{shown[-1]}</span></b>'
    lines: list[list[str]] = [[]]
    used = 0
    for token, text in zip(target_tokens[: index + 1], shown, strict=True):
        if lines[-1] and used + len(token) + 1 > chars_per_line:
            lines.append([])
            used = 0
        lines[-1].append(text)
        used += len(token) + 1
    return "<br>".join(" ".join(line) for line in lines)


@dataclass
class _Geometry:
    """Pixel layout of the step figure, fixed across its frames so nothing jumps."""

    width: int
    height: int
    margin: dict
    bands: dict[str, tuple[float, float]]  # paper (bottom, top) of each band
    lines: list[range]  # source columns of each wrapped line of the attention
    cell_px: int
    chars_per_line: int
    attention_px: int
    context_limit: float  # the context strip's colours span [-limit, limit] at every step


def _geometry(
    source_tokens: Sequence[str], target_tokens: Sequence[str], steps: Sequence[Step]
) -> _Geometry:
    bars = [topk_bars(s)[0] for s in steps]
    longest_label = max(len(display_token(p)) for b in bars for p in b)
    left = max(MARGIN["l"], 24 + int(CHAR_PX * max(longest_label, len("mean of heads"))))
    plot_px = FIT_PX - left - RIGHT_PX
    lines, cell = column_lines(len(source_tokens), plot_px, CELL_PX, MIN_STEP_CELL_PX)
    chars_per_line = int(plot_px / CHAR_PX)
    n_rows = len(attention_rows(steps[0])[1])
    n_out = output_text(target_tokens, len(steps) - 1, chars_per_line).count("<br>") + 1
    heights = {"attention_title": TITLE_PX}
    for n, line in enumerate(lines):
        longest = max(len(display_token(source_tokens[j])) for j in line)
        heights[f"source_labels{n}"] = 24 + int(0.7 * CHAR_PX * min(longest, MAX_LABEL_CHARS))
        heights[f"attention{n}"] = n_rows * cell
        heights[f"line_gap{n}"] = LINE_GAP_PX
    heights.update(
        {
            "gap1": GAP_PX,
            "output_title": TITLE_PX,
            "output": n_out * LINE_PX + 8,
            "gap2": GAP_PX,
            "topk_title": TITLE_PX,
            "topk": max(len(b) for b in bars) * BAR_PX,
            "gap3": GAP_PX,
            "context_title": TITLE_PX,
            "context": STRIP_PX,
        }
    )
    margin = dict(l=left, r=RIGHT_PX, t=60, b=80)  # t: a two-line title; b: the play buttons
    return _Geometry(
        width=left + margin["r"] + plot_px,
        height=margin["t"] + margin["b"] + sum(heights.values()),
        margin=margin,
        bands=stack_bands(heights),
        lines=lines,
        cell_px=cell,
        chars_per_line=chars_per_line,
        attention_px=n_rows * cell,
        context_limit=_context_limit(steps),
    )


def _attention_axes(n: int) -> tuple[str, str]:
    """The axes of wrapped line ``n`` of the attention: x/y for the first (as before
    wrapping), x4/y4 onwards for the others (x2 and x3 are the top-k and context panels)."""
    return ("x", "y") if n == 0 else (f"x{n + 3}", f"y{n + 3}")


def _attention_traces(source_tokens: Sequence[str], step: Step, geo: _Geometry) -> list[go.Heatmap]:
    """One heatmap per wrapped line of the source; the first carries the colour bar."""
    rows, names = attention_rows(step)
    sources = [display_token(t) for t in source_tokens]
    hover = [
        [f"“{s}”: {w:.2f} ({name})" for s, w in zip(sources, row, strict=True)]
        for name, row in zip(names, rows.tolist(), strict=True)
    ]
    traces = []
    for n, line in enumerate(geo.lines):
        x, y = _attention_axes(n)
        traces.append(
            go.Heatmap(
                z=rows[:, line.start : line.stop],
                x=list(line),
                y=list(range(len(names))),
                zmin=0.0,
                zmax=1.0,
                colorscale=COLOR_SCALE,
                showscale=n == 0,
                colorbar=dict(
                    title="weight",
                    thickness=14,
                    lenmode="pixels",
                    len=max(geo.attention_px, 120),
                    y=geo.bands["attention0"][1],
                    yanchor="top",
                ),
                texttemplate="%{z:.2f}",
                textfont=dict(size=FONT_SIZE - 3),
                customdata=[row[line.start : line.stop] for row in hover],
                hovertemplate="%{customdata}<extra></extra>",
                xgap=1,
                ygap=1,
                xaxis=x,
                yaxis=y,
            )
        )
    return traces


def _topk_trace(step: Step) -> go.Bar:
    pieces, probs, chosen = topk_bars(step)
    labels = [display_token(p) for p in pieces]
    return go.Bar(
        x=probs,
        y=list(range(len(pieces))),
        orientation="h",
        marker=dict(
            color=[CHOSEN_COLOR if i == chosen else OTHER_COLOR for i in range(len(probs))]
        ),
        text=[f"{p:.2f}" for p in probs],
        textposition="outside",
        customdata=[f"“{label}”: {p:.3f}" for label, p in zip(labels, probs, strict=True)],
        hovertemplate="%{customdata}<extra></extra>",
        xaxis="x2",
        yaxis="y2",
    )


def _context_limit(steps: Sequence[Step]) -> float:
    """The largest context value of any step (1 when all are 0); a model behind an adapter
    may report no context vector (size 0)."""
    sizes = [float(np.abs(s.context).max()) for s in steps if np.size(s.context)]
    return max(sizes, default=0.0) or 1.0


def _context_trace(step: Step, geo: _Geometry) -> go.Heatmap:
    return go.Heatmap(
        z=np.asarray(step.context, dtype=float)[None, :],
        zmin=-geo.context_limit,
        zmax=geo.context_limit,
        colorscale=CONTEXT_SCALE,
        colorbar=dict(  # taller than the strip, reaching into the bottom margin
            title="value",
            thickness=14,
            lenmode="pixels",
            len=CONTEXT_BAR_PX,
            y=geo.bands["context"][1],
            yanchor="top",
            tickformat=".2g",
        ),
        hovertemplate="dimension %{x}: %{z:.2f}<extra></extra>",
        xaxis="x3",
        yaxis="y3",
    )


def _texts(
    target_tokens: Sequence[str], step: Step, n_steps: int, title: str, geo: _Geometry
) -> dict:
    """The layout entries that change with the step: titles, the output text, top-k labels."""
    norm = float(np.linalg.norm(step.context))
    titles = {
        "attention_title": "Attention over the source at this step",
        "output_title": "Output so far (this step's token in red)",
        "topk_title": "Top-k next tokens by probability (the chosen one in red)",
        "context_title": f"Context vector this attention produced (norm {norm:.2f})"
        if np.size(step.context)
        else "Context vector: not reported by this model",
    }
    annotations = [
        dict(text=text, y=geo.bands[band][0], yanchor="bottom", font=dict(size=FONT_SIZE + 2))
        for band, text in titles.items()
    ]
    annotations.append(
        dict(
            text=output_text(target_tokens, step.index, geo.chars_per_line),
            y=geo.bands["output"][1],
            yanchor="top",
            align="left",
            font=dict(size=FONT_SIZE + 4),
        )
    )
    for annotation in annotations:
        annotation.update(x=0, xref="paper", yref="paper", xanchor="left", showarrow=False)
    pieces = topk_bars(step)[0]
    heading = (
        f"{escaped(title)}: step {step.index + 1} of {n_steps}<br>"
        f"“{display_token(step.piece)}” with p = {step.prob:.2f}"
    )
    return dict(
        title=dict(
            text=heading,
            x=0.01,
            xanchor="left",
            y=1,
            yref="container",
            yanchor="top",
            pad=dict(t=12),
            font=dict(size=FONT_SIZE + 2),
        ),
        annotations=annotations,
        yaxis2=dict(
            tickvals=list(range(len(pieces))),
            ticktext=[display_token(p) for p in pieces],
            range=[len(pieces) - 0.5, -0.5],
        ),
    )


def _axes(source_tokens: Sequence[str], step: Step, geo: _Geometry) -> dict:
    """The layout entries fixed across steps: the three panels' axes."""
    names = attention_rows(step)[1]
    font = dict(size=FONT_SIZE)
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False)
    axes = {}
    for n, line in enumerate(geo.lines):
        x, y = _attention_axes(n)
        axes["xaxis" + x[1:]] = dict(
            anchor=y,
            side="top",
            domain=[0, len(line) * geo.cell_px / (geo.width - geo.margin["l"] - geo.margin["r"])],
            range=[line.start - 0.5, line.stop - 0.5],
            tickmode="array",
            tickvals=list(line),
            ticktext=[display_token(source_tokens[j]) for j in line],
            tickangle=-45,
            tickfont=font,
            showgrid=False,
            zeroline=False,
        )
        axes["yaxis" + y[1:]] = dict(
            anchor=x,
            domain=geo.bands[f"attention{n}"],
            tickmode="array",
            tickvals=list(range(len(names))),
            ticktext=names,
            range=[len(names) - 0.5, -0.5],
            tickfont=font,
            showgrid=False,
            zeroline=False,
        )
    return dict(
        **axes,
        xaxis2=dict(anchor="y2", range=[0, 1.15], tickvals=[0, 0.5, 1], tickfont=font),
        yaxis2=dict(domain=geo.bands["topk"], anchor="x2", tickmode="array", tickfont=font),
        xaxis3=dict(anchor="y3", **hidden),
        yaxis3=dict(domain=geo.bands["context"], anchor="x3", **hidden),
    )


def _play_buttons() -> dict:
    """Play/pause inside the figure: the browser animates the frames, no server round trip."""
    play = dict(frame=dict(duration=FRAME_MS, redraw=True), transition=dict(duration=0))
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0))
    return dict(
        type="buttons",
        direction="left",
        x=0,
        y=0,
        xanchor="left",
        yanchor="top",
        pad=dict(t=24),
        font=dict(size=FONT_SIZE),
        buttons=[
            dict(label="▶ Play from step 1", method="animate", args=[None, play]),
            dict(label="Pause", method="animate", args=[[None], {**pause, "mode": "immediate"}]),
        ],
    )


def step_figure(
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    steps: Sequence[Step],
    index: int,
    title: str,
) -> go.Figure:
    """Decoding step ``index`` (0-based) of an output: the attention over ``source_tokens``
    (each head's too for multi-head models), the output so far, the top-k next tokens with
    the chosen one highlighted, and the context vector.

    ``steps[i]`` produced ``target_tokens[i]``. The figure carries one animation frame per
    step (named by its 1-based step number) and a play button that runs through them.
    """
    geo = _geometry(source_tokens, target_tokens, steps)
    frames = []
    for step in steps:
        first, *more = _attention_traces(source_tokens, step, geo)
        # The first three traces keep their places whatever the wrapping: attention (first
        # line), top-k, context; the other lines of the attention follow.
        traces = [first, _topk_trace(step), _context_trace(step, geo), *more]
        texts = _texts(target_tokens, step, len(steps), title, geo)
        frames.append(go.Frame(name=str(step.index + 1), data=traces, layout=texts))
    figure = go.Figure(data=frames[index].data, frames=frames)
    figure.update_layout(_axes(source_tokens, steps[index], geo))
    figure.update_layout(frames[index].layout)
    figure.update_layout(
        width=geo.width,
        height=geo.height,
        margin=geo.margin,
        font=dict(size=FONT_SIZE),
        showlegend=False,
        updatemenus=[_play_buttons()],
    )
    return figure
