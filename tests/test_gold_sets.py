"""The gold alignment sets are read with English first and scored with every method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import attnviz
from attnviz.align import DIRECTIONAL_METHODS, METHODS
from attnviz.align.statistical import model_priors
from attnviz.gold_sets import (
    GOLD_SETS,
    gold_alignment_metrics,
    load_gold,
    reference_aligner_metrics,
)


def test_gold_sets_read_english_first(shared_data):
    pairs, links, dropped = load_gold(shared_data / "gold", GOLD_SETS["fr"])
    assert len(pairs) == len(links) == 37 and dropped == 0
    assert all(
        s < len(e.split()) and t < len(f.split())
        for (e, f), g in zip(pairs, links, strict=True)
        for s, t in g.possible
    )
    pairs, links, dropped = load_gold(shared_data / "gold", GOLD_SETS["de"])
    assert len(pairs) == 100
    assert dropped == 1  # the data README: one link points past its sentence's end
    assert sum(len(g.sure) for g in links) > 1000


def test_every_method_is_scored(shared_data, reversal_translator):
    metrics = gold_alignment_metrics(reversal_translator, shared_data / "gold", "fr")
    assert set(metrics["methods"]) == set(DIRECTIONAL_METHODS)
    for scores in metrics["methods"].values():
        assert 0.0 <= scores["aer"] <= 1.0 and scores["sure"] > 0


def test_a_reverse_model_adds_the_symmetric_methods(shared_data, reversal_translator):
    metrics = gold_alignment_metrics(
        reversal_translator, shared_data / "gold", "fr", reverse=reversal_translator
    )
    assert tuple(metrics["methods"]) == METHODS
    assert metrics["reverse_model"] == reversal_translator.name
    scores = metrics["methods"]
    # grow-diag starts from the intersection and only adds links
    assert 0 < scores["intersect"]["predicted"] <= scores["grow-diag"]["predicted"]


def test_adapted_copies_are_scored_beside_the_models(shared_data, reversal_translator):
    """With adapt_epochs every method is scored again with copies trained on the gold pairs;
    the models themselves, and so the first scores, are untouched."""
    gold = shared_data / "gold"
    plain = gold_alignment_metrics(reversal_translator, gold, "fr", reverse=reversal_translator)
    metrics = gold_alignment_metrics(
        reversal_translator, gold, "fr", reverse=reversal_translator, adapt_epochs=1
    )
    assert metrics["methods"] == plain["methods"]
    adapted = metrics["adapted"]
    assert adapted["epochs"] == 1 and tuple(adapted["methods"]) == METHODS
    assert adapted["methods"] != metrics["methods"]
    assert "adapted_guided" not in metrics  # no aligner corpus given


def test_guided_copies_follow_the_aligner_run_with_the_training_text(
    shared_data, reversal_translator
):
    """Given the training pairs, the guided copies learn from eflomal's links of the gold
    pairs aligned together with them, and the card says so."""
    pytest.importorskip("eflomal", reason="needs the attnviz[align] extra")
    gold = shared_data / "gold"
    corpus = [("the house", "la maison"), ("a house", "une maison")] * 20
    metrics = gold_alignment_metrics(
        reversal_translator, gold, "fr", adapt_epochs=1, aligner_corpus=corpus
    )
    guided = metrics["adapted_guided"]
    assert "together with the model's training pairs" in guided["definition"]
    assert "(null links)" in guided["definition"]
    assert guided["methods"] != metrics["adapted"]["methods"]
    reference = metrics["reference_aligner_with_training_text"]
    assert "the links the adapted_guided copies were taught" in reference["definition"]
    assert reference["scores"]["sure"] == 338


PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


@pytest.mark.parametrize(
    "forward, reverse, language",
    [("en-fr-additive", "fr-en-additive", "fr"), ("en-de-additive", "de-en-additive", "de")],
)
def test_the_bundled_cards_alignment_figures_are_reproduced(
    shared_data, forward, reverse, language
):
    """The AER in each card (and so in the README) is what the code computes today."""
    card = json.loads((PRETRAINED / forward / "card.json").read_text(encoding="utf-8"))
    metrics = gold_alignment_metrics(
        attnviz.load(PRETRAINED / forward),
        shared_data / "gold",
        language,
        attnviz.load(PRETRAINED / reverse),
    )
    assert set(metrics["methods"]) == set(card["alignment"]["methods"]) == set(METHODS)
    for method, scores in metrics["methods"].items():
        shipped = card["alignment"]["methods"][method]
        for key in ("aer", "precision", "recall"):
            # a float rounding on another CPU may flip a tie: one link moves AER ~0.001
            assert scores[key] == pytest.approx(shipped[key], abs=0.005), (method, key)


def test_the_reference_aligner_is_scored_with_a_models_priors(shared_data):
    """eflomal with the flagship's priors aligns the 37 gold pairs far better than chance;
    the card keeps the median run and every run's AER."""
    pytest.importorskip("eflomal", reason="needs the attnviz[align] extra")
    priors = model_priors(PRETRAINED / "en-fr-additive")
    metrics = reference_aligner_metrics(priors, shared_data / "gold", "fr", runs=3)
    runs = metrics["aer_of_3_runs"]
    assert len(runs) == 3 and runs == sorted(runs)
    median = metrics["median_of_3_runs"]
    assert median["aer"] == runs[1] and median["sure"] == 338
    assert median["aer"] < 0.3  # attention alone: 0.53 (the card's `pieces`)
