"""Attention statistics by hand, and attribution and knock-out on the reversal model (whose
attention is known to explain its output) and on untrained models of every scorer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from attnviz.analysis import (
    agreement,
    attention_entropy,
    attribution,
    coverage,
    js_divergence,
    knock_out,
    spearman,
)
from attnviz.attention import SCORERS
from attnviz.errors import InputError
from attnviz.model import AttentionRNN, ModelConfig
from attnviz.synthetic import reversal_pairs
from attnviz.tokenize import word_of_piece
from attnviz.translator import Score, Translator, load

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def hand_score(source_pieces: list[str], target_pieces: list[str], attention) -> Score:
    """A Score with the given pieces and attention (words are what the pieces spell)."""

    def words(pieces):
        grouped: dict[int, str] = {}
        for piece, w in zip(pieces, word_of_piece(pieces), strict=True):
            grouped[w] = grouped.get(w, "") + piece.lstrip("▁")
        return list(grouped.values())

    return Score(
        source="",
        source_pieces=source_pieces,
        target_pieces=target_pieces,
        source_words=words(source_pieces),
        target_words=words(target_pieces),
        source_word_of_piece=word_of_piece(source_pieces),
        target_word_of_piece=word_of_piece(target_pieces),
        attention=np.array(attention, dtype=np.float64),
        head_attention=None,
        steps=[],
        truncated=False,
        model="hand",
    )


# -- statistics by hand ---------------------------------------------------------------------


def test_entropy_of_sharp_uniform_and_split_steps():
    attention = np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]])
    np.testing.assert_allclose(attention_entropy(attention), [0.0, math.log(4), math.log(2)])


def test_coverage_finds_dropped_and_over_attended_words():
    score = hand_score(
        ["▁a", "▁b", "c", "▁d", "</s>"],
        ["▁x", "▁y", "▁z", "</s>"],
        [
            [0.1, 0.4, 0.4, 0.0, 0.1],
            [0.1, 0.3, 0.5, 0.0, 0.1],
            [0.6, 0.1, 0.1, 0.1, 0.1],
            [0.0, 0.0, 0.0, 1.0, 0.0],  # the "</s>" step is left out
        ],
    )
    result = coverage(score)
    assert result.words == ["a", "bc", "d"]
    np.testing.assert_allclose(result.received, [0.8, 1.8, 0.1])
    assert (result.dropped, result.over_attended) == ([2], [])
    assert coverage(score, low=0.9, high=1.5).dropped == [0, 2]
    assert coverage(score, low=0.9, high=1.5).over_attended == [1]


def test_js_divergence_by_hand():
    p = np.array([[1.0, 0.0], [0.3, 0.7], [1.0, 0.0]])
    q = np.array([[0.5, 0.5], [0.3, 0.7], [0.0, 1.0]])
    # row 0: M = (0.75, 0.25); KL(p|M) = log2(4/3), KL(q|M) = (log2(2/3) + log2(2)) / 2
    first = (math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2
    np.testing.assert_allclose(js_divergence(p, q), [first, 0.0, 1.0], atol=1e-12)
    assert first == pytest.approx(0.311278, abs=1e-6)


def test_agreement_compares_word_attention():
    pieces = (["▁a", "▁b", "</s>"], ["▁x", "</s>"])
    first = hand_score(*pieces, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    second = hand_score(*pieces, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(agreement(first, second), [0.311278, 0.0], atol=1e-6)
    np.testing.assert_allclose(agreement(first, first), [0.0, 0.0])
    # Different pieces, same words: compared word by word.
    split = hand_score(
        ["▁a", "▁", "b", "</s>"], ["▁x", "</s>"], [[0.5, 0.25, 0.25, 0.0]] + [[0] * 3 + [1]]
    )
    np.testing.assert_allclose(agreement(second, split), [0.0, 0.0], atol=1e-12)
    other = hand_score(["▁a", "</s>"], ["▁x", "</s>"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(InputError, match="same"):
        agreement(first, other)


def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (0, 1.5, 1.5, 3) and (0, 1, 2, 3): 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


# -- the decoder re-run ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=SCORERS)
def untrained(request, reversal_model) -> Translator:
    _, tokenizer = reversal_model
    torch.manual_seed(1)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        emb_dim=16,
        enc_hidden=16,
        dec_hidden=16,
        attn_dim=8,
        scorer=request.param,
        heads=4,
        dropout=0.0,
    )
    return Translator(AttentionRNN(config), tokenizer, f"untrained-{request.param}")


def test_re_run_decoder_matches_forced_decoding(untrained):
    score = untrained.score("a b c d", "d c b a")
    knocked = knock_out(untrained, "a b c d", "d c b a")
    np.testing.assert_allclose(knocked.prob, np.exp(score.token_logprobs), rtol=1e-5)
    assert np.all((knocked.knocked_prob > 0) & (knocked.knocked_prob < 1))
    explained = attribution(untrained, "a b c d", "d c b a")
    np.testing.assert_allclose(explained.attention, score.attention, atol=1e-6)


def chosen_logprobs(translator: Translator, source: str, target: str, piece: int, factor: float):
    """(tgt_len,) log-probabilities of the target tokens with source piece ``piece``'s
    embedding multiplied by ``factor``, through the model's own one-step API."""
    model = translator.model
    src_ids, _ = translator.source_ids(source)
    tgt_ids = translator.target_ids(target)
    with torch.no_grad():
        embedded = model.embed(torch.tensor([src_ids]))
        embedded[0, piece] *= factor
        encoded = model.encode_embedded(embedded, torch.tensor([len(src_ids)]))
        state, prev, out = encoded.state, torch.tensor([model.config.bos_id]), []
        for token in tgt_ids:
            step = model.decode_step(prev, state, encoded)
            out.append(float(step.logprobs[0, token]))
            state, prev = step.state, torch.tensor([token])
    return np.array(out)


