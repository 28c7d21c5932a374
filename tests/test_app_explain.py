"""Step through's two explanations under AppTest: how the chosen step was computed, and
whether attention explains it (saliency beside attention, knock-out)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from app_helpers import PRETRAINED, figure_titled, plotly_array, run_app, url_value

import attnviz
from attnviz.analysis import attribution, knock_out
from attnviz.explain import SCORER_FORMULAS, explain_step, softmax_latex


@pytest.fixture
def models(app_models) -> Path:
    for name in ("reversal-additive", "reversal-multihead"):
        shutil.copytree(PRETRAINED / name, app_models / name)
    return app_models


def latex(app) -> list[str]:
    """The formulas in the page, as the LaTeX handed to st.latex."""
    return [element.value.removeprefix("$$\n").removesuffix("\n$$") for element in app.latex]


def test_the_explanations_are_off_until_switched_on(models):
    app = run_app(view="step", model="reversal-additive", text="a b c d", beam="3", step="2")
    assert not app.exception
    assert not latex(app)
    assert len(app.get("plotly_chart")) == 1  # the step figure only: stepping stays fast
    assert app.toggle(key="explain").value is False


def test_explain_this_step_shows_the_formula_and_the_recorded_numbers(models):
    translator = attnviz.load(models / "reversal-additive")
    translation = translator.translate("a b c d", beam_size=3)
    step = translation.steps[1]
    app = run_app(view="step", model="reversal-additive", text="a b c d", beam="3", step="2")
    app.toggle(key="explain").set_value(True).run()
    assert not app.exception
    shown = latex(app)
    assert SCORER_FORMULAS["additive"].score_latex in shown
    j = int(step.attention.argmax())
    numbers = next(line for line in shown if line.startswith(r"\alpha_{"))
    assert f"e^{{{step.energies[0, j]:.2f}}}" in numbers and numbers.endswith(
        f"= {step.head_attention[0, j]:.2f}"
    )
    spec = figure_titled(app, "How reversal-additive computed step 2")
    scores, weights, context = spec["data"]
    np.testing.assert_allclose(plotly_array(scores["y"]), step.energies[0], rtol=1e-6)
    np.testing.assert_allclose(plotly_array(weights["y"]), step.head_attention[0], rtol=1e-6)
    np.testing.assert_allclose(plotly_array(context["z"])[-1], step.context, rtol=1e-5, atol=1e-6)
    table = app.dataframe[0].value
    assert list(table["piece"]) == translation.source_pieces
    assert url_value(app, "explain") == "1"


def test_moving_the_slider_explains_the_new_step(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=5)
    app = run_app(view="step", model="reversal-additive", text="a b c d", explain="1")
    app.slider(key="step").set_value(3).run()
    spec = figure_titled(app, "computed step 3")
    np.testing.assert_allclose(plotly_array(spec["data"][0]["y"]), translation.steps[2].energies[0])


def test_multi_head_is_explained_head_by_head(models):
    translator = attnviz.load(models / "reversal-multihead")
    translation = translator.translate("a b c", beam_size=5)
    app = run_app(view="step", model="reversal-multihead", text="a b c", step="1", explain="1")
    assert not app.exception
    shown = latex(app)
    assert SCORER_FORMULAS["multihead"].score_latex in shown
    assert sum(line.startswith(r"\alpha^{(") for line in shown) == 4  # one softmax per head
    assert softmax_latex(explain_step(translator, translation, 0), 3) in shown
    names = [trace["name"] for trace in figure_titled(app, "computed step 1")["data"][:4]]
    assert names == ["head 1", "head 2", "head 3", "head 4"]


def test_the_saliency_section_shows_attention_saliency_and_knock_out(models):
    translator = attnviz.load(models / "reversal-additive")
    translation = translator.translate("a b c d", beam_size=3)
    app = run_app(view="step", model="reversal-additive", text="a b c d", beam="3", step="2")
    app.toggle(key="saliency").set_value(True).run()
    assert not app.exception
    expected = attribution(translator, "a b c d", translation.target_pieces)
    knocked = knock_out(translator, "a b c d", translation.target_pieces)
    spec = figure_titled(app, "Attention and saliency of")
    attention, saliency = spec["data"]
    np.testing.assert_allclose(plotly_array(attention["y"]), expected.attention[1], rtol=1e-5)
    np.testing.assert_allclose(
        plotly_array(saliency["y"]), expected.saliency[1], rtol=1e-4, atol=1e-7
    )
    assert f"Spearman ρ = {expected.spearman[1]:+.2f}" in spec["layout"]["title"]["text"]
    word = knocked.source_words[int(knocked.word[1])]
    sentence = next(t.value for t in app.text if t.value.startswith("Knocking out"))
    assert f"“{word}”" in sentence
    assert f"{knocked.prob[1]:.3f} to {knocked.knocked_prob[1]:.3f}" in sentence
    assert url_value(app, "saliency") == "1"
