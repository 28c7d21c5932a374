"""Figures are built from plain arrays and show tokens literally."""

from __future__ import annotations

import numpy as np

from attnviz.figures import attention_heatmap
from attnviz.figures.style import FIT_PX


def test_heatmap_keeps_repeated_tokens_apart_and_fixes_the_scale():
    attention = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    figure = attention_heatmap(["the", "the", "</s>"], ["le", "</s>"], attention, "t")
    heatmap = figure.data[0]
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)
    assert list(figure.layout.xaxis.ticktext) == ["the", "the", "&lt;/s&gt;"]
    assert list(figure.layout.yaxis.range) == [1.5, -0.5]  # first output step on top
    assert heatmap.text[0][1] == "“le” ← “the”: 0.10 (step 1)"


def test_heatmap_grows_with_the_sentence_and_draws_links_on_top():
    small = attention_heatmap(["a"] * 3, ["b"] * 3, np.eye(3), "s")
    large = attention_heatmap(["a"] * 12, ["b"] * 12, np.eye(12), "l", links=[(0, 0), (1, 1)])
    assert large.layout.width > small.layout.width and large.layout.height > small.layout.height
    assert len(large.data) == 2 and list(large.data[1].x) == [0, 1]
    np.testing.assert_array_equal(large.data[0].z, np.eye(12))  # links never change colours


def test_a_long_source_wraps_into_lines_that_fit_the_screen():
    source = [f"word{i}" for i in range(40)]
    attention = np.random.default_rng(0).dirichlet(np.ones(40), size=6)
    links = [(39, 5), (0, 0)]
    figure = attention_heatmap(source, list("abcdef"), attention, "long", links=links)
    assert figure.layout.width <= FIT_PX
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    assert len(heatmaps) > 1  # wrapped
    columns = [x for t in heatmaps for x in t.x]
    assert columns == list(range(40))  # every source column once, in order
    np.testing.assert_array_equal(np.hstack([t.z for t in heatmaps]), attention)
    ticks = [t for i in range(1, len(heatmaps) + 1) for t in figure.layout[_x(i)].ticktext]
    assert ticks == source
    axes = [figure.layout[_x(i)] for i in range(1, len(heatmaps) + 1)]
    cells = {round(np.diff(a.domain)[0] / np.diff(a.range)[0], 6) for a in axes}
    assert len(cells) == 1  # a short last line keeps the others' cell width
    marked = [
        (x, y) for t in figure.data if t.type == "scatter" for x, y in zip(t.x, t.y, strict=True)
    ]
    assert sorted(marked) == sorted(links)  # each link drawn once, in its own line
    assert [t.showscale for t in heatmaps].count(True) == 1  # one colour bar


def _x(axis: int) -> str:
    return "xaxis" if axis == 1 else f"xaxis{axis}"


def test_markup_in_tokens_and_titles_is_escaped():
    figure = attention_heatmap(["<b>x</b>"], ["<script>"], np.ones((1, 1)), "<i>title</i>")
    assert figure.layout.xaxis.ticktext[0] == "&lt;b&gt;x&lt;/b&gt;"
    assert figure.layout.title.text == "&lt;i&gt;title&lt;/i&gt;"
    assert "<script>" not in figure.data[0].text[0][0]


def test_presentation_mode_magnifies_pixel_sizes_only():
    from attnviz.ui.downloads import magnified

    figure = attention_heatmap(["a", "b"], ["x"], np.array([[0.3, 0.7]]), "t", links=[(1, 0)])
    big = magnified(figure.to_dict(), 1.25)
    layout = big["layout"]
    assert layout["width"] == 1.25 * figure.layout.width
    assert layout["margin"]["l"] == 1.25 * figure.layout.margin.l
    assert layout["xaxis"]["tickfont"]["size"] == 1.25 * figure.layout.xaxis.tickfont.size
    assert layout["xaxis"]["domain"] == list(figure.layout.xaxis.domain)  # fractions stay
    assert big["data"][1]["marker"]["size"] == 1.25 * figure.data[1].marker.size
    assert big["data"][0]["colorbar"]["len"] == 1.25 * figure.data[0].colorbar.len  # pixels
    assert big["data"][0]["z"] == figure.to_dict()["data"][0]["z"]  # data is not a size


def test_word_aligner_links_are_dots_apart_from_the_attention_links_and_keep_the_colours():
    attention = np.array([[0.1, 0.9], [0.8, 0.2]])
    figure = attention_heatmap(
        ["a", "b"], ["x", "y"], attention, "t", links=[(1, 0)], reference_links=[(0, 0), (0, 1)]
    )
    np.testing.assert_array_equal(figure.data[0].z, attention)
    squares, dots = figure.data[1], figure.data[2]
    assert squares.marker.symbol == "square-open"
    assert (dots.name, dots.marker.symbol) == ("word aligner", "circle")
    assert list(zip(dots.x, dots.y, strict=True)) == [(0, 0), (0, 1)]
