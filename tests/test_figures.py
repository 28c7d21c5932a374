"""Figures are built from plain arrays and show tokens literally."""

from __future__ import annotations

import numpy as np

from attnviz.figures import attention_heatmap


def test_heatmap_keeps_repeated_tokens_apart_and_fixes_the_scale():
    attention = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])
    figure = attention_heatmap(["the", "the", "</s>"], ["le", "</s>"], attention, "t")
    heatmap = figure.data[0]
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)
    assert list(figure.layout.xaxis.ticktext) == ["the", "the", "&lt;/s&gt;"]
    assert figure.layout.yaxis.autorange == "reversed"
    assert heatmap.text[0][1] == "“le” ← “the”: 0.10 (step 1)"


def test_heatmap_grows_with_the_sentence_and_draws_links_on_top():
    small = attention_heatmap(["a"] * 3, ["b"] * 3, np.eye(3), "s")
    large = attention_heatmap(["a"] * 30, ["b"] * 30, np.eye(30), "l", links=[(0, 0), (1, 1)])
    assert large.layout.width > small.layout.width and large.layout.height > small.layout.height
    assert len(large.data) == 2 and list(large.data[1].x) == [0, 1]
    np.testing.assert_array_equal(large.data[0].z, np.eye(30))  # links never change colours


def test_markup_in_tokens_and_titles_is_escaped():
    figure = attention_heatmap(["<b>x</b>"], ["<script>"], np.ones((1, 1)), "<i>title</i>")
    assert figure.layout.xaxis.ticktext[0] == "&lt;b&gt;x&lt;/b&gt;"
    assert figure.layout.title.text == "&lt;i&gt;title&lt;/i&gt;"
    assert "<script>" not in figure.data[0].text[0][0]
