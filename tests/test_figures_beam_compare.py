"""Beam tree, divergence and side-by-side heatmap figures, from hand-made and real results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnviz.figures.beam import (
    STATUS_STYLE,
    beam_tree_figure,
    collapse_pruned,
    divergence_figure,
    first_divergence,
    hypothesis_path,
    tree_layout,
)
from attnviz.figures.captions import ALIGN_HEATMAP, token_legend
from attnviz.figures.compare import GRID_WIDTH_PX, Panel, heatmap_grid
from attnviz.figures.style import display_token
from attnviz.translator import BeamNode, load

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def node(node_id: int, step: int, parent: int, piece: str, cumulative: float, status: str):
    return BeamNode(node_id, step, parent, piece, cumulative, cumulative, status)


# start -> a (kept), b (kept), c (pruned); a -> x (finished), y (pruned); b -> x (stopped)
TREE = [
    node(0, 0, -1, "▁a", -0.1, "kept"),
    node(1, 0, -1, "▁b", -0.5, "kept"),
    node(2, 0, -1, "<c>", -3.0, "pruned"),
    node(3, 1, 1, "x", -0.7, "stopped"),
    node(4, 1, 0, "x", -0.2, "finished"),
    node(5, 1, 0, "y", -2.0, "pruned"),
]


@pytest.fixture(scope="module")
def translation():
    return load(PRETRAINED / "reversal-multihead").translate("a b c d e", beam_size=4, n_best=4)


def test_first_divergence():
    assert first_divergence(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert first_divergence(["a", "b"], ["a", "b", "c"]) == 2
    assert first_divergence(["a", "b"], ["a", "b"]) is None
    assert first_divergence([], ["a"]) == 0


def test_hypothesis_path_follows_parents_and_pieces():
    assert hypothesis_path(TREE, ["▁a", "x"]) == [0, 4]
    assert hypothesis_path(TREE, ["▁b", "x"]) == [1, 3]
    assert hypothesis_path(TREE, ["▁b", "y"]) == [1]  # b was never followed by y


def test_every_real_hypothesis_ends_on_a_finished_node(translation):
    for hypothesis in translation.hypotheses:
        path = hypothesis_path(translation.beam_tree, hypothesis.pieces)
        assert len(path) == len(hypothesis.pieces)
        assert translation.beam_tree[path[-1]].status == "finished"
        assert translation.beam_tree[path[-1]].cumulative_logprob == pytest.approx(
            hypothesis.logprob, abs=1e-4
        )


def test_tree_layout_stacks_children_under_their_parents_best_first():
    position = tree_layout(TREE)
    assert position[-1] == (0.0, 0.0)
    assert [position[i][0] for i in range(6)] == [1, 1, 1, 2, 2, 2]
    # step 1: a above b above c; step 2: a's children (x best, then y) above b's child
    assert position[0][1] < position[1][1] < position[2][1]
    assert position[4][1] < position[5][1] < position[3][1]
    assert sum(position[i][1] for i in (0, 1, 2)) == 0  # centred


def test_beam_tree_figure_has_one_marker_per_node_by_status(translation):
    nodes = translation.beam_tree
    path = hypothesis_path(nodes, translation.hypotheses[1].pieces)
    figure = beam_tree_figure(nodes, "tree <i>", path)
    statuses = {t.legendgroup: t for t in figure.data if t.legendgroup}
    drawn = collapse_pruned(nodes)
    assert sum(len(t.x) for t in statuses.values()) == len(drawn)
    assert sum(d.count for d in drawn) == len(nodes)  # collapsed markers count their nodes
    for status, trace in statuses.items():
        label, color, symbol = STATUS_STYLE[status]
        assert (trace.name, trace.marker.color, trace.marker.symbol) == (label, color, symbol)
        assert len(trace.x) == sum(n.status == status for n in drawn)
    assert {"kept", "pruned", "finished"} <= set(statuses)
    (highlight,) = [t for t in figure.data if t.name == "the picked hypothesis"]
    assert len(highlight.x) == len(path) + 1 and highlight.x[0] == 0  # from the start
    # The path's labels are drawn above its line, on a ground of their own, not under it.
    labels = [a.text for a in figure.layout.annotations]
    assert labels == [f"<b>{display_token(nodes[i].piece)}</b>" for i in path]
    assert all(a.bgcolor and a.font.size >= 12 for a in figure.layout.annotations)
    on_path = set(path)
    for trace in statuses.values():
        for text, hover in zip(trace.text, trace.hovertext, strict=True):
            assert text or any(f"“{display_token(nodes[i].piece)}”" in hover for i in on_path)
    assert figure.layout.title.text == "tree &lt;i&gt;"


def test_beam_tree_hover_and_labels_are_literal():
    figure = beam_tree_figure(TREE, "t")
    pruned = next(t for t in figure.data if t.legendgroup == "pruned")
    assert "&lt;c&gt;" in pruned.text
    hover = pruned.hovertext[0]
    assert "“&lt;c&gt;” at step 1, pruned" in hover and "cumulative log-prob -3.000" in hover
    edges = figure.data[0]
    assert edges.mode == "lines" and len(edges.x) == 3 * len(TREE)


def test_a_bigger_beam_makes_a_taller_tree():
    wide = [node(i, 0, -1, str(i), -i, "kept") for i in range(30)]
    assert beam_tree_figure(wide, "w").layout.height > beam_tree_figure(TREE, "t").layout.height


def test_pruned_children_of_one_parent_collapse_into_one_marker():
    pruned = [node(10 + i, 1, 0, f"p{i}", -5.0 - i, "pruned") for i in range(7)]
    drawn = collapse_pruned(TREE + pruned)
    (group,) = [d for d in drawn if d.count > 1]
    assert (group.parent, group.label, group.count) == (0, "8 pruned", 8)  # y and the 7
    assert group.cumulative_logprob == -2.0  # the best of them, for ordering
    assert all(f"“p{i}”" in group.hover for i in range(7)) and "“y”" in group.hover
    assert [d.id for d in drawn if d.parent == 1] == [3]  # a lone pruned child stays itself
    assert [d for d in drawn if d.id == 2][0].label == "&lt;c&gt;"


def test_beam_ten_fits_a_screen_in_height():
    big = load(PRETRAINED / "reversal-multihead").translate(
        "a b c d e f g h", beam_size=10, n_best=10
    )
    figure = beam_tree_figure(big.beam_tree, "ten")
    assert len(big.beam_tree) > 150
    assert figure.layout.height <= 900


def test_grid_panels_share_one_fixed_colour_scale():
    panels = [
        Panel("<one>", ["a", "b"], ["x"], np.array([[0.2, 0.8]]), first_step=3),
        Panel("two", ["a", "b", "c"], ["y", "z"], np.array([[1.0, 0, 0], [0, 0.5, 0.5]])),
    ]
    figure = heatmap_grid(panels, "both")
    assert [t.coloraxis for t in figure.data] == ["coloraxis", "coloraxis"]
    assert (figure.layout.coloraxis.cmin, figure.layout.coloraxis.cmax) == (0.0, 1.0)
    assert [a.text for a in figure.layout.annotations] == ["&lt;one&gt;", "two"]
    assert figure.data[0].text[0][1] == "“x” ← “b”: 0.80 (step 3)"
    assert list(figure.layout.xaxis2.ticktext) == ["a", "b", "c"]
    assert list(figure.layout.yaxis2.ticktext) == ["y", "z"]


def word_panel(name: str, n_src: int, n_tgt: int, seed: int) -> Panel:
    weights = np.random.default_rng(seed).dirichlet(np.ones(n_src), size=n_tgt)
    return Panel(
        name, [f"mot{j}" for j in range(n_src)], [f"word{i}" for i in range(n_tgt)], weights
    )


def test_a_grid_of_five_13_word_heatmaps_fits_the_narrowest_page_with_equal_cells():
    panels = [word_panel(f"model {k}", 14, 12 + k % 3, k) for k in range(5)]
    figure = heatmap_grid(panels, "five models")
    assert figure.layout.width <= GRID_WIDTH_PX
    assert figure.layout.height <= 720  # one screen of a 1280x720 projector
    assert [t.coloraxis for t in figure.data] == ["coloraxis"] * 5
    assert (figure.layout.coloraxis.cmin, figure.layout.coloraxis.cmax) == (0.0, 1.0)
    assert [a.text for a in figure.layout.annotations] == [p.title for p in panels]
    axes = [figure.layout[f"xaxis{'' if k == 0 else k + 1}"] for k in range(5)]
    widths = {round(a.domain[1] - a.domain[0], 6) for a in axes}
    assert len(widths) == 1  # every panel's cells are as wide as every other's
    assert {tuple(a.range) for a in axes} == {(-0.5, 13.5)}
    y_axes = [figure.layout[f"yaxis{'' if k == 0 else k + 1}"] for k in range(5)]
    rows = {round(a.domain[1], 3) for a in y_axes}
    assert len(rows) == 3  # three columns would not fit: two, two and one
    # The same source for all: its labels above the top row only.
    assert [a.showticklabels is not False for a in axes] == [True, True, False, False, False]
    assert list(axes[0].ticktext) == list(panels[0].source_tokens)
    np.testing.assert_array_equal(figure.data[3].z, panels[3].attention)


def test_a_grid_of_short_sentences_keeps_three_columns_and_labels_each_other_source():
    panels = [word_panel(f"model {k}", 5, 5, k) for k in range(4)]
    panels[3].source_tokens = ["other", "words", "in", "this", "one"]
    figure = heatmap_grid(panels, "short")
    assert figure.layout.width <= GRID_WIDTH_PX
    y_axes = [figure.layout[f"yaxis{'' if k == 0 else k + 1}"] for k in range(4)]
    assert len({round(a.domain[1], 3) for a in y_axes}) == 2  # three, then one
    assert all(figure.layout[f"xaxis{k}"].showticklabels is not False for k in (2, 3, 4))


def test_a_grid_keeps_a_readable_cell_and_grows_wider_rather_than_squash():
    panels = [word_panel(f"model {k}", 60, 5, k) for k in range(3)]
    figure = heatmap_grid(panels, "long")
    assert figure.layout.width > GRID_WIDTH_PX


def test_captions_explain_special_tokens_only_where_they_appear():
    assert token_legend(["a", "b"]) is None
    legend = token_legend(["▁le", "chat", "</s>"])
    assert "</s>" in legend and "▁" in legend
    assert "▁" not in token_legend(["cat", "</s>"])
    assert "Red squares" in ALIGN_HEATMAP


def test_divergence_figure_starts_where_the_hypotheses_part(translation):
    first, second = translation.hypotheses[0], translation.hypotheses[1]
    start = first_divergence(first.pieces, second.pieces)
    figure = divergence_figure(translation.source_pieces, first, second, start, "d")
    for trace, hypothesis in zip(figure.data, (first, second), strict=True):
        np.testing.assert_array_equal(trace.z, hypothesis.attention[start:])
        assert trace.text[0][0].endswith(f"(step {start + 1})")
    assert figure.layout.annotations[1].text == f"rank 1: steps {start + 1} to {len(second.pieces)}"
    # One above the other: the second hypothesis is under the first, never right of it.
    assert figure.layout.yaxis2.domain[1] < figure.layout.yaxis.domain[0]
    assert figure.layout.xaxis2.domain == figure.layout.xaxis.domain
