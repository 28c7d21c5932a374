"""The public wrapper: result fields, input errors, truncation, threads, save/load."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import attnviz
from attnviz import translator as translator_module
from attnviz.model import AttentionRNN
from attnviz.translator import Translator


def test_translation_fields_match_the_design(reversal_translator):
    t = reversal_translator.translate("a b c d", beam_size=5, n_best=5, top_k=5)
    assert t.text == "d c b a"
    assert t.source_pieces == ["▁a", "▁b", "▁c", "▁d", "</s>"]
    assert t.target_pieces == ["▁d", "▁c", "▁b", "▁a", "</s>"]
    assert t.source_words == ["a", "b", "c", "d", "</s>"]
    assert t.target_word_of_piece == [0, 1, 2, 3, 4]
    assert t.attention.shape == (5, 5)
    np.testing.assert_allclose(t.attention.sum(axis=1), 1.0, atol=1e-5)
    assert t.head_attention is None
    assert len(t.hypotheses) == 5 and t.hypotheses[0].text == t.text
    assert t.hypotheses[0].attention.shape == (5, 5)
    assert [s.piece for s in t.steps] == t.target_pieces
    assert all(len(s.candidates) == 5 for s in t.steps)
    assert t.steps[0].candidates[0].piece == "▁d"
    assert 0.5 < t.steps[0].prob <= 1.0
    kept = [n for n in t.beam_tree if n.status == "finished"]
    assert len(kept) == 5
    assert not t.truncated


def test_score_is_forced_decoding(reversal_translator):
    s = reversal_translator.score("a b c", "c b a")
    assert s.target_pieces == ["▁c", "▁b", "▁a", "</s>"]
    assert s.attention.shape == (4, 4)
    assert s.token_logprobs.shape == (4,)
    assert s.logprob == pytest.approx(float(s.token_logprobs.sum()), abs=1e-4)
    wrong = reversal_translator.score("a b c", "a b c")
    assert wrong.logprob < s.logprob - 5  # the unreversed target is very unlikely


def test_score_accepts_pieces_and_matches_the_hypothesis(reversal_translator):
    t = reversal_translator.translate("k l m n o", beam_size=4, n_best=4)
    for hyp in t.hypotheses:
        s = reversal_translator.score("k l m n o", hyp.pieces)
        assert s.logprob == pytest.approx(hyp.logprob, abs=1e-3)


def test_prefix_continuation(reversal_translator):
    t = reversal_translator.translate("a b c d", beam_size=3, prefix="x")
    assert t.target_pieces[0] == "▁x"
    assert t.text.startswith("x")


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u202f"])
def test_empty_input_raises_input_error(reversal_translator, text):
    with pytest.raises(attnviz.InputError, match="empty"):
        reversal_translator.translate(text)


def test_long_input_is_truncated_and_says_so(reversal_translator):
    text = " ".join("abcdefg" * 300)
    t = reversal_translator.translate(text, beam_size=2, max_len=5)
    assert t.truncated
    assert len(t.source_pieces) == reversal_translator.config.max_src_len
    with pytest.raises(attnviz.InputError, match="limit"):
        reversal_translator.translate(text, strict=True)


def test_input_ids_end_with_the_models_own_eos(reversal_model):
    """The special ids come from the model's config (a model imported from another toolkit
    may reserve other ids than attnviz's tokenizer)."""
    model, tokenizer = reversal_model
    other = Translator(AttentionRNN(dataclasses.replace(model.config, eos_id=7)), tokenizer)
    source, _ = other.source_ids("a b")
    assert source[-1] == 7 and 3 not in source
    assert other.target_ids("b a")[-1] == 7


def test_unseen_characters_survive(reversal_translator):
    t = reversal_translator.translate("a 😀 b Straße 日本 <b>x</b>", beam_size=2)
    assert t.source_words[:6] == ["a", "😀", "b", "Straße", "日本", "<b>x</b>"]
    np.testing.assert_allclose(t.attention.sum(axis=1), 1.0, atol=1e-5)


def test_concurrent_translations_equal_sequential_ones(reversal_translator):
    sentences = ["a b c", "x y z w", "m n o p q r", "h i", "s t u v w x y", "e f g h"] * 3
    expected = [reversal_translator.translate(s, beam_size=3, n_best=3) for s in sentences]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda s: reversal_translator.translate(s, 3, 3), sentences))
    for e, g in zip(expected, got, strict=True):
        assert [h.pieces for h in g.hypotheses] == [h.pieces for h in e.hypotheses]
        np.testing.assert_array_equal(g.attention, e.attention)
        assert [h.score for h in g.hypotheses] == [h.score for h in e.hypotheses]


def test_save_then_load_gives_identical_outputs(reversal_checkpoint, reversal_model):
    loaded = attnviz.load(reversal_checkpoint)
    assert loaded.name == "reversal-additive"
    model, tokenizer = reversal_model
    rounded = type(model)(model.config).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    reference = Translator(rounded, tokenizer)
    for text in ["a b c d", "q r s t u v"]:
        a = loaded.translate(text, beam_size=4, n_best=4)
        b = reference.translate(text, beam_size=4, n_best=4)
        assert [h.pieces for h in a.hypotheses] == [h.pieces for h in b.hypotheses]
        np.testing.assert_array_equal(a.attention, b.attention)


def test_decoding_uses_the_translators_threads_and_restores_the_callers(
    reversal_translator, monkeypatch
):
    seen = []
    for name in ("greedy_search", "beam_search", "forced_decode"):
        search = getattr(translator_module, name)

        def recording(*args, _search=search, **kwargs):
            seen.append(torch.get_num_threads())
            return _search(*args, **kwargs)

        monkeypatch.setattr(translator_module, name, recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        reversal_translator.translate("a b c", beam_size=1)
        reversal_translator.translate("a b c", beam_size=3)
        reversal_translator.score("a b c", "c b a")
        assert seen == [1, 1, 1] and torch.get_num_threads() == 2
        reversal_translator.threads = None  # the caller's setting
        reversal_translator.translate("a b c", beam_size=3)
        assert seen[-1] == 2
    finally:
        reversal_translator.threads = 1
        torch.set_num_threads(before)


def test_undecodable_text_is_an_input_error(reversal_translator):
    with pytest.raises(attnviz.InputError, match="not valid UTF-8"):
        reversal_translator.translate("caf\udce9")
    with pytest.raises(attnviz.InputError, match="not valid UTF-8"):
        reversal_translator.score("a b", "b \udcff")
