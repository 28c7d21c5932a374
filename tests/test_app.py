"""The app under Streamlit's AppTest, on the reversal checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import add_model, figure_specs, run_app, url_value
from streamlit.testing.v1 import AppTest


@pytest.fixture
def models(reversal_checkpoint, app_models) -> Path:
    add_model(app_models, "reversal-additive", reversal_checkpoint)
    return app_models


def heatmap_spec(app: AppTest) -> dict:
    (spec,) = figure_specs(app)
    return spec


def test_align_view_translates_and_draws_the_heatmap(models):
    app = run_app(text="a b c d")
    assert not app.exception
    assert [t.value for t in app.text][0] == "d c b a"
    spec = heatmap_spec(app)
    assert spec["data"][0]["type"] == "heatmap"
    assert spec["layout"]["xaxis"]["ticktext"] == ["a", "b", "c", "d", "&lt;/s&gt;"]
    assert url_value(app, "text") == "a b c d"


def test_url_reproduces_the_view(models):
    app = run_app(text="x y z", beam="3", unit="pieces", links="0")
    assert app.slider(key="beam").value == 3
    assert app.radio(key="unit").value == "pieces"
    spec = heatmap_spec(app)
    assert spec["layout"]["xaxis"]["ticktext"] == ["▁x", "▁y", "▁z", "&lt;/s&gt;"]
    assert len(spec["data"]) == 1  # no hard-alignment overlay


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_gives_a_message_not_a_crash(models, text):
    app = run_app(text=text)
    assert not app.exception
    assert "empty" in app.warning[0].value


def test_html_in_the_input_is_shown_literally(models):
    app = run_app(text="<img src=x onerror=alert(1)> a")
    assert not app.exception
    spec = heatmap_spec(app)
    labels = spec["layout"]["xaxis"]["ticktext"]
    assert "&lt;img" in labels[0] and all("<" not in label for label in labels)


def test_very_long_text_is_truncated_with_a_warning(models):
    pasted = ("abc de fgh " * 500)[:5000]
    app = run_app(text=pasted)
    assert not app.exception
    assert app.text_area(key="text").value == pasted
    assert any("longer than this model reads" in w.value for w in app.warning)


def test_no_checkpoint_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_MODELS", str(tmp_path))
    app = run_app()
    assert not app.exception
    assert "No checkpoint found" in app.info[0].value


def test_picking_an_example_fills_the_text_box(models):
    app = run_app()
    app.selectbox(key="example").select("Where do you live?").run()
    assert app.text_area(key="text").value == "Where do you live?"
    assert url_value(app, "text") == "Where do you live?"


def test_hard_alignment_overlay_marks_the_mirrored_words(models):
    spec = heatmap_spec(run_app(text="a b c d", unit="words", links="1"))
    overlay = spec["data"][1]
    assert list(zip(overlay["x"], overlay["y"], strict=True)) == [(3, 0), (2, 1), (1, 2), (0, 3)]


def test_changing_only_the_display_does_not_decode_again(models, monkeypatch):
    from attnviz.translator import Translator

    app = run_app(text="a b c")
    calls = []
    original = Translator.translate
    monkeypatch.setattr(
        Translator, "translate", lambda self, *a, **k: calls.append(a) or original(self, *a, **k)
    )
    app.radio(key="unit").set_value("pieces").run()
    app.toggle(key="links").set_value(False).run()
    assert not app.exception and calls == []
    app.slider(key="beam").set_value(2).run()
    assert len(calls) == 1


def test_messages_show_outside_text_literally():
    from attnviz.ui.messages import markdown_literal

    assert markdown_literal("*a* [l](x) <b>é") == r"\*a\* \[l\]\(x\) \<b\>é"
