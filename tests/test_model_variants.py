"""Every architecture variant of the engine: teacher forcing equals stepping, the searches
agree with each other, and a Luong step matches the formula computed by hand in numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from model_checks import assert_teacher_forcing_equals_decode_steps

from attnviz.batch_search import beam_search_batch, forced_decode_batch, greedy_search_batch
from attnviz.model import AttentionRNN, ModelConfig, select_state
from attnviz.search import beam_search, forced_decode, greedy_search

VOCAB = 23


def tiny(**variant) -> AttentionRNN:
    torch.manual_seed(sum(map(ord, repr(sorted(variant.items())))))
    sizes = dict(vocab_size=VOCAB, emb_dim=8, enc_hidden=6, dec_hidden=12, attn_dim=7, heads=2)
    sizes.update(variant)
    model = AttentionRNN(ModelConfig(dropout=0.0, max_src_len=20, max_tgt_len=9, **sizes))
    with torch.no_grad():
        for p in model.parameters():  # larger weights than the init: peaked, varied attention
            p.mul_(3.0)
    return model.eval()


LUONG = [
    dict(
        decoder_order="luong",
        cell=cell,
        dec_layers=layers,
        enc_layers=layers,
        input_feeding=feeding,
        bidirectional=bidirectional,
        memory_proj=proj,
        init_state=init,
        scorer=scorer,
        tie_output=False,
    )
    for cell, layers, feeding, bidirectional, proj, init, scorer in itertools.product(
        ("gru", "lstm"),
        (1, 2),
        (True, False),
        (True, False),
        (True, False),
        ("bridge", "last", "zero", "encoder_final"),
        ("additive", "general", "dot", "multihead"),
    )
]


def _buildable(variant: dict) -> bool:
    try:
        ModelConfig(vocab_size=VOCAB, emb_dim=8, enc_hidden=6, dec_hidden=12, heads=2, **variant)
    except ValueError:
        return False
    return True


# A spread of the buildable combinations (every option value appears), kept small for speed.
VARIANTS = [v for v in LUONG if _buildable(v)][::7] + [
    dict(),  # attnviz's own models
    dict(memory_proj=False, scorer="general", init_state="zero"),
    dict(src_vocab_size=31, output_bias=False),
    dict(
        decoder_order="luong",
        cell="lstm",
        dec_layers=2,
        input_feeding=True,
        enc_hidden=12,
        emb_dim=12,
        attn_out_bias=False,
        attn_out_activation="none",
        memory_proj=False,
        src_vocab_size=17,
    ),
]
IDS = [str(i) for i in range(len(VARIANTS))]
SOURCES = [[5, 9, 4, 7, 3], [6, 3], [8, 11, 12, 13, 14, 15, 3]]


def test_the_variants_cover_every_option_value():
    for key, values in [
        ("cell", {"gru", "lstm"}),
        ("dec_layers", {1, 2}),
        ("input_feeding", {True, False}),
        ("bidirectional", {True, False}),
        ("memory_proj", {True, False}),
        ("init_state", {"bridge", "last", "zero", "encoder_final"}),
    ]:
        assert {v.get(key) for v in VARIANTS} >= values, key


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_forward_equals_decode_step(variant):
    model = tiny(**variant)
    src = torch.tensor([[5, 9, 4, 7, 3], [6, 3, 0, 0, 0]])
    lengths = torch.tensor([5, 2])
    tgt_in = torch.tensor([[2, 7, 8, 9], [2, 10, 4, 6]])
    assert_teacher_forcing_equals_decode_steps(model, src, lengths, tgt_in)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_searches_agree(variant):
    model = tiny(**variant)
    for src in SOURCES:
        greedy = greedy_search(model, src)
        beam1 = beam_search(model, src, beam_size=1).hypotheses[0]
        assert beam1.tokens == greedy.tokens
        assert beam1.logprob == pytest.approx(greedy.logprob, abs=1e-4)
        forced = forced_decode(model, src, greedy.tokens)
        assert forced.logprob == pytest.approx(greedy.logprob, abs=1e-4)
        np.testing.assert_allclose(forced.attention, greedy.attention, atol=1e-6)
    for one, batched in zip(
        [greedy_search(model, s) for s in SOURCES],
        greedy_search_batch(model, SOURCES),
        strict=True,
    ):
        assert batched.tokens == one.tokens
        np.testing.assert_allclose(batched.attention, one.attention, atol=1e-5)
    beams = [beam_search(model, s, beam_size=4) for s in SOURCES]
    for one, batched in zip(beams, beam_search_batch(model, SOURCES, beam_size=4), strict=True):
        assert [h.tokens for h in batched.hypotheses] == [h.tokens for h in one.hypotheses]
        assert [(n.parent, n.token, n.status) for n in batched.tree] == [
            (n.parent, n.token, n.status) for n in one.tree
        ]
    targets = [b.hypotheses[0].tokens for b in beams]
    for one, batched in zip(
        [forced_decode(model, s, t) for s, t in zip(SOURCES, targets, strict=True)],
        forced_decode_batch(model, SOURCES, targets),
        strict=True,
    ):
        assert batched.logprob == pytest.approx(one.logprob, abs=1e-4)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_beam_hypotheses_score_as_forced_decoding(variant):
    """The beam reorders the state rows with each hypothesis: rescoring every hypothesis on
    its own gives back its log-probability and attention."""
    model = tiny(**variant)
    result = beam_search(model, SOURCES[0], beam_size=4)
    assert len(result.hypotheses) > 1
    for hyp in result.hypotheses:
        forced = forced_decode(model, SOURCES[0], hyp.tokens)
        assert forced.logprob == pytest.approx(hyp.logprob, abs=1e-4)
        np.testing.assert_allclose(forced.attention, hyp.attention, atol=1e-5)


def test_lstm_luong_input_feeding_two_layers_through_every_search():
    model = tiny(**VARIANTS[-1])
    src = SOURCES[0]
    beam = beam_search(model, src, beam_size=3, top_k=4)
    best = beam.hypotheses[0]
    assert beam.tree and all(s.top_ids.shape == (4,) for s in best.steps)
    assert best.steps[0].context.shape == (24,)  # raw bidirectional memory: 2 * 12
    prefix = beam_search(model, src, beam_size=3, prefix=best.tokens[:2]).hypotheses[0]
    assert prefix.tokens[:2] == best.tokens[:2]
    forced = forced_decode(model, src, best.tokens)
    assert forced.logprob == pytest.approx(best.logprob, abs=1e-4)
    # Imposed attention: the state goes on as the model's own, the step follows the weights.
    encoded = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
    out = model.decode_step(torch.tensor([2]), encoded.state, encoded)
    imposed = torch.zeros_like(out.attention)
    imposed[..., 0] = 1.0
    moved = model.decode_step(torch.tensor([2]), encoded.state, encoded, imposed)
    torch.testing.assert_close(moved.context, encoded.keys.values[:, 0])
    assert moved.energies is None and not torch.allclose(moved.logprobs, out.logprobs)
    # The state has the batch first in every tensor, so reordering rows reorders hypotheses.
    twice = encoded.select(torch.tensor([0, 0]))
    assert all(t.shape[0] == 2 for t in twice.state)
    swapped = select_state(out.state, torch.tensor([0]))
    assert all(torch.equal(a, b) for a, b in zip(swapped, out.state, strict=True))


def test_luong_step_matches_numpy_by_hand():
    """One Luong step, GRU with input feeding, general scorer, written out in numpy."""
    model = tiny(
        decoder_order="luong",
        scorer="general",
        input_feeding=True,
        memory_proj=False,
        init_state="bridge",
        tie_output=False,
    )
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    src = [5, 9, 4, 3]
    with torch.no_grad():
        encoded = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
        state = model.decode_step(torch.tensor([2]), encoded.state, encoded).state
        out = model.decode_step(torch.tensor([7]), state, encoded)
    memory = encoded.keys.values[0].double().numpy()  # (src_len, 12) raw encoder states
    h_prev, a_prev = state[0][0, 0].double().numpy(), state[1][0].double().numpy()

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    x = np.concatenate([p["embed.weight"][7], a_prev])
    gi = p["decoder_cells.0.weight_ih"] @ x + p["decoder_cells.0.bias_ih"]
    gh = p["decoder_cells.0.weight_hh"] @ h_prev + p["decoder_cells.0.bias_hh"]
    r = sigmoid(gi[:12] + gh[:12])
    z = sigmoid(gi[12:24] + gh[12:24])
    n = np.tanh(gi[24:] + r * gh[24:])
    h = (1 - z) * n + z * h_prev
    energies = (p["scorer.key_proj.weight"] @ memory.T).T @ h
    weights = np.exp(energies - energies.max())
    weights /= weights.sum()
    context = weights @ memory
    attentional = np.tanh(p["attn_out.weight"] @ np.concatenate([h, context]) + p["attn_out.bias"])
    logits = p["output_weight"] @ attentional + p["output_bias"]
    logprobs = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    np.testing.assert_allclose(out.state[0][0, 0].numpy(), h, atol=1e-5)
    np.testing.assert_allclose(out.energies[0, 0].numpy(), energies, atol=1e-5)
    np.testing.assert_allclose(out.context[0].numpy(), context, atol=1e-5)
    np.testing.assert_allclose(out.state[1][0].numpy(), attentional, atol=1e-5)
    np.testing.assert_allclose(out.logprobs[0].numpy(), logprobs, atol=1e-5)


def test_impossible_variants_are_refused_with_what_fits():
    with pytest.raises(ValueError, match="use decoder_order 'luong'"):
        ModelConfig(vocab_size=VOCAB, cell="lstm")
    with pytest.raises(ValueError, match="encoder_final"):
        ModelConfig(
            vocab_size=VOCAB, decoder_order="luong", init_state="encoder_final", dec_layers=2
        )
    with pytest.raises(ValueError, match="cell must be one of gru, lstm"):
        ModelConfig(vocab_size=VOCAB, cell="rnn")
