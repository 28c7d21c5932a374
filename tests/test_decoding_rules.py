"""Decoding defaults: length penalties, the length limit, and the toolkits' beam rules.

The Joey NMT and OpenNMT-py rules are checked against line-by-line transcriptions of their
beam search loops (joeynmt 2.3 ``search.py`` ``beam_search``, OpenNMT-py 3.5.1
``beam_search.py`` ``BeamSearchBase.advance`` / ``update_finished``) for one sentence, run on
the same model through :meth:`AttentionRNN.decode_step`.
"""

from __future__ import annotations

import json

import pytest
import torch

from attnviz.batch_search import beam_search_batch, greedy_search_batch
from attnviz.checkpoint import load_checkpoint, save_checkpoint
from attnviz.errors import CheckpointError
from attnviz.model import AttentionRNN, ModelConfig, select_state
from attnviz.search import DecodingConfig, beam_search, greedy_search
from attnviz.translator import Translator

VOCAB = 29
SOURCES = [[5, 9, 4, 7, 3], [6, 3], [8, 11, 12, 13, 14, 15, 3], [20, 21, 3]]


def tiny(seed: int, **variant) -> AttentionRNN:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=VOCAB,
        emb_dim=8,
        enc_hidden=6,
        dec_hidden=12,
        attn_dim=7,
        dropout=0.0,
        max_src_len=20,
        max_tgt_len=30,
        decoder_order="luong",
        cell="lstm",
        input_feeding=True,
        memory_proj=False,
        scorer="general",
        init_state="bridge",
        tie_output=False,
        **variant,
    )
    model = AttentionRNN(config)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.5)
        # EOS likely enough that hypotheses end at different steps.
        model.output_bias[config.eos_id] += 2.5
    return model.eval()


def _tiled(model: AttentionRNN, src: list[int], beam: int):
    encoded = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
    return encoded.select(torch.zeros(beam, dtype=torch.long))


@torch.inference_mode()
def joey_beam_search(model, src, beam_size, max_output_length, alpha):
    """joeynmt 2.3 search.beam_search for batch size 1 (n_best = beam_size)."""
    cfg = model.config
    encoded = _tiled(model, src, beam_size)
    hidden = encoded.state
    alive_seq = torch.full((beam_size, 1), cfg.bos_id, dtype=torch.long)
    topk_log_probs = torch.zeros(beam_size)
    topk_log_probs[1:] = float("-inf")
    hypotheses = []
    is_finished = torch.zeros(beam_size, dtype=torch.bool)
    for step in range(max_output_length):
        out = model.decode_step(alive_seq[:, -1], hidden, encoded)
        log_probs = out.logprobs.clone()
        for forbidden in (cfg.bos_id, cfg.pad_id):
            log_probs[:, forbidden] = float("-inf")
        if step < 1:  # min_output_length 1
            log_probs[:, cfg.eos_id] = float("-inf")
        log_probs += topk_log_probs.view(-1).unsqueeze(1)
        curr_scores = log_probs.clone()
        if alpha > 0:
            length_penalty = ((5.0 + (step + 1)) / 6.0) ** alpha
            curr_scores /= length_penalty
        topk_scores, topk_ids = curr_scores.reshape(-1).topk(beam_size)
        topk_log_probs = topk_scores * length_penalty if alpha > 0 else topk_scores.clone()
        beam_index = topk_ids.div(VOCAB, rounding_mode="floor")
        topk_ids = topk_ids.fmod(VOCAB)
        alive_seq = torch.cat([alive_seq[beam_index], topk_ids.view(-1, 1)], -1)
        is_finished = topk_ids.eq(cfg.eos_id) | is_finished | topk_scores.eq(float("-inf"))
        if step + 1 == max_output_length:
            is_finished.fill_(True)
        end_condition = bool(is_finished.all())
        for j in is_finished.nonzero().view(-1).tolist():
            n_eos = int((alive_seq[j, 1:] == cfg.eos_id).sum())
            if n_eos > 1:
                continue
            if (n_eos == 0 and step + 1 == max_output_length) or (
                n_eos == 1 and int(alive_seq[j, -1]) == cfg.eos_id
            ):
                hypotheses.append((float(topk_scores[j]), alive_seq[j, 1:].tolist()))
        if end_condition:
            break
        hidden = select_state(out.state, beam_index)
    return sorted(hypotheses, key=lambda h: h[0], reverse=True)


