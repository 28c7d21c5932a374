"""The figures that explain a step, built from hand-made explanations with known numbers."""

from __future__ import annotations

import numpy as np

from attnviz.explain import StepExplanation, softmax, weighted_sum
from attnviz.figures.explain import context_rows, saliency_figure, step_explanation_figure
from attnviz.figures.style import FIT_PX

PIECES = ["▁le", "▁<b>chat</b>", "</s>"]


def explanation(heads: int = 1) -> StepExplanation:
    energies = np.array([[2.0, 0.5, -1.0], [-1.0, 0.0, 3.0]])[:heads]
    weights = softmax(energies)
    values = np.arange(12, dtype=float).reshape(3, 4) - 5  # (src_len, dim)
    mixed = weighted_sum(weights, values)
    context = mixed if heads == 1 else mixed[::-1] * 2  # stands in for W_o · mixed
    return StepExplanation(
        scorer="additive" if heads == 1 else "multihead",
        index=1,
        piece="▁cat",
        source_pieces=PIECES,
        energies=energies,
        weights=weights,
        values=values,
        weighted_sum=mixed,
        context=context,
    )


def test_the_figure_shows_scores_then_weights_then_the_context_as_a_sum():
    e = explanation()
    figure = step_explanation_figure(e, "model, step 2")
    scores, weights, heatmap = figure.data
    np.testing.assert_array_equal(scores.y, e.energies[0])
    np.testing.assert_array_equal(weights.y, e.weights[0])
    assert (scores.xaxis, weights.xaxis, heatmap.xaxis) == ("x", "x2", "x3")
    rows = np.asarray(heatmap.z)
    np.testing.assert_allclose(rows[:3], e.weights[0][:, None] * e.values)
    np.testing.assert_allclose(rows[-1], rows[:3].sum(axis=0))
    np.testing.assert_allclose(rows[-1], e.context)
    assert heatmap.zmin == -heatmap.zmax == -np.abs(rows).max()  # 0 in the middle of the scale
    assert heatmap.showscale is not False and heatmap.colorbar.title.text == "value"
    titles = [a.text for a in figure.layout.annotations]
    assert "before the softmax" in titles[0] and "α_j" in titles[1]
    assert f"norm {np.linalg.norm(e.context):.2f}" in titles[2]


def test_multi_head_gets_bars_per_head_and_the_output_projection_row():
    e = explanation(heads=2)
    figure = step_explanation_figure(e, "m")
    bars = [t for t in figure.data if t.type == "bar"]
    assert [b.name for b in bars] == ["head 1", "head 2", "head 1", "head 2"]
    np.testing.assert_array_equal(bars[1].y, e.energies[1])
    np.testing.assert_array_equal(bars[3].y, e.weights[1])
    rows, names = context_rows(e)
    assert names[-2:] == ["Σ α·m (heads)", "c_t = W_o · Σ"]
    np.testing.assert_allclose(rows[-2], e.weighted_sum)
    np.testing.assert_allclose(rows[-1], e.context)
    # head 1 weighs columns 0-1, head 2 columns 2-3
    np.testing.assert_allclose(rows[0, :2], e.weights[0, 0] * e.values[0, :2])
    np.testing.assert_allclose(rows[0, 2:], e.weights[1, 0] * e.values[0, 2:])


def test_source_pieces_are_shown_literally():
    figure = step_explanation_figure(explanation(), "<i>model</i>")
    assert figure.layout.xaxis.ticktext[1] == "▁&lt;b&gt;chat&lt;/b&gt;"
    assert "&lt;i&gt;model" in figure.layout.title.text
    assert all("<b>" not in text for text in figure.data[0].customdata)


def test_saliency_figure_puts_attention_and_saliency_side_by_side():
    attention, saliency = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    figure = saliency_figure(PIECES, attention, saliency, -0.5, "step 2")
    first, second = figure.data
    np.testing.assert_array_equal(first.y, attention)
    np.testing.assert_array_equal(second.y, saliency)
    assert first.name == "attention" and second.name.startswith("saliency")
    assert "Spearman ρ = -0.50" in figure.layout.title.text
    constant = saliency_figure(PIECES, attention, np.full(3, 1 / 3), float("nan"), "s")
    assert "undefined" in constant.layout.title.text


def long_explanation(src_len: int) -> StepExplanation:
    rng = np.random.default_rng(0)
    energies = rng.normal(size=(1, src_len))
    weights = softmax(energies)
    values = rng.normal(size=(src_len, 8))
    mixed = weighted_sum(weights, values)
    return StepExplanation(
        scorer="additive",
        index=0,
        piece="▁la",
        source_pieces=[f"▁word{j}" for j in range(src_len)],
        energies=energies,
        weights=weights,
        values=values,
        weighted_sum=mixed,
        context=mixed,
    )


def test_an_ordinary_sentence_fits_the_narrowest_screen_with_every_label():
    e = long_explanation(12)
    figure = step_explanation_figure(e, "model, step 1")
    assert figure.layout.width <= FIT_PX
    assert [t.type for t in figure.data] == ["bar", "bar", "heatmap"]  # one line
    assert list(figure.layout.xaxis.ticktext) == [f"▁word{j}" for j in range(12)]
    saliency = saliency_figure(e.source_pieces, e.weights[0], e.weights[0], 1.0, "s")
    assert saliency.layout.width <= FIT_PX
    shown = [
        t
        for axis in ("xaxis", "xaxis2")
        if axis in saliency.layout
        for t in saliency.layout[axis].ticktext
    ]
    assert shown == [f"▁word{j}" for j in range(12)]


def test_a_long_source_wraps_its_bars_into_lines_keeping_every_value():
    e = long_explanation(40)
    figure = step_explanation_figure(e, "model, step 1")
    assert figure.layout.width <= FIT_PX
    bars = [t for t in figure.data if t.type == "bar"]
    assert len(bars) > 2  # scores and weights, each in several lines
    scores = [b for b in bars if b.customdata[0].split("= ")[0].endswith("e ")]
    np.testing.assert_allclose(np.concatenate([b.y for b in scores]), e.energies[0])
    assert [x for b in scores for x in b.x] == list(range(40))
    axes = [figure.layout[b.xaxis.replace("x", "xaxis")] for b in bars]
    assert len({a.range[1] - a.range[0] for a in axes}) == 1  # equal cells in every line
    assert len({tuple(a.domain) for a in axes}) == 1
    saliency = saliency_figure(e.source_pieces, e.weights[0], e.weights[0], 1.0, "s")
    assert saliency.layout.width <= FIT_PX
    attention = [t for t in saliency.data if t.name == "attention"]
    assert len(attention) > 1
    np.testing.assert_allclose(np.concatenate([t.y for t in attention]), e.weights[0])
