"""Plotly figures drawn from plain arrays, strings and result objects (no Streamlit, no torch):
usable from a notebook as well as from the app. The UI only arranges them.

Heatmaps read like Bahdanau et al. (2015): source tokens across the top, one row per output
token, darker = more weight, one colour scale fixed to [0, 1] with its colour bar, so any two
heatmaps can be compared by eye.
"""

from .heatmap import attention_heatmap
from .style import COLOR_SCALE, display_token

__all__ = ["COLOR_SCALE", "attention_heatmap", "display_token"]
