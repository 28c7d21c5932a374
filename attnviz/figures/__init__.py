"""Plotly figures drawn from plain arrays, strings and result objects (no Streamlit): usable
from a notebook as well as from the app. The UI only arranges them.

Heatmaps read like Bahdanau et al. (2015): source tokens across the top, one row per output
token, darker = more weight, one colour scale fixed to [0, 1] with its colour bar, so any two
heatmaps can be compared by eye.
"""

from .beam import beam_tree_figure, divergence_figure, first_divergence
from .compare import Panel, heatmap_grid
from .heatmap import alignment_heatmap, attention_heatmap
from .probability import token_probability_figure
from .steps import step_figure
from .style import COLOR_SCALE, display_token, search_label
from .training import read_history, training_curve

__all__ = [
    "COLOR_SCALE",
    "Panel",
    "alignment_heatmap",
    "attention_heatmap",
    "beam_tree_figure",
    "display_token",
    "divergence_figure",
    "first_divergence",
    "heatmap_grid",
    "read_history",
    "search_label",
    "step_figure",
    "token_probability_figure",
    "training_curve",
]
