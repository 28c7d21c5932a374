"""The figures that explain a step, built from hand-made explanations with known numbers."""

from __future__ import annotations

import numpy as np

from attnviz.explain import StepExplanation, softmax, weighted_sum
from attnviz.figures.explain import context_rows, saliency_figure, step_explanation_figure

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
