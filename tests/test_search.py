"""Searches on the trained reversal model: greedy, beam, forced decoding, prefixes, the tree."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.search import NodeStatus, beam_search, forced_decode, greedy_search
from attnviz.synthetic import reversal_pairs

SENTENCES = ["a b c d", "q w e r t y", "z z y", "h e l l o w o r l d"]


def path_to(node_id: int, tree) -> tuple[int, ...]:
    """Tokens from the root of the beam tree to node ``node_id``."""
    nodes = {n.id: n for n in tree}
    path = []
    while node_id != -1:
        path.append(nodes[node_id].token)
        node_id = nodes[node_id].parent
    return tuple(reversed(path))


@pytest.fixture(scope="module")
def model_and_tokens(reversal_model):
    model, tokenizer = reversal_model
    return model, [tokenizer.encode(s) + [model.config.eos_id] for s in SENTENCES]


def test_attention_of_the_reversal_model_is_on_the_mirrored_word(reversal_translator):
    hits = total = 0
    for pair in reversal_pairs(60, seed=123):
        t = reversal_translator.translate(pair.source, beam_size=1)
        for src_word, tgt_word in pair.alignment:
            if tgt_word < len(t.attention):
                total += 1
                hits += int(t.attention[tgt_word].argmax() == src_word)
    assert total > 300
    assert hits / total > 0.9


def test_beam_of_one_is_greedy(model_and_tokens):
    model, sources = model_and_tokens
    for src in sources:
        greedy = greedy_search(model, src)
        beam = beam_search(model, src, beam_size=1).hypotheses[0]
        assert beam.tokens == greedy.tokens
        assert beam.logprob == pytest.approx(greedy.logprob, abs=1e-4)


def test_every_hypothesis_scores_the_same_under_forced_decoding(model_and_tokens):
    model, sources = model_and_tokens
    for src in sources:
        result = beam_search(model, src, beam_size=5, alpha=1.0)
        assert len(result.hypotheses) == 5
        for hyp in result.hypotheses:
            forced = forced_decode(model, src, hyp.tokens)
            assert forced.logprob == pytest.approx(hyp.logprob, abs=1e-3)
            np.testing.assert_allclose(forced.token_logprobs, hyp.token_logprobs, atol=1e-4)
            np.testing.assert_allclose(forced.attention, hyp.attention, atol=1e-5)
            assert hyp.score == pytest.approx(hyp.logprob / len(hyp.tokens))


def test_n_best_is_sorted_and_distinct(model_and_tokens):
    model, sources = model_and_tokens
    hyps = beam_search(model, sources[1], beam_size=6).hypotheses
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert len({tuple(h.tokens) for h in hyps}) == len(hyps)


def test_finished_leaves_of_the_beam_tree_are_the_n_best(model_and_tokens):
    model, sources = model_and_tokens
    for src in sources:
        result = beam_search(model, src, beam_size=4)
        paths = {path_to(n.id, result.tree) for n in result.tree if n.status == NodeStatus.FINISHED}
        assert paths == {tuple(h.tokens) for h in result.hypotheses}
        statuses = {n.status for n in result.tree}
        assert NodeStatus.PRUNED in statuses and NodeStatus.KEPT in statuses
        children = {n.parent for n in result.tree}
        for node in result.tree:
            if node.status in (NodeStatus.PRUNED, NodeStatus.FINISHED):
                assert node.id not in children


def test_tree_nodes_carry_cumulative_logprobs(model_and_tokens):
    model, sources = model_and_tokens
    tree = beam_search(model, sources[0], beam_size=3).tree
    nodes = {n.id: n for n in tree}
    for node in tree:
        before = nodes[node.parent].cumulative_logprob if node.parent != -1 else 0.0
        assert node.cumulative_logprob == pytest.approx(before + node.logprob, abs=1e-5)


def test_continuation_from_a_forced_prefix(model_and_tokens, reversal_model):
    model, sources = model_and_tokens
    _, tokenizer = reversal_model
    src = sources[0]  # "a b c d": the model would start with "d"
    prefix = tokenizer.encode("x")
    result = beam_search(model, src, beam_size=3, prefix=prefix)
    for hyp in result.hypotheses:
        assert hyp.tokens[: len(prefix)] == prefix
    best = result.hypotheses[0]
    forced = forced_decode(model, src, best.tokens)
    assert forced.logprob == pytest.approx(best.logprob, abs=1e-3)
    assert greedy_search(model, src).tokens[0] != prefix[0]


def test_top_k_is_sorted_and_greedy_picks_the_first(model_and_tokens):
    model, sources = model_and_tokens
    result = greedy_search(model, sources[2], top_k=7)
    for step in result.steps:
        assert len(step.top_ids) == 7
        assert np.all(np.diff(step.top_logprobs) <= 0)
        assert step.token == step.top_ids[0]
        assert np.exp(step.top_logprobs).sum() <= 1.0 + 1e-5


def test_decoding_stops_at_max_len(model_and_tokens):
    model, sources = model_and_tokens
    result = beam_search(model, sources[3], beam_size=3, max_len=3)
    assert all(len(h.tokens) <= 3 for h in result.hypotheses)
    assert not result.hypotheses[0].finished
    assert len(greedy_search(model, sources[3], max_len=2).tokens) == 2
