"""What the Align figure draws, by word and by piece."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.align import own_links, sorted_links, word_attention
from attnviz.alignment_matrix import alignment_matrix
from attnviz.figures import alignment_heatmap


@pytest.fixture(scope="module")
def translation(reversal_translator):
    return reversal_translator.translate("ab cd e", beam_size=3)


def test_by_word_sums_pieces_and_links_words(translation):
    matrix = alignment_matrix(translation, "words", links=True)
    assert (matrix.source, matrix.target) == (translation.source_words, translation.target_words)
    expected = word_attention(
        translation.attention, translation.source_word_of_piece, translation.target_word_of_piece
    )
    np.testing.assert_allclose(matrix.attention, expected)
    np.testing.assert_allclose(matrix.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert matrix.links == sorted_links(own_links(translation))


def test_by_piece_draws_the_attention_as_decoded(translation):
    matrix = alignment_matrix(translation, "pieces", links=True)
    assert matrix.source == translation.source_pieces
    np.testing.assert_array_equal(matrix.attention, translation.attention)
    assert matrix.links == sorted_links(own_links(translation, unit="pieces"))
    assert alignment_matrix(translation, "pieces", links=False).links == []


def test_an_unknown_unit_is_refused(translation):
    with pytest.raises(ValueError, match="unit"):
        alignment_matrix(translation, "letters", links=True)


def test_the_align_figure_says_model_search_and_unit(translation):
    figure = alignment_heatmap(alignment_matrix(translation, "words", links=True), "m", 3)
    assert figure.layout.title.text == "Attention of m (beam 3, best), by word"
    greedy = alignment_heatmap(alignment_matrix(translation, "pieces", links=False), "m", 1)
    assert greedy.layout.title.text == "Attention of m (greedy), by piece"
    assert len(greedy.data) == 1  # no links drawn
