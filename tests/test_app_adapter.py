"""Every view of the app under AppTest with a model opened through an adapter (``attnviz app
--model module:factory``): the PyTorch tutorial's model, and the same model behind an adapter
with only the required members (the features that need more say so, never a traceback)."""

from __future__ import annotations

import numpy as np
import pytest
from adapted_models import REQUIRED_ONLY, TUTORIAL, tutorial
from app_helpers import figure_specs, figure_titled, plotly_array, run_app
from streamlit.testing.v1 import AppTest

from attnviz.adapter import adapted_translator
from attnviz.ui.models import ADAPTED_MODEL_ENV

SOURCE = "je suis froid ."


@pytest.fixture
def adapted(app_models, monkeypatch):
    """The app started with --model adapted_models:tutorial and no checkpoint folders."""
    monkeypatch.setenv(ADAPTED_MODEL_ENV, TUTORIAL)
    return adapted_translator(tutorial(), TUTORIAL)


def page_text(app: AppTest, kind: str = "text") -> str:
    return " ".join(e.value for e in getattr(app, kind)).replace("\\", "")


def test_the_picker_offers_the_adapted_model_and_align_draws_its_attention(adapted):
    app = run_app(text=SOURCE)
    assert not app.exception
    assert app.selectbox(key="model").options == [TUTORIAL]
    assert app.selectbox(key="model").value == TUTORIAL
    assert app.text[0].value == "i am cold ."
    expected = adapted.translate(SOURCE, beam_size=5)
    (spec,) = figure_specs(app)
    assert spec["layout"]["xaxis"]["ticktext"] == ["je", "suis", "froid", ".", "&lt;/s&gt;"]
    np.testing.assert_allclose(plotly_array(spec["data"][0]["z"]), expected.attention, atol=1e-6)
    assert SOURCE in app.selectbox(key="example").options  # the adapter's own examples


def test_step_through_draws_each_step_and_its_saliency(adapted):
    expected = adapted.translate(SOURCE, beam_size=1)
    app = run_app(view="step", text=SOURCE, beam="1", step="3", explain="1", saliency="1")
    assert not app.exception
    spec = figure_titled(app, "step 3 of")
    assert len(spec["frames"]) == len(expected.steps) == 5
    np.testing.assert_allclose(
        plotly_array(spec["data"][0]["z"])[0], expected.steps[2].attention, atol=1e-6
    )
    assert "Explain this step" in page_text(app, "info")  # said, not computed
    assert "adapter" in page_text(app, "info")
    saliency = figure_titled(app, "Attention and saliency of “cold”")
    assert saliency["data"]


def test_beam_search_lists_the_n_best_and_draws_the_tree(adapted):
    expected = adapted.translate("il est content .", beam_size=3, n_best=3)
    app = run_app(view="beam", text="il est content .", beam="3")
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["text"]) == [h.text for h in expected.hypotheses]
    np.testing.assert_allclose(table["log-prob"], [h.logprob for h in expected.hypotheses])
    tree = figure_titled(app, "Beam tree")
    kept = [t for t in tree["data"] if t.get("legendgroup") == "kept"]
    assert len(kept[0]["x"]) == sum(n.status == "kept" for n in expected.beam_tree)


def test_what_if_scores_an_edited_target_and_continues_it(adapted):
    score = adapted.score(SOURCE, "i am tired .")
    app = run_app(view="whatif", text=SOURCE, target="i am tired .")
    assert not app.exception
    spec = figure_titled(app, "Probability of each target piece")
    np.testing.assert_allclose(
        plotly_array(spec["data"][0]["y"]), np.exp(score.token_logprobs), rtol=1e-5
    )
    app.selectbox(key="edit").select(1)
    app.text_input(key="replacement").input("he").run()
    assert not app.exception
    assert any(t.value.startswith("he ") for t in app.text), [t.value for t in app.text]


def test_checkpoint_view_runs_a_file_and_says_there_is_no_folder(adapted):
    app = run_app(view="checkpoint", beam="1")
    assert not app.exception
    app.file_uploader(key="run_sentences").upload(
        "s.txt", b"je suis content .\n\nnous sommes fatigues .\n", "text/plain"
    )
    app = app.run()
    assert not app.exception and not app.error
    (rows,) = [d.value for d in app.dataframe if d.key == "corpus_table"]
    assert list(rows["translation"]) == ["i am happy .", "we are tired ."]
    assert "no training curve" in page_text(app, "info")


def test_an_adapter_with_only_the_required_members_says_what_it_cannot_show(
    app_models, monkeypatch
):
    monkeypatch.setenv(ADAPTED_MODEL_ENV, REQUIRED_ONLY)
    app = run_app(view="step", text=SOURCE, beam="1", explain="1", saliency="1")
    assert not app.exception and not app.error
    info = page_text(app, "info")
    assert "imposes_attention" in info and "embed_source" in info
    titles = " ".join(a["text"] for a in figure_specs(app)[0]["layout"]["annotations"])
    assert "Context vector: not reported by this model" in titles


def test_a_factory_that_fails_is_reported_in_the_page(app_models, monkeypatch):
    monkeypatch.setenv(ADAPTED_MODEL_ENV, "adapted_models:nothing")
    app = run_app()
    assert not app.exception
    assert "no callable 'nothing'" in page_text(app, "error")


def test_a_link_cannot_name_code_to_import(adapted, monkeypatch):
    imported = []

    def load_factory(spec: str):
        imported.append(spec)
        return adapted

    monkeypatch.setattr("attnviz.ui.models.load_factory", load_factory)
    app = run_app(model="os:getcwd")
    assert not app.exception
    assert app.selectbox(key="model").value == TUTORIAL and imported == [TUTORIAL]
