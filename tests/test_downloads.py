"""The app draws figures in its ink without changing what the exports write."""

from __future__ import annotations

import plotly.graph_objects as go

from attnviz.figures.style import FONT_SIZE
from attnviz.ui.downloads import inked


def test_inked_colours_the_text_then_gives_the_figure_back_as_built():
    figure = go.Figure(go.Heatmap(z=[[0.1, 0.9]]))
    figure.update_layout(title="t")
    figure.update_xaxes(tickfont_size=30)
    built = figure.to_json()
    with inked(figure, "#123456"):
        assert figure.layout.font.color == "#123456"
        assert figure.layout.xaxis.tickfont.color == "#123456"
        assert figure.layout.xaxis.tickfont.size == 30  # a size the figure chose stays
        assert figure.layout.yaxis.tickfont.size == FONT_SIZE  # an unset one gets ours
    assert figure.to_json() == built
