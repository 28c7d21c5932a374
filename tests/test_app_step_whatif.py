"""The Step-through and What-if views under Streamlit's AppTest, on the reversal checkpoint."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app import run_app

import attnviz
from attnviz.figures.style import CHOSEN_COLOR, display_token

ROOT = Path(__file__).resolve().parents[1]
MULTIHEAD = ROOT / "pretrained" / "reversal-multihead"


@pytest.fixture
def models(reversal_checkpoint, app_models) -> Path:
    shutil.copytree(reversal_checkpoint, app_models / "reversal-additive")
    shutil.copytree(MULTIHEAD, app_models / "reversal-multihead")
    return app_models


def url(app: AppTest, key: str) -> str:
    value = app.query_params[key]
    return value[0] if isinstance(value, list) else value


def specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def chart(app: AppTest, title_part: str) -> dict:
    """The one figure whose title contains ``title_part``."""
    found = [s for s in specs(app) if title_part in s["layout"]["title"]["text"]]
    assert len(found) == 1, [s["layout"]["title"]["text"] for s in specs(app)]
    return found[0]


def array(value) -> np.ndarray:
    """A figure value as numpy; Plotly writes numeric arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in shape.split(",")]) if shape else flat
    return np.asarray(value)


# -- Step through ------------------------------------------------------------------------------


def test_step_view_shows_the_attention_row_of_the_chosen_step(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=3)
    app = run_app(view="step", text="a b c d", beam="3", step="2")
    assert not app.exception
    slider = app.slider(key="step")
    assert (slider.min, slider.max, slider.value) == (1, len(translation.steps), 2)
    (spec,) = specs(app)
    assert len(spec["frames"]) == len(translation.steps)
    np.testing.assert_array_equal(array(spec["data"][0]["z"])[0], translation.steps[1].attention)
    assert "step 2 of" in spec["layout"]["title"]["text"]


def test_moving_the_slider_redraws_the_step_and_updates_the_url(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=5)
    app = run_app(view="step", text="a b c d")
    app.slider(key="step").set_value(4).run()
    (spec,) = specs(app)
    np.testing.assert_array_equal(array(spec["data"][0]["z"])[0], translation.steps[3].attention)
    assert url(app, "step") == "4"


@pytest.mark.parametrize(("raw", "expected"), [("99", "last"), ("-3", 1), ("abc", 1), ("2.5", 1)])
def test_a_bad_step_in_the_url_is_clamped(models, raw, expected):
    app = run_app(view="step", text="a b c", step=raw)
    assert not app.exception
    slider = app.slider(key="step")
    assert slider.value == (slider.max if expected == "last" else expected)
    assert url(app, "step") == str(slider.value)


def test_the_highlighted_top_k_bar_is_the_chosen_token(models):
    translation = attnviz.load(models / "reversal-additive").translate("a b c d", beam_size=5)
    (spec,) = specs(run_app(view="step", text="a b c d", step="3"))
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
    (spec,) = specs(app)
    rows = array(spec["data"][0]["z"])
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
    (spec,) = specs(app)
    labels = spec["layout"]["xaxis"]["ticktext"]
    assert "&lt;" in "".join(labels) and all("<" not in label for label in labels)


# -- What-if -----------------------------------------------------------------------------------


def test_target_defaults_to_the_model_translation_and_follows_the_sentence(models):
    app = run_app(view="whatif", text="a b c")
    assert not app.exception
    assert app.text_area(key="target").value == "c b a"
    app.text_area(key="text").input("x y").run()
    assert app.text_area(key="target").value == "y x"
    app.text_area(key="target").input("y z").run()
    app.text_area(key="text").input("x y w").run()
    assert app.text_area(key="target").value == "y z"  # typed by the person: kept


def test_whatif_shows_the_forced_probabilities_and_marks_surprising_tokens(models):
    score = attnviz.load(models / "reversal-additive").score("a b c d", "d c x a")
    app = run_app(view="whatif", text="a b c d", target="d c x a")
    assert not app.exception
    spec = chart(app, "Probability of each target piece")
    probs = np.exp(score.token_logprobs)
    np.testing.assert_allclose(array(spec["data"][0]["y"]), probs, rtol=1e-6)
    marked = array(spec["data"][1]["x"]).tolist()
    assert marked == [i for i, p in enumerate(probs) if p < 0.1]
    assert score.target_pieces.index("▁x") in marked
    table = app.dataframe[0].value
    np.testing.assert_allclose(table["probability"], probs, rtol=1e-6)
    np.testing.assert_allclose(table["log-prob"], score.token_logprobs, rtol=1e-6)
    heatmap = chart(app, "while forced to write the target")
    np.testing.assert_allclose(array(heatmap["data"][0]["z"]), score.attention, rtol=1e-6)


def test_editing_a_token_lets_the_model_continue_from_the_forced_prefix(models):
    app = run_app(view="whatif", text="a b c d e")
    assert not app.exception and app.text_area(key="target").value == "e d c b a"
    app.selectbox(key="edit").select(2)
    app.text_input(key="replacement").input("q").run()
    assert not app.exception
    continued = [t.value for t in app.text if t.value.startswith("e q")]
    assert continued, [t.value for t in app.text]
    spec = chart(app, "continuing after 2 forced pieces")
    assert spec["layout"]["yaxis"]["ticktext"][:2] == ["▁e", "▁q"]
    assert (url(app, "edit"), url(app, "replacement")) == ("2", "q")


def test_url_reproduces_the_edit(models):
    app = run_app(view="whatif", text="a b c", target="c b a", edit="1", replacement="▁z ▁y")
    assert app.selectbox(key="edit").value == 1
    spec = chart(app, "continuing after 2 forced pieces")
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
    labels = chart(app, "Probability of each target piece")["layout"]["xaxis"]["ticktext"]
    # This tiny vocabulary spells "<" as the byte piece "<0x3C>": escaped, never markup.
    assert "&lt;0x3C&gt;" in labels and all("<" not in label for label in labels)
    assert app.text_area(key="target").value == target
    assert any("<" in piece for piece in app.dataframe[0].value["piece"])  # a table: literal
