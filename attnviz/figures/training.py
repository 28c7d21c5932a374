"""The training curve of a checkpoint, from its history.csv: dev BLEU and losses vs step.

Snapshots of the weights (``snapshots/step-250.safetensors``...) are marked on the curve, so
the heatmaps of "attention forming during training" can be read against it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from ..errors import CheckpointError
from ..training.history import DEV_BLEU, DEV_LOSS, STEP, TRAIN_LOSS
from .style import FIT_PX, FONT_SIZE, escaped

__all__ = ["MAX_HISTORY_BYTES", "read_history", "training_curve"]

# history.csv columns drawn, with their legend names; BLEU on the left axis, losses on the right.
CURVES = {DEV_BLEU: "dev BLEU", TRAIN_LOSS: "train loss", DEV_LOSS: "dev loss"}
LOSSES = (TRAIN_LOSS, DEV_LOSS)
COLORS = {DEV_BLEU: "#1f77b4", TRAIN_LOSS: "#ff7f0e", DEV_LOSS: "#7f7f7f"}
MAX_HISTORY_BYTES = 4 * 1024 * 1024  # about 40,000 validations; the file may come from an upload
MARK_FONT = FONT_SIZE - 4
# The plot's width on the narrowest screen (the figure takes the column's width): labels that
# do not overlap there do not overlap on a wider one.
PLOT_PX = FIT_PX - 160
MARK_LEVEL = 0.09  # paper height of one row of snapshot labels


def _number(value: str | None, path: Path, line: int, column: str) -> float:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise CheckpointError(f"{path}, line {line}: {column} {value!r} is not a number")
    return number


def _history_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_HISTORY_BYTES:
            raise CheckpointError(
                f"{path}: {size} bytes, over the {MAX_HISTORY_BYTES} bytes a history may have"
            )
        return path.read_bytes()[: MAX_HISTORY_BYTES + 1].decode("utf-8-sig")
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text") from None


def read_history(path: str | Path) -> pd.DataFrame:
    """history.csv as a table sorted by step: ``step`` and whichever of ``dev_bleu``,
    ``train_loss``, ``dev_loss`` the file has, as floats (one row per validation).

    Raises :class:`CheckpointError` naming the file (and line and column) when it is too big,
    not UTF-8 CSV, has no ``step`` column or none of the curves, no rows, or a value that is
    not a finite number.
    """
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_history_text(path)))
    try:
        fields = reader.fieldnames or []
        curves = [c for c in CURVES if c in fields]
        if STEP not in fields or not curves:
            raise CheckpointError(
                f"{path}: expected a header with step and at least one of "
                f"{', '.join(CURVES)}; got {', '.join(map(str, fields)) or 'nothing'}"
            )
        rows = [
            {c: _number(row.get(c), path, reader.line_num, c) for c in (STEP, *curves)}
            for row in reader
        ]
    except csv.Error as exc:
        raise CheckpointError(f"{path}, line {reader.line_num}: not CSV ({exc})") from None
    if not rows:
        raise CheckpointError(f"{path}: no rows yet (each validation during training adds one)")
    return pd.DataFrame(rows).sort_values(STEP, kind="stable", ignore_index=True)


def mark_levels(marks: Sequence[tuple[int, str]], last_step: float) -> list[int]:
    """The row (0 = top) of each mark's label: the first row where it does not overlap a
    label to its left, on an axis from 0 to ``last_step`` :data:`PLOT_PX` wide."""
    ends: list[float] = []  # per row: where its rightmost label ends, in steps
    levels = [0] * len(marks)
    for i in sorted(range(len(marks)), key=lambda i: marks[i]):
        step, label = marks[i]
        level = next((row for row, end in enumerate(ends) if end <= step), len(ends))
        if level == len(ends):
            ends.append(0.0)
        ends[level] = step + (len(label) * 0.6 * MARK_FONT + 10) / PLOT_PX * last_step
        levels[i] = level
    return levels


def training_curve(
    history: pd.DataFrame, title: str, marks: Sequence[tuple[int, str]] = ()
) -> go.Figure:
    """Dev BLEU (left axis) and losses (right axis) against the training step.

    history: one row per validation, a ``step`` column and any of :data:`CURVES` (as from
    :func:`read_history`); marks: (step, label) pairs drawn as dotted vertical lines, e.g.
    the snapshots, labelled at the top; labels that would overlap go a row lower.
    """
    has_bleu = DEV_BLEU in history
    figure = go.Figure()
    for column, name in CURVES.items():
        if column not in history:
            continue
        on_right = has_bleu and column in LOSSES
        figure.add_trace(
            go.Scatter(
                x=history[STEP].tolist(),
                y=history[column].tolist(),
                name=name,
                mode="lines+markers",
                line=dict(color=COLORS[column], dash="dash" if column in LOSSES else "solid"),
                yaxis="y2" if on_right else "y",
                hovertemplate=f"step %{{x:.0f}}: {name} %{{y:.2f}}<extra></extra>",
            )
        )
    last_step = max([*history[STEP].tolist(), *(step for step, _ in marks)], default=1) or 1
    levels = mark_levels(marks, last_step)
    for (step, label), level in zip(marks, levels, strict=True):
        figure.add_vline(x=step, line=dict(dash="dot", width=1, color="#888888"))
        figure.add_annotation(
            x=step,
            y=1 - level * MARK_LEVEL,
            yref="paper",
            xanchor="left",
            yanchor="top",
            text=escaped(label),
            showarrow=False,
            font=dict(size=MARK_FONT),
            bgcolor="rgba(255,255,255,0.7)",
        )
    figure.update_layout(
        title=dict(text=escaped(title)),
        xaxis=dict(title="training step", rangemode="tozero"),
        # BLEU and losses are never negative: no axis may suggest they could be.
        yaxis=dict(title="dev BLEU" if has_bleu else "loss", rangemode="nonnegative"),
        height=440,
        font=dict(size=FONT_SIZE),
        legend=dict(orientation="h", y=-0.2),
        hovermode="x unified",
    )
    if has_bleu and any(c in history for c in LOSSES):
        figure.update_layout(
            yaxis2=dict(
                title="loss", overlaying="y", side="right", showgrid=False, rangemode="nonnegative"
            )
        )
    return figure
