"""The visual language every figure shares: one colour scale fixed to [0, 1], projector-sized
fonts, cells with a readable minimum size, and token text that Plotly shows literally."""

from __future__ import annotations

import html
import math

__all__ = [
    "CELL_PX",
    "CHAR_PX",
    "CHOSEN_COLOR",
    "COLOR_SCALE",
    "FIT_PX",
    "FONT_SIZE",
    "MARGIN",
    "MIN_CELL_PX",
    "column_lines",
    "display_token",
    "escaped",
    "search_label",
    "stack_bands",
]

COLOR_SCALE = "Blues"  # perceptually uniform, sequential; fixed to [0, 1] everywhere
CELL_PX = 44  # rows and columns of short inputs; long inputs shrink to MIN_CELL_PX, then wrap
MIN_CELL_PX = 28  # the narrowest column whose 45°-rotated label still reads on a projector
# The widest figure that fits beside the open sidebar at 1024x768 (the app's narrowest
# supported screen; measured in Chromium: the main column is 676 px there). Wider content
# wraps into rows instead of running past the right edge.
FIT_PX = 670
MARGIN = dict(l=120, r=40, t=130, b=30)
FONT_SIZE = 16  # readable on a projector
CHAR_PX = 0.6 * FONT_SIZE  # rough width of one character: wraps text, sizes margins
CHOSEN_COLOR = "#d62728"  # the token the model chose, hard-alignment links


def display_token(token: str) -> str:
    """A token as text that Plotly shows literally (its labels understand a little HTML).

    SentencePiece's word-start mark "▁" stays visible as a thin mark.
    """
    return html.escape(token, quote=False)


def escaped(text: str) -> str:
    """Any user-derived text (titles, hover) made literal for Plotly."""
    return html.escape(text, quote=False)


def search_label(beam_size: int) -> str:
    """How a figure names the search that made the translation it draws (the best
    hypothesis): "greedy" or "beam 5, best"."""
    return "greedy" if beam_size == 1 else f"beam {beam_size}, best"


def column_lines(
    n_columns: int, room_px: int, cell_px: int = CELL_PX, min_cell_px: int = MIN_CELL_PX
) -> tuple[list[range], int]:
    """(lines, column width): ``n_columns`` columns cut into lines that fit ``room_px``, and
    the width each column gets (from ``cell_px`` down to ``min_cell_px``, never less).

    Lines are as even as possible, so a long sentence wraps into rows of similar length."""
    widest = max(1, room_px // min_cell_px)
    n_lines = max(1, math.ceil(n_columns / widest))
    per_line = max(1, math.ceil(n_columns / n_lines))
    cell = max(min_cell_px, min(cell_px, room_px // per_line))
    return [range(i, min(i + per_line, n_columns)) for i in range(0, n_columns, per_line)], cell


def stack_bands(bands: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Paper (bottom, top) of bands stacked top to bottom with the given pixel heights."""
    total = sum(bands.values()) or 1
    domains, top = {}, total
    for name, height in bands.items():
        domains[name] = ((top - height) / total, top / total)
        top -= height
    return domains
