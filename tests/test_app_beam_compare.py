"""The Beam search and Compare scorers views under AppTest, on copies of the bundled reversal
and dates models; and the logic behind the comparison (attnviz.scorer_lab)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from app_helpers import (
    PRETRAINED,
    add_model,
    figure_specs,
    figure_titled,
    plotly_array,
    record_downloads,
    run_app,
    url_value,
)
from streamlit.testing.v1 import AppTest

from attnviz import scorer_lab
from attnviz.analysis import attention_entropy
from attnviz.attention import SCORERS
from attnviz.figures.beam import first_divergence
from attnviz.figures.style import display_token
from attnviz.scorer_lab import (
    card_aer,
    card_bleu,
    default_family,
    divergence_matrix,
    families,
    mean_to_others,
    synthetic_task,
)
from attnviz.synthetic import gold_pair
from attnviz.translator import load
from attnviz.ui.beam_view import divergence_sentence

REVERSAL = [f"reversal-{scorer}" for scorer in SCORERS]


@pytest.fixture
def models(app_models) -> Path:
    return app_models


def figures(app: AppTest) -> dict[str, dict]:
    """Plotly figure specs on the page, by title."""
    return {spec["layout"]["title"]["text"]: spec for spec in figure_specs(app)}


# -- Beam search ----------------------------------------------------------------------------


def test_beam_table_lists_the_n_best_with_their_log_probs(models):
    add_model(models, "reversal-additive")
    app = run_app(view="beam", model="reversal-additive", text="a b c d", beam="3")
    assert not app.exception
    table = app.dataframe[0].value
    expected = load(models / "reversal-additive").translate("a b c d", beam_size=3, n_best=3)
    assert len(table) == 3 == len(expected.hypotheses)
    np.testing.assert_allclose(table["log-prob"], [h.logprob for h in expected.hypotheses])
    assert list(table["text"]) == [h.text for h in expected.hypotheses]
    assert list(table["length (pieces)"]) == [len(h.pieces) for h in expected.hypotheses]
    assert list(table["rank"]) == [0, 1, 2]


@pytest.mark.parametrize(("hyp", "shown"), [("2", 2), ("9", 2), ("x", 0)])
def test_the_hypothesis_comes_from_the_url_clamped(models, hyp, shown):
    add_model(models, "reversal-additive")
    app = run_app(view="beam", model="reversal-additive", text="a b c d", beam="3", hyp=hyp)
    assert not app.exception
    assert app.selectbox(key="hyp").value == shown
    expected = load(models / "reversal-additive").translate("a b c d", beam_size=3, n_best=3)
    spec = figure_titled(app, f"hypothesis rank {shown} of 3")
    labels = [
        label.replace("&lt;", "<").replace("&gt;", ">")
        for label in spec["layout"]["yaxis"]["ticktext"]
    ]
    assert labels == expected.hypotheses[shown].pieces


def test_beam_tree_has_a_marker_per_node_and_per_parent_s_pruned(models):
    add_model(models, "reversal-additive")
    app = run_app(view="beam", model="reversal-additive", text="a b c d e", beam="4")
    expected = load(models / "reversal-additive").translate("a b c d e", beam_size=4, n_best=4)
    spec = figure_titled(app, "Beam tree")
    by_status = {t["legendgroup"]: len(t["x"]) for t in spec["data"] if "legendgroup" in t}
    tree = expected.beam_tree
    assert by_status["kept"] == sum(n.status == "kept" for n in tree)
    # Pruned nodes collapse into one marker per parent.
    assert by_status["pruned"] == len({n.parent for n in tree if n.status == "pruned"}) > 0
    assert by_status["finished"] > 0


def test_greedy_search_says_there_is_no_tree(models):
    add_model(models, "reversal-additive")
    app = run_app(view="beam", model="reversal-additive", text="a b c", beam="1")
    assert not app.exception
    assert any("greedy" in info.value and "no beam tree" in info.value for info in app.info)
    assert len(app.dataframe[0].value) == 1
    assert not [title for title in figures(app) if "Beam tree" in title]


def test_divergence_of_two_picked_hypotheses(models):
    add_model(models, "reversal-additive")
    app = run_app(
        view="beam", model="reversal-additive", text="a b c d", beam="3", diva="0", divb="2"
    )
    expected = load(models / "reversal-additive").translate("a b c d", beam_size=3, n_best=3)
    first, second = expected.hypotheses[0], expected.hypotheses[2]
    start = first_divergence(first.pieces, second.pieces)
    said = f"at step {start + 1} rank 0 writes “{first.pieces[start]}” and rank 2 writes"
    assert any(said in t.value for t in app.text)
    spec = figure_titled(app, "after the divergence")
    heatmaps = [t for t in spec["data"] if t["type"] == "heatmap"]
    np.testing.assert_allclose(plotly_array(heatmaps[1]["z"]), second.attention[start:], atol=1e-6)


def test_beam_view_html_in_the_input_is_literal(models):
    add_model(models, "reversal-additive")
    app = run_app(view="beam", model="reversal-additive", text="<b>a</b> b", beam="2")
    assert not app.exception
    spec = figure_titled(app, "Beam tree")
    labels = [label for t in spec["data"] for label in t.get("text") or []]
    assert all("<b>" not in label for label in labels)


def test_divergence_in_words():
    hypotheses = load(PRETRAINED / "reversal-dot").translate("a b", beam_size=2, n_best=2)
    first, second = hypotheses.hypotheses
    second = dataclasses.replace(second, pieces=["▁b", "<i>", "</s>"])
    first = dataclasses.replace(first, pieces=["▁b", "▁a", "</s>"])
    assert divergence_sentence(first, second, 1) == (
        "Ranks 0 and 1 share their first piece; at step 2 rank 0 writes “▁a” and rank 1 "
        "writes “<i>”."
    )
    assert divergence_sentence(first, second, 0).startswith("Ranks 0 and 1 differ from the start")
    assert "their first 3 pieces" in divergence_sentence(first, second, 3)
    assert "rank 0 writes nothing more" in divergence_sentence(first, second, 3)


# -- Compare scorers ------------------------------------------------------------------------


def test_compare_finds_the_reversal_family_and_tabulates_it(models):
    for name in REVERSAL:
        add_model(models, name)
    app = run_app(view="compare", model="reversal-dot", text="a b c d")
    assert not app.exception
    assert app.selectbox(key="family").value == "reversal"
    table = app.table[0].value
    assert list(table["model"]) == REVERSAL
    assert list(table["scorer"]) == list(SCORERS)
    for name, entropy, text in zip(
        table["model"], table["mean entropy (nats)"], table["translation"], strict=True
    ):
        translation = load(models / name).translate("a b c d", beam_size=5)
        assert text == translation.text
        assert entropy == pytest.approx(attention_entropy(translation.attention).mean())
    assert (table["AER (this sentence)"] < 0.2).all()  # the gold alignment is the mirror
    cards = [json.loads((models / name / "card.json").read_text()) for name in REVERSAL]
    bleu = [card["metrics"]["reversal"]["greedy"]["bleu"] for card in cards]
    assert list(table["test BLEU reversal (greedy)"]) == bleu
    assert table["mean JSD to the others (bits)"].between(0, 1).all()


def test_compare_computes_the_agreement_of_each_pair_once_per_rerun(models, monkeypatch):
    for name in REVERSAL:
        add_model(models, name)
    pairs = []
    original = scorer_lab.agreement
    monkeypatch.setattr(scorer_lab, "agreement", lambda a, b: pairs.append(1) or original(a, b))
    app = run_app(view="compare", model="reversal-dot", text="a b c d")
    assert not app.exception
    assert len(pairs) == len(REVERSAL) * (len(REVERSAL) - 1) // 2


def panel_titles(spec: dict) -> list[str]:
    """The titles under the panels of a grid figure, in panel order."""
    return [a["text"] for a in spec["layout"]["annotations"]]


def test_compare_draws_every_model_in_one_grid_with_one_colour_bar(models):
    for name in REVERSAL:
        add_model(models, name)
    app = run_app(view="compare", model="reversal-dot", text="a b c", unit="pieces")
    assert not app.exception
    grid = figure_titled(app, "Attention of the reversal models, by piece")
    assert panel_titles(grid) == [m.removeprefix("reversal-") for m in REVERSAL]
    assert [t["coloraxis"] for t in grid["data"]] == ["coloraxis"] * len(REVERSAL)
    assert grid["layout"]["coloraxis"]["cmin"] == 0 and grid["layout"]["coloraxis"]["cmax"] == 1
    expected = load(models / "reversal-general").translate("a b c", beam_size=5)
    general = grid["data"][REVERSAL.index("reversal-general")]
    np.testing.assert_allclose(plotly_array(general["z"]), expected.attention, atol=1e-6)
    # The numbers come first: the table is on the page before the grid.
    kinds = [type(e).__name__ for e in app.main if type(e).__name__ in {"Table", "PlotlyChart"}]
    assert kinds[0] == "Table"


def test_compare_shows_every_head_of_the_multihead_model(models):
    for name in REVERSAL:
        add_model(models, name)
    app = run_app(view="compare", model="reversal-dot", text="a b c", unit="pieces")
    heads = figure_titled(app, "heads of reversal-multihead")
    assert panel_titles(heads) == [f"head {h} of 4" for h in range(1, 5)]
    expected = load(models / "reversal-multihead").translate("a b c", beam_size=5)
    np.testing.assert_allclose(
        plotly_array(heads["data"][2]["z"]), expected.head_attention[2], atol=1e-6
    )


def test_compare_draws_words_by_default_and_keeps_the_unit_in_the_url(models):
    for name in REVERSAL[:2]:
        add_model(models, name)
    app = run_app(view="compare", model="reversal-dot", text="ab cd")
    assert not app.exception
    grid = figure_titled(app, "by word")
    expected = load(models / REVERSAL[0]).translate("ab cd", beam_size=5)
    assert grid["layout"]["xaxis"]["ticktext"] == [display_token(w) for w in expected.source_words]
    assert url_value(app, "unit") == "words"


def test_compare_exports_its_grid_as_html_and_what_it_draws_as_json(models, monkeypatch):
    for name in REVERSAL[:3]:
        add_model(models, name)
    downloads = record_downloads(monkeypatch)
    app = run_app(view="compare", model="reversal-dot", text="a b c")
    assert not app.exception
    name, html = downloads["HTML"]
    assert name == "compare-reversal-words.html"
    page = html()
    assert "Attention of the reversal models" in page and "<html>" in page
    name, data = downloads["JSON"]
    assert name == "compare-reversal-words.json"
    drawn = json.loads(data())["drawn"]
    assert drawn["unit"] == "words"
    assert [p["title"] for p in drawn["panels"]] == [
        m.removeprefix("reversal-") for m in REVERSAL[:3]
    ]
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert "one colour bar" in captions


def test_compare_without_a_family_says_so(models):
    add_model(models, "reversal-additive")
    add_model(models, "dates-dot")
    app = run_app(view="compare", model="reversal-additive")
    assert not app.exception
    assert "No family" in app.info[0].value


def test_a_model_named_like_a_member_but_configured_otherwise_is_left_out(models):
    for name in REVERSAL[1:]:
        add_model(models, name)
    add_model(models, "reversal-dot", source="dates-dot")
    app = run_app(view="compare", model="reversal-general", text="a b c")
    assert not app.exception
    assert list(app.table[0].value["model"]) == REVERSAL[1:]
    assert any(
        "reversal-dot is not compared" in t.value and "vocab_size" in t.value for t in app.text
    )


def test_compare_warns_when_the_sentence_was_cut(models):
    add_model(models, "reversal-dot")
    add_model(models, "reversal-general")
    app = run_app(view="compare", model="reversal-dot", text=" ".join("abcdefghij" * 4))
    assert not app.exception
    assert any("longer than these models read" in w.value for w in app.warning)
    assert len(app.table[0].value) == 2


def test_family_from_the_url_and_the_dates_gold_alignment(models):
    for name in ("dates-dot", "dates-general", "reversal-dot", "reversal-general"):
        add_model(models, name)
    text = "Tuesday, 3 March 2009"
    app = run_app(view="compare", model="reversal-dot", family="dates", text=text)
    assert not app.exception
    assert app.selectbox(key="family").value == "dates"
    table = app.table[0].value
    assert list(table["model"]) == ["dates-dot", "dates-general"]
    assert table["AER (this sentence)"].between(0, 1).all()
    assert any(t.value == "2009-03-03" for t in app.text)  # the gold translation


# -- scorer_lab -----------------------------------------------------------------------------


def write_config(folder: Path, name: str, source: str, **changes) -> None:
    """A folder holding only config.json: pretrained/<source>'s, with ``changes`` to the
    model settings."""
    raw = json.loads((PRETRAINED / source / "config.json").read_text())
    raw["model"].update(changes)
    (folder / name).mkdir()
    (folder / name / "config.json").write_text(json.dumps(raw))


def test_families_compare_configs_not_only_names(tmp_path):
    write_config(tmp_path, "lab-dot", "reversal-dot")
    write_config(tmp_path, "lab-additive", "reversal-additive", attn_dim=64)  # its own setting
    write_config(tmp_path, "lab-multihead", "reversal-multihead")  # heads=4
    write_config(tmp_path, "lab-general", "reversal-general", dec_hidden=32)
    write_config(tmp_path, "lab-scaled_dot", "reversal-dot")  # says dot inside
    write_config(tmp_path, "solo-dot", "reversal-dot")
    write_config(tmp_path, "other", "reversal-dot")
    names = [p.name for p in tmp_path.iterdir()]
    lab, solo = families(tmp_path, names)
    assert (lab.name, lab.members) == ("lab", ["lab-dot", "lab-additive", "lab-multihead"])
    assert lab.scorers == ["dot", "additive", "multihead"]
    assert "dec_hidden" in lab.left_out["lab-general"]
    assert "'dot'" in lab.left_out["lab-scaled_dot"]
    assert (solo.name, solo.members) == ("solo", ["solo-dot"])


def test_default_family():
    from attnviz.scorer_lab import Family

    reversal = Family("reversal", ["reversal-dot", "reversal-general"])
    lab = Family("en-fr-lab", ["en-fr-lab-dot", "en-fr-lab-additive"])
    dates = Family("dates", ["dates-dot", "dates-general"])
    assert default_family([dates, reversal], "reversal-general") == "reversal"
    assert default_family([dates, lab, reversal], "en-fr-additive") == "en-fr-lab"
    assert default_family([reversal, dates], "en-fr-additive") == "reversal"


def test_gold_pairs_of_the_synthetic_tasks():
    pair = gold_pair("reversal", "a  b c")
    assert (pair.source, pair.target, pair.alignment) == (
        "a b c",
        "c b a",
        [(2, 0), (1, 1), (0, 2)],
    )
    pair = gold_pair("dates", "Tuesday, 3 March 2009")
    assert (pair.target, pair.alignment) == ("2009-03-03", [(1, 0), (2, 0), (3, 0)])
    assert gold_pair("dates", "Monday, 3 March 2009") is None  # wrong weekday
    assert gold_pair("dates", "Tuesday, 31 February 2009") is None
    assert gold_pair("dates", "a b c") is None
    assert gold_pair(None, "a b c") is None


def test_synthetic_task_is_read_from_the_recipe():
    assert synthetic_task((PRETRAINED / "reversal-dot" / "recipe.toml").read_text()) == "reversal"
    assert synthetic_task((PRETRAINED / "dates-dot" / "recipe.toml").read_text()) == "dates"
    assert synthetic_task('[data]\ntatoeba = "eng-fra"') is None
    assert synthetic_task("not = [toml") is None
    assert synthetic_task(None) is None


def test_divergence_matrix_and_means_skip_what_cannot_be_compared():
    translator = load(PRETRAINED / "reversal-dot")
    score = translator.score("a b c", "c b a")
    matrix = divergence_matrix([score, score, None])
    assert matrix[0, 1] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(matrix[0, 2]) and np.isnan(matrix[2, 1])
    np.testing.assert_allclose(mean_to_others(matrix)[:2], 0.0, atol=1e-9)
    assert np.isnan(mean_to_others(matrix)[2])


def test_card_scores():
    card = json.loads((PRETRAINED / "en-fr-additive" / "card.json").read_text())
    bleu = card_bleu(card)
    assert bleu["test BLEU multi30k (greedy)"] == card["metrics"]["multi30k"]["greedy"]["bleu"]
    assert card_aer(card) == card["alignment"]["methods"]["pieces"]["aer"]
    assert np.isnan(card_bleu({"metrics": {"x": "nonsense"}})["test BLEU x (greedy)"])
    assert np.isnan(card_aer({"alignment": []}))