@torch.inference_mode()
def onmt_beam_search(model, src, beam_size, max_length, alpha, penalty):
    """OpenNMT-py 3.5.1 BeamSearch for batch size 1, n_best 1, ratio 0, min_length 0."""
    cfg = model.config
    encoded = _tiled(model, src, beam_size)
    hidden = encoded.state
    alive_seq = torch.full((beam_size, 1), cfg.bos_id, dtype=torch.long)
    topk_log_probs = torch.tensor([0.0] + [float("-inf")] * (beam_size - 1))
    hypotheses = []
    while True:
        step = alive_seq.shape[1]  # len(self)
        out = model.decode_step(alive_seq[:, -1], hidden, encoded)
        log_probs = out.logprobs.clone() + topk_log_probs.view(-1, 1)
        cur_len = step + 1
        length_penalty = {
            "wu": ((5 + cur_len) / 6.0) ** alpha,
            "avg": cur_len**alpha,
            "none": 1.0,
        }[penalty]
        curr_scores = log_probs / length_penalty if length_penalty != 1 else log_probs
        topk_scores, topk_ids = curr_scores.reshape(-1).topk(beam_size)
        topk_log_probs = topk_scores * length_penalty
        beam_index = topk_ids // VOCAB
        topk_ids = topk_ids % VOCAB
        alive_seq = torch.cat([alive_seq[beam_index], topk_ids.view(-1, 1)], -1)
        is_finished = topk_ids.eq(cfg.eos_id)
        if alive_seq.shape[1] == max_length + 1:  # ensure_max_length
            is_finished[:] = True
        topk_log_probs = topk_log_probs.masked_fill(is_finished, -65504)
        for j in is_finished.nonzero().view(-1).tolist():
            hypotheses.append((float(topk_scores[j]), alive_seq[j, 1:].tolist()))
        if bool(is_finished[0]) and len(hypotheses) >= 1:
            break
        hidden = select_state(out.state, beam_index)
    return sorted(hypotheses, key=lambda h: h[0], reverse=True)


def _ours(result):
    return [(h.score, h.tokens) for h in result.hypotheses]