def test_gradient_x_input_matches_finite_differences(untrained):
    source, target = "a b c d", "d c b a"
    explained = attribution(untrained, source, target)
    eps = 0.05
    for piece in range(len(explained.source_pieces)):
        up = chosen_logprobs(untrained, source, target, piece, 1 + eps)
        down = chosen_logprobs(untrained, source, target, piece, 1 - eps)
        # d log p / d s at s = 1 for e_j -> s e_j is exactly grad . e_j
        numeric = (up - down) / (2 * eps)
        np.testing.assert_allclose(
            explained.gradient_x_input[:, piece], numeric, rtol=0.02, atol=3e-5
        )
    assert np.abs(explained.gradient_x_input).max() > 1e-3
    np.testing.assert_allclose(explained.saliency.sum(axis=1), 1.0)


# -- does attention explain the reversal model's output? ------------------------------------


def test_saliency_agrees_with_attention_on_reversal():
    # The shipped model, not the session's freshly trained one: a model trained in the test
    # run differs between CPUs (kernels round differently), and this agreement with it.
    shipped = load(PRETRAINED / "reversal-additive")
    correlations, agree = [], []
    for pair in reversal_pairs(10, seed=21):
        explained = attribution(shipped, pair.source, pair.target)
        steps = slice(0, -1)  # the "</s>" step points at nothing in particular
        correlations.append(np.nanmean(explained.spearman[steps]))
        agree.append(
            np.mean(
                explained.saliency[steps].argmax(axis=1)
                == explained.attention[steps].argmax(axis=1)
            )
        )
    assert np.mean(correlations) > 0.2
    assert np.mean(agree) > 0.6


def test_knocking_out_the_attended_word_removes_the_output(reversal_translator):
    result = knock_out(reversal_translator, "a b c d e", "e d c b a")
    assert result.source_words == ["a", "b", "c", "d", "e", "</s>"]
    assert result.target_pieces[-1] == "</s>"
    # Target word t copies source word 4 - t: that is the word knocked out, and without it the
    # model can no longer say which letter comes.
    assert result.word[:-1].tolist() == [4, 3, 2, 1, 0]
    assert np.all(result.prob[:-1] > 0.5)
    assert result.change[:-1].mean() < -0.5
    np.testing.assert_allclose(result.change, result.knocked_prob - result.prob)
