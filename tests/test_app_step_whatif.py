"""The Step-through and What-if views under Streamlit's AppTest, on the reversal checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_helpers import add_model, figure_specs, figure_titled, plotly_array, run_app, url_value

import attnviz
from attnviz.figures.style import CHOSEN_COLOR, display_token


@pytest.fixture
def models(reversal_checkpoint, app_models) -> Path:
    add_model(app_models, "reversal-additive", reversal_checkpoint)
    add_model(app_models, "reversal-multihead")
    return app_models


# -- Step through ------------------------------------------------------------------------------


def test_step_view_shows_the_attention_row_of_the_chosen_step(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=3)
    app = run_app(view="step", text="a b c d", beam="3", step="2")
    assert not app.exception
    slider = app.slider(key="step")
    assert (slider.min, slider.max, slider.value) == (1, len(translation.steps), 2)
    (spec,) = figure_specs(app)
    assert len(spec["frames"]) == len(translation.steps)
    np.testing.assert_array_equal(
        plotly_array(spec["data"][0]["z"])[0], translation.steps[1].attention
    )
    assert "step 2 of" in spec["layout"]["title"]["text"]


def test_moving_the_slider_redraws_the_step_and_updates_the_url(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=5)
    app = run_app(view="step", text="a b c d")
    app.slider(key="step").set_value(4).run()
    (spec,) = figure_specs(app)
    np.testing.assert_array_equal(
        plotly_array(spec["data"][0]["z"])[0], translation.steps[3].attention
    )
    assert url_value(app, "step") == "4"


@pytest.mark.parametrize(("raw", "expected"), [("99", "last"), ("-3", 1), ("abc", 1), ("2.5", 1)])
def test_a_bad_step_in_the_url_is_clamped(models, raw, expected):
    app = run_app(view="step", text="a b c", step=raw)
    assert not app.exception
    slider = app.slider(key="step")
    assert slider.value == (slider.max if expected == "last" else expected)
    assert url_value(app, "step") == str(slider.value)


def test_the_highlighted_top_k_bar_is_the_chosen_token(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=5)
    (spec,) = figure_specs(run_app(view="step", text="a b c d", step="3"))
    bars = spec["data"][1]
    highlighted = [i for i, c in enumerate(bars["marker"]["color"]) if c == CHOSEN_COLOR]
    assert len(highlighted) == 1
    labels = spec["layout"]["yaxis2"]["ticktext"]
    assert labels[highlighted[0]] == display_token(translation.steps[2].piece)
    assert bars["x"][highlighted[0]] == pytest.approx(translation.steps[2].prob)


def test_multihead_model_shows_each_head(models):
    translation = attnviz.load(models / "reversal-multihead").translate("a b c", beam_size=5)
    app = run_app(view="step", model="reversal-multihead", text="a b c", step="1")
    assert not app.exception
    (spec,) = figure_specs(app)
    rows = plotly_array(spec["data"][0]["z"])
    assert spec["layout"]["yaxis"]["ticktext"] == [
        "mean of heads",
        "head 1",
        "head 2",
        "head 3",
        "head 4",
    ]
    np.testing.assert_array_equal(rows[1:], translation.steps[0].head_attention)


def test_step_view_empty_text_and_markup(models):
    app = run_app(view="step", text="  ")
    assert not app.exception and "empty" in app.warning[0].value
    app = run_app(view="step", text="<script>alert(1)</script> a")
    assert not app.exception
    (spec,) = figure_specs(app)
    labels = spec["layout"]["xaxis"]["ticktext"]
    assert "&lt;" in "".join(labels) and all("<" not in label for label in labels)


# -- What-if -----------------------------------------------------------------------------------


def test_target_defaults_to_the_model_translation_and_follows_the_sentence(models):
    app = run_app(view="whatif", text="a b c")
    assert not app.exception
    assert app.text_area(key="target").value == "c b a"
    app.text_input(key="text").input("x y").run()
    assert app.text_area(key="target").value == "y x"
    app.text_area(key="target").input("y z").run()
    app.slider(key="beam").set_value(2).run()
    assert app.text_area(key="target").value == "y z"  # typed by the person: kept


def test_a_new_sentence_drops_the_target_edit_and_replacement_of_the_old_one(models):
    translator = attnviz.load(models / "reversal-additive")
    app = run_app(view="whatif", text="x y")
    app.text_area(key="target").input("q r s t u v").run()
    app.selectbox(key="edit").select(3)
    app.text_input(key="replacement").input("m").run()
    assert url_value(app, "replacement") == "m"
    app.text_input(key="text").input("a b c d").run()
    assert not app.exception
    own = translator.translate("a b c d", beam_size=5).text
    assert app.text_area(key="target").value == own
    assert app.text_input(key="replacement").value == ""
    assert app.selectbox(key="edit").value == 1
    assert url_value(app, "target") == own and url_value(app, "replacement") in (None, "")
    # The numbers shown are those of the new sentence's target, not of the old one.
    logprob = translator.score("a b c d", own).logprob
    assert any(t.value.startswith(f"log-probability {logprob:.2f};") for t in app.text)


def test_a_target_typed_in_what_if_does_not_follow_the_link_into_another_view(models):
    app = run_app(view="whatif", text="x y")
    app.text_area(key="target").input("q r s").run()
    assert url_value(app, "target") == "q r s"
    app.radio(key="view").set_value("align").run()
    assert not app.exception
    assert url_value(app, "target") is None and url_value(app, "text") == "x y"
    app.text_input(key="text").input("a b c").run()
    app.radio(key="view").set_value("whatif").run()
    assert app.text_area(key="target").value == "c b a"


def test_whatif_shows_the_forced_probabilities_and_marks_surprising_tokens(models):
    score = attnviz.load(models / "reversal-additive").score("a b c d", "d c x a")
    app = run_app(view="whatif", text="a b c d", target="d c x a")
    assert not app.exception
    spec = figure_titled(app, "Probability of each target piece")
    probs = np.exp(score.token_logprobs)
    np.testing.assert_allclose(plotly_array(spec["data"][0]["y"]), probs, rtol=1e-6)
    marked = plotly_array(spec["data"][1]["x"]).tolist()
    assert marked == [i for i, p in enumerate(probs) if p < 0.1]
    assert score.target_pieces.index("▁x") in marked
    table = app.dataframe[0].value
    np.testing.assert_allclose(table["probability"], probs, rtol=1e-6)
    np.testing.assert_allclose(table["log-prob"], score.token_logprobs, rtol=1e-6)
    heatmap = figure_titled(app, "while forced to write the target")
    np.testing.assert_allclose(plotly_array(heatmap["data"][0]["z"]), score.attention, rtol=1e-6)


def test_editing_a_token_lets_the_model_continue_from_the_forced_prefix(models):
    app = run_app(view="whatif", text="a b c d e")
    assert not app.exception and app.text_area(key="target").value == "e d c b a"
    app.selectbox(key="edit").select(2)
    app.text_input(key="replacement").input("q").run()
    assert not app.exception
    continued = [t.value for t in app.text if t.value.startswith("e q")]
    assert continued, [t.value for t in app.text]
    spec = figure_titled(app, "continuing after 2 forced pieces")
    assert spec["layout"]["yaxis"]["ticktext"][:2] == ["▁e", "▁q"]
    assert (url_value(app, "edit"), url_value(app, "replacement")) == ("2", "q")


def test_url_reproduces_the_edit(models):
    app = run_app(view="whatif", text="a b c", target="c b a", edit="1", replacement="▁z ▁y")
    assert app.selectbox(key="edit").value == 1
    spec = figure_titled(app, "continuing after 2 forced pieces")
    assert spec["layout"]["yaxis"]["ticktext"][:2] == ["▁z", "▁y"]


def test_an_unknown_exact_piece_gives_a_message(models):
    app = run_app(view="whatif", text="a b c", edit="1", replacement="▁notapiece")
    assert not app.exception
    assert any("not a piece of this model" in w.value for w in app.warning)


@pytest.mark.parametrize("edit", ["0", "99", "x"])
def test_a_bad_edit_position_is_clamped(models, edit):
    app = run_app(view="whatif", text="a b c", target="c b a", edit=edit)
    assert not app.exception
    assert app.selectbox(key="edit").value in (1, 4)  # first piece, or the last ("</s>")


def test_empty_target_gives_a_message_not_a_crash(models):
    app = run_app(view="whatif", text="a b c", target="   ")
    assert not app.exception
    assert "target text is empty" in app.warning[0].value
    assert not app.get("plotly_chart")


def test_html_target_is_shown_literally(models):
    target = "<img src=x onerror=alert(1)>"
    app = run_app(view="whatif", text="a b c", target=target)
    assert not app.exception
    labels = figure_titled(app, "Probability of each target piece")["layout"]["xaxis"]["ticktext"]
    # This tiny vocabulary spells "<" as the byte piece "<0x3C>": escaped, never markup.
    assert "&lt;0x3C&gt;" in labels and all("<" not in label for label in labels)
    assert app.text_area(key="target").value == target
    assert any("<" in piece for piece in app.dataframe[0].value["piece"])  # a table: literal