def _assert_same(ours, theirs, beam_size):
    theirs = theirs[:beam_size]
    assert [t for _, t in ours] == [t for _, t in theirs]
    assert [s for s, _ in ours] == pytest.approx([s for s, _ in theirs], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("seed", [1, 3])
@pytest.mark.parametrize(("alpha", "max_len"), [(0.0, 12), (1.0, 12), (0.6, 4)])
def test_joey_rule_decodes_as_joey_beam_search(seed, alpha, max_len):
    model = tiny(seed)
    decoding = DecodingConfig(length_penalty="gnmt", alpha=alpha, beam_stop="joey")
    for beam_size in (3, 5):
        batched = beam_search_batch(model, SOURCES, beam_size, max_len, decoding=decoding)
        for src, together in zip(SOURCES, batched, strict=True):
            ours = beam_search(model, src, beam_size, max_len, decoding=decoding)
            _assert_same(
                _ours(ours), joey_beam_search(model, src, beam_size, max_len, alpha), beam_size
            )
            _assert_same(_ours(together), _ours(ours), beam_size)


@pytest.mark.parametrize("seed", [1, 3])
@pytest.mark.parametrize(
    ("penalty", "alpha", "max_len"),
    [("avg", 1.0, 12), ("wu", 0.7, 12), ("none", 0.0, 12), ("avg", 1.0, 3)],
)
def test_onmt_rule_decodes_as_opennmt_beam_search(seed, penalty, alpha, max_len):
    model = tiny(seed)
    name = {"avg": "length_norm", "wu": "gnmt", "none": "none"}[penalty]
    decoding = DecodingConfig(length_penalty=name, alpha=alpha, beam_stop="onmt")
    for beam_size in (3, 5):
        batched = beam_search_batch(model, SOURCES, beam_size, max_len, decoding=decoding)
        for src, together in zip(SOURCES, batched, strict=True):
            ours = beam_search(model, src, beam_size, max_len, decoding=decoding)
            theirs = onmt_beam_search(model, src, beam_size, max_len, alpha, penalty)
            # OpenNMT-py prints its best hypothesis (n_best 1); the rest are ranked the same.
            _assert_same(_ours(ours), theirs, beam_size)
            _assert_same(_ours(together), _ours(ours), beam_size)


def test_joey_keeps_finished_hypotheses_in_the_beam():
    """A Joey slot that ended with EOS is expanded further: some FINISHED node has children."""
    model = tiny(3)
    decoding = DecodingConfig(length_penalty="none", alpha=0.0, beam_stop="joey")
    tree = beam_search(model, SOURCES[2], 5, 12, decoding=decoding).tree
    parents = {n.parent for n in tree}
    assert any(n.status == "finished" and n.id in parents for n in tree)
    attnviz = beam_search(model, SOURCES[2], 5, 12).tree
    assert not any(n.status == "finished" and n.id in {m.parent for m in attnviz} for n in attnviz)


@torch.inference_mode()
def test_joey_greedy_never_emits_bos_pad_or_an_empty_output():
    model = tiny(2)
    cfg = model.config
    with torch.no_grad():
        model.output_bias[cfg.eos_id] += 30.0  # EOS first unless forbidden
        model.output_bias[cfg.bos_id] += 10.0
        model.freeze()
    joey = DecodingConfig(beam_stop="joey", length_penalty="none", alpha=0.0)
    plain = greedy_search(model, SOURCES[0], 6)
    assert plain.tokens == [cfg.eos_id]
    result = greedy_search(model, SOURCES[0], 6, decoding=joey)
    assert result.tokens[0] not in (cfg.eos_id, cfg.bos_id, cfg.pad_id)
    assert not {cfg.bos_id, cfg.pad_id} & set(result.tokens)
    batched = greedy_search_batch(model, SOURCES, 6, decoding=joey)
    assert batched[0].tokens == result.tokens


def test_length_penalties_and_the_length_limit():
    config = ModelConfig(vocab_size=VOCAB, max_tgt_len=40)
    assert DecodingConfig().score(-6.0, 3) == pytest.approx(-2.0)
    assert DecodingConfig("gnmt", alpha=1.0).score(-6.0, 7) == pytest.approx(-3.0)
    assert DecodingConfig("gnmt", alpha=0.0).score(-6.0, 7) == -6.0
    assert DecodingConfig("none").score(-6.0, 7) == -6.0
    assert DecodingConfig().max_len(config, 10) == 40
    joey = DecodingConfig(max_len_a=1.5, max_len_b=0)
    assert joey.max_len(config, 7) == 10  # int(7 * 1.5)
    onmt = DecodingConfig(max_len_a=1.25, max_len_b=5)
    assert onmt.max_len(config, 9) == 16  # int(min(250, 9 * 1.25 + 5))
    assert onmt.max_len(config, 100) == 40
    with pytest.raises(ValueError, match="beam_stop must be one of attnviz, joey, onmt"):
        DecodingConfig(beam_stop="fairseq")
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        DecodingConfig(alpha=float("nan"))


def test_the_length_rule_limits_each_sentence_of_a_batch():
    model = tiny(3)
    with torch.no_grad():
        model.output_bias[model.config.eos_id] -= 40.0  # never ends by itself
        model.freeze()
    decoding = DecodingConfig(max_len_a=1.0, max_len_b=1)
    greedy = greedy_search_batch(model, SOURCES, decoding=decoding)
    beams = beam_search_batch(model, SOURCES, 3, decoding=decoding)
    for src, g, b in zip(SOURCES, greedy, beams, strict=True):
        assert len(g.tokens) == len(src) + 1
        assert len(greedy_search(model, src, decoding=decoding).tokens) == len(src) + 1
        assert all(len(h.tokens) == len(src) + 1 for h in b.hypotheses)


def test_checkpoint_decoding_section_sets_the_translator_defaults(tmp_path, reversal_model):
    model, tokenizer = reversal_model
    folder = save_checkpoint(tmp_path / "m", model, tokenizer)
    config_path = folder / "config.json"
    raw = json.loads(config_path.read_text())
    raw["decoding"] = {
        "length_penalty": "gnmt",
        "alpha": 0.6,
        "max_len_a": 1.0,
        "max_len_b": 2,
        "beam_stop": "onmt",
        "beam_size": 3,
    }
    config_path.write_text(json.dumps(raw))
    checkpoint = load_checkpoint(folder)
    assert checkpoint.decoding == DecodingConfig("gnmt", 0.6, 1.0, 2, "onmt", 3)
    translator = Translator.from_checkpoint(checkpoint)
    t = translator.translate("a b c d e f")
    assert t.beam_size == 3
    src_ids, _ = translator.source_ids("a b c d e f")
    assert len(t.target_pieces) <= len(src_ids) + 2
    explicit = beam_search(
        translator.model, src_ids, 3, decoding=DecodingConfig("gnmt", 0.6, 1.0, 2, "onmt", 3)
    )
    assert t.hypotheses[0].score == pytest.approx(explicit.hypotheses[0].score)
    raw["decoding"]["beam_stop"] = "marian"
    config_path.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="invalid decoding settings: beam_stop"):
        load_checkpoint(folder)
