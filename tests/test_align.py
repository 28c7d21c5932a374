"""Word-level aggregation and argmax links, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np

from attnviz.align import argmax_links, word_attention


def test_source_pieces_sum_and_target_pieces_average():
    attention = np.array(
        [
            [0.1, 0.2, 0.7],  # target piece 0 (word 0)
            [0.3, 0.3, 0.4],  # target piece 1 (word 0)
            [0.5, 0.5, 0.0],  # target piece 2 (word 1)
        ]
    )
    words = word_attention(attention, [0, 0, 1], [0, 0, 1])
    np.testing.assert_allclose(words, [[0.45, 0.55], [1.0, 0.0]])
    np.testing.assert_allclose(words.sum(axis=1), 1.0)


def test_argmax_links_skip_the_end_of_sentence():
    attention = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.0, 0.1, 0.9]])
    assert argmax_links(attention) == [(1, 0), (0, 1)]
    assert argmax_links(attention, skip_last=False) == [(1, 0), (0, 1), (2, 2)]
