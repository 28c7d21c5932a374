"""Explain a step: the recorded energies softmax to the recorded attention, and the context is
the weighted sum of the values, for every scorer (each head of multi-head), on the shipped
reversal checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import attnviz
from attnviz.attention import SCORERS, build_scorer
from attnviz.explain import (
    SCORER_FORMULAS,
    context_latex,
    explain_step,
    softmax,
    softmax_latex,
    weighted_sum,
)

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


@pytest.fixture(scope="module", params=SCORERS)
def translator(request) -> attnviz.Translator:
    return attnviz.load(PRETRAINED / f"reversal-{request.param}")


def recorded_context(translator: attnviz.Translator, explanation) -> np.ndarray:
    """The context the weights and values make: Σ α_j m_j, through W_o for multi-head."""
    if translator.config.scorer != "multihead":
        return explanation.weighted_sum
    out_proj = translator.model.scorer.out_proj.weight.detach().double().numpy()
    return out_proj @ explanation.weighted_sum


@pytest.mark.parametrize("beam", [1, 4])
def test_recorded_energies_softmax_to_the_recorded_attention_and_make_the_context(translator, beam):
    translation = translator.translate("a b c d e f", beam_size=beam)
    heads = translator.config.heads_used
    for index, step in enumerate(translation.steps):
        assert step.energies.shape == step.head_attention.shape == (heads, 7)
        np.testing.assert_allclose(softmax(step.energies), step.head_attention, atol=1e-6)
        explanation = explain_step(translator, translation, index)
        np.testing.assert_array_equal(explanation.energies, step.energies)
        np.testing.assert_allclose(
            recorded_context(translator, explanation), step.context, rtol=1e-5, atol=1e-5
        )


def test_heads_have_their_own_energies_and_softmax():
    translator = attnviz.load(PRETRAINED / "reversal-multihead")
    step = translator.translate("a b c d", beam_size=1).steps[2]
    assert step.energies.shape[0] == 4
    for head in range(4):
        np.testing.assert_allclose(
            softmax(step.energies[head]), step.head_attention[head], atol=1e-6
        )
    assert not np.allclose(step.energies[0], step.energies[1])  # not one row copied


def test_a_forced_score_is_explained_like_a_translation(translator):
    score = translator.score("a b c", "c b a")
    explanation = explain_step(translator, score, 1)
    np.testing.assert_allclose(softmax(explanation.energies), explanation.weights, atol=1e-6)
    np.testing.assert_allclose(
        recorded_context(translator, explanation), score.steps[1].context, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("scorer", SCORERS)
def test_attend_keeps_the_energies_of_a_padded_batch(scorer):
    torch.manual_seed(0)
    module = build_scorer(scorer, 16, heads=4, attn_dim=8)
    memory = torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    keys = module.prepare(memory, mask)
    query = torch.randn(2, 16)
    with torch.no_grad():
        attended = module.attend(query, keys)
        context, weights = module(query, keys)
        raw = module.scores(query, keys)
    torch.testing.assert_close(attended.weights, weights)
    torch.testing.assert_close(attended.context, context)
    assert torch.isinf(attended.energies[1, :, 3:]).all()  # padding: -inf, weight exactly 0
    assert (attended.weights[1, :, 3:] == 0).all()
    torch.testing.assert_close(attended.energies[1, :, :3], raw[1, :, :3])
    torch.testing.assert_close(attended.energies.softmax(-1), attended.weights)


def test_weighted_sum_gives_each_head_its_own_columns():
    weights = np.array([[1.0, 0.0], [0.25, 0.75]])  # (heads=2, src_len=2)
    values = np.arange(8, dtype=float).reshape(2, 4)  # (src_len=2, dim=4)
    # head 1 takes columns 0-1 of position 1; head 2 mixes columns 2-3 of both positions
    expected = [0, 1, 0.25 * 2 + 0.75 * 6, 0.25 * 3 + 0.75 * 7]
    np.testing.assert_allclose(weighted_sum(weights, values), expected)


def test_padding_positions_are_left_out():
    translator = attnviz.load(PRETRAINED / "reversal-additive")
    translation = translator.translate("a b c", beam_size=1)
    step = translation.steps[0]
    energies = step.energies.copy()
    energies[:, 1] = -np.inf  # as the scorer marks a padded position
    weights = softmax(energies).astype(np.float32)
    padded = dataclasses.replace(step, energies=energies, head_attention=weights)
    result = dataclasses.replace(translation, steps=[padded, *translation.steps[1:]])
    explanation = explain_step(translator, result, 0)
    kept = [p for i, p in enumerate(translation.source_pieces) if i != 1]
    assert explanation.source_pieces == kept
    assert explanation.energies.shape == explanation.weights.shape == (1, len(kept))
    assert explanation.values.shape[0] == explanation.contributions.shape[0] == len(kept)
    assert np.isfinite(explanation.energies).all()


def test_contributions_sum_to_the_weighted_sum(translator):
    translation = translator.translate("b c d", beam_size=2)
    explanation = explain_step(translator, translation, 0)
    np.testing.assert_allclose(explanation.contributions.sum(axis=0), explanation.weighted_sum)


def test_a_result_of_another_model_or_step_is_refused():
    additive = attnviz.load(PRETRAINED / "reversal-additive")
    dates = attnviz.load(PRETRAINED / "dates-additive")
    translation = dates.translate("March 3, 1999", beam_size=1)
    with pytest.raises(attnviz.InputError, match="not made by this model"):
        explain_step(additive, translation, 0)
    with pytest.raises(attnviz.InputError, match="does not exist"):
        explain_step(dates, translation, len(translation.steps))


def test_the_formulas_carry_this_steps_numbers(translator):
    translation = translator.translate("a b c d", beam_size=1)
    explanation = explain_step(translator, translation, 1)
    assert explanation.formula is SCORER_FORMULAS[translator.config.scorer]
    for head in range(explanation.heads):
        j = int(explanation.weights[head].argmax())
        line = softmax_latex(explanation, head)
        assert f"e^{{{explanation.energies[head, j]:.2f}}}}}" in line  # the numerator
        assert line.endswith(f"= {explanation.weights[head, j]:.2f}")
    norm = np.linalg.norm(translation.steps[1].context)
    assert f"\\lVert c_t \\rVert = {norm:.2f}" in context_latex(explanation).replace("&", "")
