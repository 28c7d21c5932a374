"""Every trace attnviz has, on a Luong-order LSTM model with input feeding, two layers, raw
memory and a separate source vocabulary; and its checkpoint validated tensor by tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from attnviz.analysis import attribution, knock_out
from attnviz.checkpoint import load_checkpoint, save_checkpoint
from attnviz.errors import CheckpointError
from attnviz.explain import explain_step
from attnviz.model import AttentionRNN, ModelConfig
from attnviz.translator import Translator


@pytest.fixture(scope="module")
def luong(reversal_model) -> Translator:
    _, tokenizer = reversal_model
    torch.manual_seed(4)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        src_vocab_size=tokenizer.vocab_size,
        emb_dim=16,
        enc_hidden=8,
        dec_hidden=16,
        enc_layers=2,
        dec_layers=2,
        cell="lstm",
        decoder_order="luong",
        input_feeding=True,
        memory_proj=False,
        init_state="encoder_final",
        scorer="general",
        dropout=0.0,
        max_src_len=40,
        max_tgt_len=12,
        output_bias=False,
    )
    return Translator(AttentionRNN(config), tokenizer, "luong")


def test_translation_traces(luong):
    t = luong.translate("a b c d", beam_size=4, n_best=3, top_k=5, max_len=8)
    assert len(t.hypotheses) == 3 and t.beam_tree
    for step in t.steps:
        assert step.attention.shape == (len(t.source_pieces),)
        assert step.attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert step.context.shape == (16,)  # raw memory: 2 directions * 8
        assert len(step.candidates) == 5
    greedy = luong.translate("a b c d", beam_size=1)
    assert greedy.target_pieces == luong.translate_batch(["a b c d"], beam_size=1)[0].target_pieces
    prefix = luong.translate("a b c d", beam_size=3, prefix=["▁d"])
    assert prefix.target_pieces[0] == "▁d"
    # Forced decoding of the best hypothesis (plus "</s>" when it was cut at the length limit).
    score = luong.score("a b c d", t.target_pieces)
    best = t.hypotheses[0]
    n = len(best.token_logprobs)
    np.testing.assert_allclose(score.token_logprobs[:n], best.token_logprobs, atol=1e-4)
    np.testing.assert_allclose(score.attention[:n], t.attention, atol=1e-5)


def test_analysis_and_explain(luong):
    t = luong.translate("a b c d", beam_size=3)
    saliency = attribution(luong, "a b c d", t.target_pieces)
    assert saliency.gradient_x_input.shape == t.attention.shape
    assert np.abs(saliency.gradient_x_input).sum() > 0
    knocked = knock_out(luong, "a b c d", t.target_pieces)
    assert knocked.prob.shape == (len(t.target_pieces),)
    assert not np.allclose(knocked.knocked_prob, knocked.prob)
    explanation = explain_step(luong, t, 0)
    np.testing.assert_allclose(explanation.weighted_sum, explanation.context, atol=1e-5)
    assert explanation.query == "h_t"
    assert "h_t" in explanation.formula.score_latex
    assert "s_{t-1}" not in explanation.formula.score_text


def test_checkpoint_round_trip_and_tensor_checks(luong, tmp_path):
    folder = save_checkpoint(tmp_path / "luong", luong.model, luong.source_tokenizer)
    loaded = Translator.from_checkpoint(load_checkpoint(folder))
    assert loaded.config == luong.config
    t = luong.translate("a b c", beam_size=3)
    assert loaded.translate("a b c", beam_size=3).target_pieces == t.target_pieces
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    assert "decoder_cells.1.weight_hh" in tensors and "src_embed.weight" in tensors
    assert "output_bias" not in tensors and "memory_proj.weight" not in tensors
    tensors["decoder_cells.1.weight_hh"] = tensors["decoder_cells.1.weight_hh"][:, :8].clone()
    save_file(tensors, weights)
    with pytest.raises(CheckpointError, match=r"'decoder_cells.1.weight_hh' has shape \[64, 8\]"):
        load_checkpoint(folder)
    del tensors["decoder_cells.1.weight_hh"]
    save_file(tensors, weights)
    with pytest.raises(CheckpointError, match="missing tensors decoder_cells.1.weight_hh"):
        load_checkpoint(folder)
