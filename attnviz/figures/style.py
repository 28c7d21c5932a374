"""The visual language every figure shares: one colour scale fixed to [0, 1], projector-sized
fonts, cells with a readable minimum size, and token text that Plotly shows literally."""

from __future__ import annotations

import html

__all__ = [
    "CELL_PX",
    "CHOSEN_COLOR",
    "COLOR_SCALE",
    "FONT_SIZE",
    "MARGIN",
    "display_token",
    "escaped",
    "search_label",
]

COLOR_SCALE = "Blues"  # perceptually uniform, sequential; fixed to [0, 1] everywhere
CELL_PX = 44  # rows and columns keep this readable minimum size; long inputs scroll
MARGIN = dict(l=120, r=40, t=130, b=30)
FONT_SIZE = 16  # readable on a projector
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
