"""The app under Streamlit's AppTest, on the reversal checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from app_helpers import PRETRAINED, add_model, figure_specs, record_downloads, run_app, url_value
from streamlit.testing.v1 import AppTest

import attnviz
from attnviz.align import format_pharaoh
from attnviz.alignment_matrix import alignment_matrix


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
    assert app.text_input(key="text").value == pasted
    assert any("longer than this model reads" in w.value for w in app.warning)


def test_no_checkpoint_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_MODELS", str(tmp_path))
    app = run_app()
    assert not app.exception
    assert "No checkpoint found" in app.info[0].value


def test_picking_an_example_fills_the_text_box(models):
    app = run_app()
    app.selectbox(key="example").select("Where do you live?").run()
    assert app.text_input(key="text").value == "Where do you live?"
    assert url_value(app, "text") == "Where do you live?"


def test_hard_alignment_overlay_marks_the_mirrored_words(models):
    spec = heatmap_spec(run_app(text="a b c d", unit="words", links="1"))
    overlay = spec["data"][1]
    assert list(zip(overlay["x"], overlay["y"], strict=True)) == [(3, 0), (2, 1), (1, 2), (0, 3)]


def test_align_exports_word_links_as_pharaoh_and_piece_links_in_their_own_file(models, monkeypatch):
    downloads = record_downloads(monkeypatch)
    app = run_app(text="ab cd e", unit="pieces")
    assert not app.exception
    translation = attnviz.load(models / "reversal-additive").translate("ab cd e", beam_size=5)
    words = alignment_matrix(translation, "words", links=True)
    pieces = alignment_matrix(translation, "pieces", links=True)
    assert len(translation.source_pieces) > len(translation.source_words)  # they differ here
    name, text = downloads["Pharaoh word links"]
    assert name == "align-reversal-additive-words.align"
    assert text() == format_pharaoh(words.links) + "\n"
    assert all(s < len(words.source) and t < len(words.target) for s, t in words.links)
    name, text = downloads["Piece links"]
    assert name == "align-reversal-additive-piece-links.txt"
    assert text() == format_pharaoh(pieces.links) + "\n"
    assert {downloads[f][0] for f in ("HTML", "JSON")} == {
        "align-reversal-additive-pieces.html",
        "align-reversal-additive-pieces.json",
    }
    downloads.clear()
    app.radio(key="unit").set_value("words").run()
    assert "Piece links" not in downloads and "Pharaoh word links" in downloads
    assert downloads["HTML"][0] == "align-reversal-additive-words.html"


def test_align_json_holds_the_drawn_matrix_and_its_links(models, monkeypatch):
    downloads = record_downloads(monkeypatch)
    app = run_app(text="ab cd e", unit="words", links="0")
    assert not app.exception
    translation = attnviz.load(models / "reversal-additive").translate("ab cd e", beam_size=5)
    words = alignment_matrix(translation, "words", links=True)
    exported = json.loads(downloads["JSON"][1]())
    drawn = exported["drawn"]
    assert drawn["unit"] == "words"
    assert drawn["source"] == words.source and drawn["target"] == words.target
    np.testing.assert_allclose(drawn["attention"], words.attention, atol=1e-6)
    assert [tuple(link) for link in drawn["links"]] == words.links  # even with the overlay off
    assert exported["translation"]["text"] == translation.text


def test_the_align_figure_says_what_it_shows_and_explains_its_special_tokens(models):
    app = run_app(text="a b c d", unit="pieces")
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert "Red squares: the hard alignment" in captions
    assert "end-of-sentence token" in captions  # </s> is drawn
    assert "starts a new word" in captions  # so is ▁


@pytest.mark.parametrize(
    "view, says",
    [
        ("step", "Bars: the model's most probable next tokens"),
        ("beam", "The red path is the picked hypothesis"),
        ("whatif", "One bar per target piece"),
    ],
)
def test_every_view_says_what_its_figures_show(models, view, says):
    app = run_app(view=view, text="a b c d")
    assert not app.exception
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert says in captions
    assert "end-of-sentence token" in captions


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


def test_characters_the_model_never_saw_get_a_warning(models):
    app = run_app(text="我喜欢猫")
    assert not app.exception
    (warning,) = [w.value.replace("\\", "") for w in app.warning]
    assert "never saw 我 喜 欢 猫 in training" in warning and "CJK" in warning
    assert heatmap_spec(app)  # still translated and drawn, with the warning above
    assert not run_app(text="a b c").warning


def test_each_model_offers_its_own_examples_in_its_source_language(app_models):
    for name in ("dates-additive", "fr-en-additive"):
        add_model(app_models, name)
    cards = {
        name: json.loads((PRETRAINED / name / "card.json").read_text(encoding="utf-8"))
        for name in ("dates-additive", "fr-en-additive")
    }
    app = run_app(model="dates-additive")
    dates = list(cards["dates-additive"]["examples"])
    assert app.selectbox(key="example").options == dates
    assert app.text_input(key="text").value == dates[0] and not app.warning
    app.selectbox(key="model").select("fr-en-additive").run()
    french = list(cards["fr-en-additive"]["examples"])
    assert app.selectbox(key="example").options == french
    assert app.text_input(key="text").value == french[0]  # the date was an example: replaced
    app.text_input(key="text").input("Il fait froid.").run()
    app.selectbox(key="model").select("dates-additive").run()
    assert app.text_input(key="text").value == "Il fait froid."  # typed: kept, and warned
    assert any("never saw" in w.value for w in app.warning)


def _reversal_priors(folder: Path) -> None:
    """Aligner priors from a small reversal corpus, saved in the model's folder."""
    from attnviz.align import PRIORS_FILE, statistical_align, write_priors
    from attnviz.synthetic import reversal_pairs

    corpus = [(p.source, p.target) for p in reversal_pairs(80, seed=5)]
    write_priors(folder / PRIORS_FILE, statistical_align(corpus).priors)


def test_word_aligner_overlay_dots_its_links_and_gives_their_agreement(models):
    pytest.importorskip("eflomal")
    _reversal_priors(models / "reversal-additive")
    app = run_app(text="a b c d", unit="words", links="0")
    (dots,) = [d for d in heatmap_spec(app)["data"] if d.get("name") == "word aligner"]
    assert sorted(zip(dots["x"], dots["y"], strict=True)) == [(0, 3), (1, 2), (2, 1), (3, 0)]
    (agreement,) = [c.value for c in app.caption if "word aligner" in c.value]
    assert "AER of 0.00" in agreement  # the reversal model's attention is the reversal


def test_without_priors_the_align_view_says_why_there_is_no_overlay(models):
    app = run_app(text="a b c d")
    assert not app.exception
    assert len(heatmap_spec(app)["data"]) == 2  # heatmap and attention links, no dots
    assert any("No word-aligner overlay" in c.value for c in app.caption)


def test_hard_links_agree_with_the_reverse_model_the_card_names_and_say_so(
    models, reversal_checkpoint
):
    add_model(models, "reversal-back", reversal_checkpoint)  # reversing is its own inverse
    card_path = models / "reversal-additive" / "card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "alignment": {"reverse_model": "reversal-back"}}))
    app = run_app(text="a b c d", unit="words", links="1")
    assert not app.exception
    overlay = heatmap_spec(app)["data"][1]
    assert list(zip(overlay["x"], overlay["y"], strict=True)) == [(3, 0), (2, 1), (1, 2), (0, 3)]
    assert any("agree, with the reverse model reversal-back" in c.value for c in app.caption)
