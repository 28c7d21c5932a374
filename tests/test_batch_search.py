"""Batched decoding gives, sentence by sentence, what one-at-a-time decoding gives: the same
texts, pieces, n-best lists and beam trees, and float traces equal up to the last bits of a
product summed over a batch (rows of a recurrence carry such differences along, so traces are
compared relative to their magnitude). Near-ties among pruned candidates may rank the other
way round; only those may differ in a tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnviz import InputError
from attnviz.batch_search import beam_search_batch, forced_decode_batch, greedy_search_batch
from attnviz.search import beam_search, forced_decode, greedy_search
from attnviz.synthetic import date_pairs, reversal_pairs
from attnviz.translator import Translation, load

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
ENGLISH = [
    "A man in a blue shirt is standing on a ladder cleaning windows.",
    "Two dogs play in the snow.",
    "It is cold today.",
    "A little girl climbs into a wooden playhouse while her brother watches from the grass.",
    "People are walking down a busy city street at night.",
    "Where do you live?",
    "The red car is fast.",
    "A woman is slicing vegetables in a small kitchen next to an open window.",
    "Children.",
]
TOLERANCE = 1e-4  # relative to the largest magnitude of the trace compared
TIE = 1e-4  # cumulative log-probabilities closer than this may rank either way


def assert_close(batched: np.ndarray, alone: np.ndarray) -> None:
    assert batched.shape == alone.shape
    scale = max(1.0, float(np.abs(alone).max(initial=0.0)))
    np.testing.assert_allclose(batched, alone, rtol=0, atol=TOLERANCE * scale)


def assert_same_steps(batched, alone) -> None:
    assert [s.piece for s in batched] == [s.piece for s in alone]
    for b, a in zip(batched, alone, strict=True):
        assert [c.piece for c in b.candidates] == [c.piece for c in a.candidates]
        assert_close(
            np.array([c.logprob for c in b.candidates]), np.array([c.logprob for c in a.candidates])
        )
        for name in ("head_attention", "energies", "context"):
            assert_close(getattr(b, name), getattr(a, name))
        assert b.logprob == pytest.approx(a.logprob, abs=TOLERANCE)


def assert_same_tree(batched, alone) -> None:
    assert len(batched) == len(alone)
    for b, a in zip(batched, alone, strict=True):
        assert b.cumulative_logprob == pytest.approx(a.cumulative_logprob, abs=TIE)
        if (b.step, b.parent, b.piece, b.status) != (a.step, a.parent, a.piece, a.status):
            assert b.status == a.status == "pruned", (b, a)


def assert_same_translation(batched: Translation, alone: Translation) -> None:
    assert batched.text == alone.text
    assert batched.source_pieces == alone.source_pieces
    assert batched.target_pieces == alone.target_pieces
    assert [h.pieces for h in batched.hypotheses] == [h.pieces for h in alone.hypotheses]
    for b, a in zip(batched.hypotheses, alone.hypotheses, strict=True):
        assert b.finished == a.finished
        assert b.score == pytest.approx(a.score, abs=TIE)
        assert_close(b.token_logprobs, a.token_logprobs)
        assert_close(b.head_attention, a.head_attention)
        assert_same_steps(b.steps, a.steps)
    assert_close(batched.attention, alone.attention)
    assert_same_tree(batched.beam_tree, alone.beam_tree)


def corpus(name: str) -> list[str]:
    if name.startswith("reversal"):
        return [p.source for p in reversal_pairs(12, seed=5)]
    if name.startswith("dates"):
        return [p.source for p in date_pairs(12, seed=5)]
    return ENGLISH


@pytest.mark.parametrize(
    "name", ["en-fr-additive", "en-fr-lab-multihead", "reversal-multihead", "dates-general"]
)
@pytest.mark.parametrize("beam", [1, 5])
def test_bundled_models_translate_a_batch_as_one_at_a_time(name, beam):
    translator = load(PRETRAINED / name)
    texts = corpus(name)
    alone = [translator.translate(t, beam_size=beam, n_best=beam) for t in texts]
    # A batch size that leaves a short last batch: sentences of many lengths share batches.
    batched = translator.translate_batch(texts, beam_size=beam, n_best=beam, batch_size=4)
    assert len(batched) == len(texts)
    for b, a in zip(batched, alone, strict=True):
        assert_same_translation(b, a)


@pytest.mark.parametrize("name", ["en-fr-additive", "en-fr-lab-multihead", "dates-general"])
def test_bundled_models_score_a_batch_as_one_at_a_time(name):
    translator = load(PRETRAINED / name)
    texts = corpus(name)
    targets = [translator.translate(t, beam_size=1).text for t in reversed(texts)]
    pairs = list(zip(texts, targets, strict=True))  # targets of other lengths than their sources
    alone = [translator.score(s, t) for s, t in pairs]
    batched = translator.score_batch(pairs, batch_size=3)
    for b, a in zip(batched, alone, strict=True):
        assert b.target_pieces == a.target_pieces
        assert b.text == a.text
        assert b.logprob == pytest.approx(a.logprob, abs=TOLERANCE)
        assert_close(b.token_logprobs, a.token_logprobs)
        assert_close(b.attention, a.attention)
        assert_same_steps(b.steps, a.steps)


def test_searches_return_input_order_and_every_sentence(reversal_model):
    model, tokenizer = reversal_model
    eos = model.config.eos_id
    sources = [tokenizer.encode(p.source) + [eos] for p in reversal_pairs(10, seed=9)]
    greedy = greedy_search_batch(model, sources, top_k=3, batch_size=3)
    beams = beam_search_batch(model, sources, beam_size=3, top_k=3, batch_size=3)
    for src, g, b in zip(sources, greedy, beams, strict=True):
        assert g.tokens == greedy_search(model, src, top_k=3).tokens
        assert g.attention.shape[-1] == len(src)  # cut to its own source, not the batch's
        alone = beam_search(model, src, beam_size=3, top_k=3)
        assert [h.tokens for h in b.hypotheses] == [h.tokens for h in alone.hypotheses]
        assert len(b.tree) == len(alone.tree)
    targets = [g.tokens for g in reversed(greedy)]
    forced = forced_decode_batch(model, sources, targets, batch_size=4)
    for src, tgt, f in zip(sources, targets, forced, strict=True):
        one = forced_decode(model, src, tgt)
        assert f.tokens == tgt and f.finished == one.finished
        assert f.logprob == pytest.approx(one.logprob, abs=TOLERANCE)


def test_greedy_stops_each_sentence_at_max_len(reversal_model):
    model, tokenizer = reversal_model
    sources = [tokenizer.encode(s) + [model.config.eos_id] for s in ["a b c d e f", "a"]]
    results = greedy_search_batch(model, sources, max_len=3)
    assert [len(r.tokens) for r in results] == [3, len(greedy_search(model, sources[1]).tokens)]
    assert not results[0].finished and results[1].finished


def test_an_empty_batch_gives_nothing(reversal_translator):
    assert reversal_translator.translate_batch([]) == []
    assert reversal_translator.score_batch([]) == []


def test_unusable_input_names_its_sentence(reversal_translator):
    with pytest.raises(InputError, match="sentence 2: the source text is empty"):
        reversal_translator.translate_batch(["a b", "  ", "c"])
    with pytest.raises(InputError, match="sentence 1: the target text is empty"):
        reversal_translator.score_batch([("a b", "")])
    with pytest.raises(InputError, match="batch_size"):
        reversal_translator.translate_batch(["a b"], batch_size=0)


def test_corpus_bench_counts_the_sentences_that_differ():
    from attnviz.corpus_bench import _both_ways

    figures, first, second = _both_ways(lambda: ["a", "b", "c"], lambda: ["a", "x", "c"])
    assert (first, second) == (["a", "b", "c"], ["a", "x", "c"])
    assert figures["sentences"] == 3 and figures["sentences_that_differ"] == 1
    for way in ("one_at_a_time", "batched"):
        assert figures[way]["peak_rss_mib"] >= figures[way]["start_rss_mib"] > 0


def test_corpus_bench_without_its_data_says_so(tmp_path, capsys):
    from attnviz import cli

    assert cli.main(["bench", "--corpus", str(tmp_path / "nothing")]) == 2
    assert "cannot run the corpus benchmark" in capsys.readouterr().err
