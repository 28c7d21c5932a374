"""Scorers and model: attention is a distribution, padding is ignored, gradients flow, and the
training path computes exactly what the one-step decoding path computes."""

from __future__ import annotations

import pytest
import torch
from model_checks import assert_teacher_forcing_equals_decode_steps

from attnviz.attention import SCORERS, build_scorer
from attnviz.model import AttentionRNN, ModelConfig


def tiny_config(scorer: str, **overrides) -> ModelConfig:
    sizes = dict(vocab_size=40, emb_dim=16, enc_hidden=12, dec_hidden=16, attn_dim=8, heads=4)
    return ModelConfig(scorer=scorer, **{**sizes, **overrides})


def padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    src = torch.randint(4, 40, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    for row, n in enumerate(lengths):
        src[row, n:] = 0
    tgt_in = torch.randint(4, 40, (3, 6))
    tgt_in[:, 0] = 2
    return src, lengths, tgt_in


@pytest.mark.parametrize("scorer", SCORERS)
def test_attention_rows_sum_to_one_and_padding_gets_zero(scorer):
    model = AttentionRNN(tiny_config(scorer)).eval()
    src, lengths, tgt_in = padded_batch()
    _, attention = model(src, lengths, tgt_in, return_attention=True)
    heads = 4 if scorer == "multihead" else 1
    assert attention.shape == (3, 6, heads, 7)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 6, heads))
    for row, n in enumerate(lengths):
        assert torch.all(attention[row, :, :, n:] == 0)
        assert torch.all(attention[row, :, :, :n] > 0)


@pytest.mark.parametrize("scorer", SCORERS)
def test_gradients_reach_every_parameter(scorer):
    model = AttentionRNN(tiny_config(scorer, dropout=0.1)).train()
    src, lengths, tgt_in = padded_batch()
    logits, _ = model(src, lengths, tgt_in)
    logits.log_softmax(-1)[..., 5].sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("scorer", SCORERS)
def test_teacher_forcing_equals_step_by_step_decoding(scorer):
    model = AttentionRNN(tiny_config(scorer)).eval()
    src, lengths, tgt_in = padded_batch()
    assert_teacher_forcing_equals_decode_steps(model, src, lengths, tgt_in)


@pytest.mark.parametrize("scorer", SCORERS)
def test_scorers_keep_no_state_between_calls(scorer):
    scorer_module = build_scorer(scorer, 16, heads=4, attn_dim=8)
    before = {k: v for k, v in vars(scorer_module).items() if not k.startswith("_")}
    memory = torch.randn(2, 5, 16)
    keys = scorer_module.prepare(memory, torch.ones(2, 5, dtype=torch.bool))
    scorer_module(torch.randn(2, 16), keys)
    after = {k: v for k, v in vars(scorer_module).items() if not k.startswith("_")}
    assert after == before
    assert not any(isinstance(v, torch.Tensor) for v in after.values())


def test_config_round_trips_through_a_dict():
    config = tiny_config("multihead", dropout=0.3, tie_output=False)
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(scorer="cosine"), "unknown attention scorer"),
        (dict(scorer="multihead", heads=3), "must divide"),
        (dict(emb_dim=0), "positive integer"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_bad_configs_are_rejected_with_a_reason(overrides, message):
    base = tiny_config("additive").to_dict()
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict({**base, **overrides})


def test_unknown_config_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        ModelConfig.from_dict({**tiny_config("dot").to_dict(), "colour": "red"})


def test_untied_output_layer_has_its_own_weight():
    tied = AttentionRNN(tiny_config("dot"))
    untied = AttentionRNN(tiny_config("dot", tie_output=False))
    assert "output_weight" not in dict(tied.named_parameters())
    assert dict(untied.named_parameters())["output_weight"].shape == (40, 16)
