"""Attention as alignment: word aggregation, hard links, gold formats and AER, checked against
values worked out by hand, the reversal model and the gold sets in ../shared."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from attnviz.align import (
    METHODS,
    GoldAlignment,
    agreement_links,
    align,
    alignment_scores,
    argmax_word_links,
    attention_links,
    format_naacl,
    format_pharaoh,
    format_talp,
    grow_diag,
    own_links,
    parse_naacl,
    parse_pharaoh,
    parse_talp,
    read_gold,
    read_lengths,
    read_pharaoh,
    symmetrize,
    text_word_of_piece,
    word_attention,
    write_naacl,
    write_pharaoh,
    write_talp,
)
from attnviz.alignment_matrix import alignment_matrix
from attnviz.errors import InputError
from attnviz.synthetic import reversal_pairs
from attnviz.tokenize import word_of_piece
from attnviz.translator import Score


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


# -- hard links from a hand-made forced decode ------------------------------------------------

# source "a bc" = ▁a ▁b c </s>; target "xy z" = ▁x y ▁z </s>
HAND = Score(
    source="a bc",
    source_pieces=["▁a", "▁b", "c", "</s>"],
    target_pieces=["▁x", "y", "▁z", "</s>"],
    source_words=["a", "bc", "</s>"],
    target_words=["xy", "z", "</s>"],
    source_word_of_piece=[0, 1, 1, 2],
    target_word_of_piece=[0, 0, 1, 2],
    attention=np.array(
        [
            [0.7, 0.1, 0.1, 0.1],  # predicts ▁x: a
            [0.1, 0.5, 0.3, 0.1],  # predicts y: bc (0.8)
            [0.1, 0.15, 0.1, 0.65],  # predicts ▁z: mostly "</s>", then bc (0.25)
            [0.6, 0.1, 0.1, 0.2],  # predicts </s>: a
        ]
    ),
    head_attention=None,
    steps=[],
    truncated=False,
    model="hand",
)


@pytest.mark.parametrize(
    "method, links",
    [
        # xy: mean row a 0.4, bc 0.5 -> bc; z: a 0.1, bc 0.25 -> bc ("</s>" is no word)
        ("argmax", {(1, 0), (1, 1)}),
        # rows after each piece was fed: xy = mean(rows 1, 2) a 0.1, bc 0.525; z = row 3 -> a
        ("shift", {(1, 0), (0, 1)}),
        # at least 0.3: xy has a 0.4 and bc 0.5; z's best is 0.25
        ("threshold", {(0, 0), (1, 0)}),
        # ▁x -> a, y -> bc, ▁z -> bc
        ("pieces", {(0, 0), (1, 0), (1, 1)}),
    ],
)
def test_each_method_on_a_hand_made_decode(method, links):
    assert attention_links(HAND, "a bc", "xy z", method) == links


# HAND as a translation cut at the length limit: no "</s>" row, ▁z is its last real piece.
CUT = dataclasses.replace(
    HAND,
    target_pieces=["▁x", "y", "▁z"],
    target_words=["xy", "z"],
    target_word_of_piece=[0, 0, 1],
    attention=HAND.attention[:-1],
)


def test_results_carry_the_end_of_sentence_rule():
    assert HAND.finished and not CUT.finished
    assert HAND.text_attention.shape == CUT.text_attention.shape == (3, 3)
    assert HAND.source_text_words == ["a", "bc"] and HAND.target_text_words == ["xy", "z"]
    assert CUT.target_text_words == ["xy", "z"]


@pytest.mark.parametrize("result", [HAND, CUT], ids=["finished", "cut"])
def test_own_links_by_piece_and_by_word(result):
    # ▁x -> ▁a, y -> ▁b (0.5), ▁z -> ▁b (0.15; "</s>" is no piece of the text)
    assert own_links(result, unit="pieces") == {(0, 0), (1, 1), (1, 2)}
    assert own_links(result, "argmax", unit="pieces") == {(0, 0), (1, 1), (1, 2)}
    assert own_links(result, "threshold", unit="pieces") == {(0, 0), (1, 1), (2, 1)}
    assert own_links(result) == {(0, 0), (1, 0), (1, 1)}
    with pytest.raises(InputError, match="unit"):
        own_links(result, unit="letters")


def test_a_translation_cut_at_the_length_limit_keeps_its_last_piece_link(reversal_translator):
    translation = reversal_translator.translate("a b c d e f", beam_size=1, max_len=3)
    assert not translation.finished and len(translation.target_pieces) == 3
    targets = {t for _, t in own_links(translation, unit="pieces")}
    assert targets == {0, 1, 2}
    drawn = alignment_matrix(translation, "pieces", links=True).links
    assert {t for _, t in drawn} == {0, 1, 2}  # the Align view's piece mode
    finished = reversal_translator.translate("a b c", beam_size=1)
    assert finished.finished
    drawn = alignment_matrix(finished, "pieces", links=True).links
    assert {t for _, t in drawn} == set(range(len(finished.target_pieces) - 1))


def test_unknown_method_is_an_input_error():
    with pytest.raises(InputError, match="argmax"):
        attention_links(HAND, "a bc", "xy z", "nearest")


def test_pieces_map_to_the_space_split_words_of_the_text():
    pieces = ["▁", "<0xC3>", "<0xA9>", "t", "é", "▁de", "▁les", "</s>"]
    assert text_word_of_piece(pieces, word_of_piece(pieces), "été de les") == [0, 0, 0, 0, 0, 1, 2]
    with pytest.raises(InputError, match="3 words"):
        text_word_of_piece(pieces, word_of_piece(pieces), "été de")


def test_grow_diag_adds_only_neighbours_of_the_intersection():
    forward = {(0, 0), (1, 1), (2, 1)}
    backward = {(0, 0), (1, 1), (1, 2), (3, 3)}
    assert symmetrize(forward, backward, "intersect") == {(0, 0), (1, 1)}
    # (2,1) and (1,2) touch (1,1) and align a new word; (3,3) touches no link.
    assert grow_diag(forward, backward) == {(0, 0), (1, 1), (2, 1), (1, 2)}
    with pytest.raises(InputError):
        symmetrize(forward, backward, "union")


def test_agreement_reads_the_product_of_both_directions():
    forward = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])  # (tgt_words, src_words)
    backward = np.array([[0.8, 0.1], [0.1, 0.9], [0.1, 0.0]])  # reverse model, transposed
    # Alone, the forward model links target word 1 to source word 0; the product (0.06 vs
    # 0.36) moves it to source word 1, where the reverse model puts it. Target word 2's best
    # (source 0) has another best target word (0), and source 0 is aligned: word 2 stays
    # unaligned.
    assert argmax_word_links(forward, range(3)) == {(0, 0), (0, 1), (0, 2)}
    assert agreement_links(forward, backward) == {(0, 0), (1, 1)}
    # A one-way best link joins two words the mutual links leave unaligned: target word 2's
    # best is source word 2, whose own best is target word 1 (0.315 against 0.24), which
    # source word 1 holds; no mutual link aligns either word, so (2, 2) is added.
    forward = np.array([[0.9, 0.1, 0.0], [0.1, 0.45, 0.45], [0.1, 0.1, 0.8]])
    backward = np.array([[0.9, 0.0, 0.0], [0.0, 0.9, 0.7], [0.1, 0.1, 0.3]])
    assert agreement_links(forward, backward) == {(0, 0), (1, 1), (2, 2)}
    assert (2, 1) not in agreement_links(forward, backward)  # source 2's one-way best
    # A side cut at one model's limit: only the words both saw take part.
    assert agreement_links(forward, backward[:2]) == {(0, 0), (1, 1)}


def test_models_taught_null_links_leave_words_resting_on_eos_unaligned():
    # What a row (forward) or column (backward) lacks of 1 rests on "</s>".
    forward = np.array([[0.9, 0.1], [0.1, 0.3]])  # target word 1: 0.6 on "</s>"
    backward = np.array([[0.9, 0.1], [0.1, 0.3]])  # source word 1: 0.6 on "</s>"
    assert agreement_links(forward, backward) == {(0, 0), (1, 1)}
    assert agreement_links(forward, backward, (True, False)) == {(0, 0)}
    assert agreement_links(forward, backward, (False, True)) == {(0, 0)}
    forward[1] = [0.1, 0.5]  # now 0.4 on "</s>": under half, it keeps its link
    assert agreement_links(forward, backward, (True, False)) == {(0, 0), (1, 1)}
    # One model's links: ▁z (target word 1) rests 0.65 on "</s>".
    source, target = "a bc", "xy z"
    for method in ("argmax", "pieces", "threshold"):
        plain = attention_links(HAND, source, target, method)
        null = attention_links(HAND, source, target, method, null=True)
        assert null == {(s, t) for s, t in plain if t != 1}, method
    # shift's row for ▁z is the "</s>" step's: resting on "</s>" there says nothing of ▁z.
    ending = HAND.attention.copy()
    ending[3] = [0.1, 0.1, 0.1, 0.7]
    late = dataclasses.replace(HAND, attention=ending)
    shift = attention_links(late, source, target, "shift")
    assert (1, 1) in shift
    assert attention_links(late, source, target, "shift", null=True) == shift
    assert (1, 1) in attention_links(HAND, source, target, "pieces")


# -- AER ------------------------------------------------------------------------------------


def test_aer_precision_recall_by_hand():
    gold = [GoldAlignment.of(sure={(0, 0), (1, 1)}, possible={(1, 2), (2, 2)})]
    predicted = [{(0, 0), (1, 2), (2, 1)}]
    # |A| = 3, |S| = 2, |A∩S| = 1 (0-0), |A∩P| = 2 (0-0, 1-2)
    scores = alignment_scores(predicted, gold)
    assert scores.aer == pytest.approx(1 - (1 + 2) / (3 + 2))  # 0.4
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(1 / 2)
    assert (scores.predicted, scores.sure) == (3, 2)


def test_aer_counts_links_over_all_sentences():
    gold = [
        GoldAlignment.of(sure={(0, 0), (1, 1)}, possible={(1, 2), (2, 2)}),
        GoldAlignment.of(sure={(0, 0)}),
    ]
    predicted = [{(0, 0), (1, 2), (2, 1)}, set()]
    # |A| = 3, |S| = 3, |A∩S| = 1, |A∩P| = 2
    scores = alignment_scores(predicted, gold)
    assert scores.aer == pytest.approx(0.5)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(1 / 3)


def test_possible_links_count_for_precision_only():
    gold = [GoldAlignment.of(sure={(0, 0)}, possible={(1, 1)})]
    scores = alignment_scores([{(1, 1)}], gold)
    assert (scores.precision, scores.recall) == (1.0, 0.0)
    assert scores.aer == pytest.approx(1 - (0 + 1) / (1 + 1))
    perfect = alignment_scores([{(0, 0)}], gold)
    assert (perfect.aer, perfect.precision, perfect.recall) == (0.0, 1.0, 1.0)


def test_sure_links_are_possible_and_empty_sets_are_defined():
    gold = GoldAlignment.of(sure={(0, 0)}, possible={(1, 1)})
    assert gold.possible == {(0, 0), (1, 1)}
    assert gold.transposed() == GoldAlignment.of(sure={(0, 0)}, possible={(1, 1)})
    assert GoldAlignment.of({(2, 5)}).transposed().sure == {(5, 2)}
    empty = alignment_scores([set()], [GoldAlignment.of(())])
    assert (empty.aer, empty.precision, empty.recall) == (0.0, 1.0, 1.0)
    with pytest.raises(InputError, match="2 predicted sentences but 1 gold"):
        alignment_scores([set(), set()], [GoldAlignment.of(())])


# -- formats --------------------------------------------------------------------------------

GOLD = [
    GoldAlignment.of(sure={(0, 0), (2, 1)}, possible={(1, 1)}),
    GoldAlignment.of(()),
    GoldAlignment.of(sure={(3, 0)}),
]


def test_writers_write_the_documented_text():
    assert format_pharaoh({(2, 1), (0, 0), (1, 1)}) == "0-0 1-1 2-1"
    assert format_talp(GOLD[0]) == "1-1 2p2 3-2"
    assert format_naacl(GOLD) == ["1 1 1 S", "1 2 2 P", "1 3 2 S", "3 4 1 S"]
    assert format_naacl(GOLD[2:], one_based=False) == ["1 3 0 S"]


def test_readers_read_the_documented_text():
    assert parse_pharaoh(["0-0 2-1", "", "3-0"], "p") == [{(0, 0), (2, 1)}, set(), {(3, 0)}]
    assert parse_talp(["1-1 2p2 3-2", "", "4-1"], "t") == GOLD
    lines = ["1 1 1 S", "1 2 2 P", "1 3 2", "3 4 1 S"]  # a missing S|P means S
    assert parse_naacl(lines, "n", sentences=3) == GOLD
    assert parse_naacl(lines, "n") == GOLD  # the largest sentence number
    assert parse_naacl(["2 3 0 S"], "n", one_based=False) == [GoldAlignment.of(()), GOLD[2]]


def test_round_trips(tmp_path):
    write_pharaoh(tmp_path / "a.pharaoh", [g.sure for g in GOLD])
    assert read_pharaoh(tmp_path / "a.pharaoh") == [g.sure for g in GOLD]
    assert read_gold(tmp_path / "a.pharaoh", "pharaoh") == [GoldAlignment.of(g.sure) for g in GOLD]
    write_talp(tmp_path / "a.talp", GOLD)
    assert read_gold(tmp_path / "a.talp", "talp") == GOLD
    for one_based in (True, False):
        write_naacl(tmp_path / "a.wa", GOLD, one_based)
        assert read_gold(tmp_path / "a.wa", "naacl", 3, one_based=one_based) == GOLD


def test_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.wa"
    path.write_bytes("\ufeff1 1 2 S\n".encode())
    assert read_gold(path, "naacl") == [GoldAlignment.of({(0, 1)})]
    text = tmp_path / "bom.txt"
    text.write_bytes("\ufeffa b ||| c\n".encode())
    assert read_lengths(text) == [(2, 1)]


LENGTHS = [(2, 3), (3, 2)]  # (source words, target words) of two sentences


@pytest.mark.parametrize(
    "fmt, text, line, message",
    [
        ("naacl", "1 1 1 S\n1 3 1 S\n", 2, "past the end of sentence 1"),
        ("naacl", "1 1 1 S\n3 1 1 S\n", 2, "sentence number 3 does not match"),
        ("naacl", "0 1 1 S\n", 1, "sentence number 0"),
        ("naacl", "1 1 one S\n", 1, "'one' is not a whole number"),
        ("naacl", "x 1 1 S\n", 1, "'x' is not a whole number"),
        ("naacl", "1 1 1 Q\n", 1, "S|P"),
        ("naacl", "1 0 1 S\n", 1, "below the first word"),
        ("talp", "1-1\n3-1 1p9\n", 2, "past the end"),
        ("talp", "1-1 2x2\n", 1, "'2x2' is not a link"),
        ("talp", "1-b\n", 1, "'b' is not a whole number"),
        ("pharaoh", "0-0 1-2\n0-2\n", 2, "past the end of sentence 2"),
        ("pharaoh", "0-0 1:2\n", 1, "'1:2' is not a link"),
        ("pharaoh", "0-0.5\n", 1, "'0.5' is not a whole number"),
    ],
)
def test_bad_gold_files_name_the_file_and_line(tmp_path, fmt, text, line, message):
    path = tmp_path / f"gold.{fmt}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_gold(path, fmt, lengths=LENGTHS)
    assert f"{path}, line {line}:" in str(error.value)
    assert message in str(error.value)


def test_line_files_must_have_one_line_per_sentence(tmp_path):
    path = tmp_path / "short.pharaoh"
    path.write_text("0-0\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{path} has 1 lines but the text has 2"):
        read_pharaoh(path, LENGTHS)


def test_unreadable_gold_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_gold(tmp_path / "missing.wa", "naacl")
    (tmp_path / "latin1.wa").write_bytes(b"1 1 1 S \xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_gold(tmp_path / "latin1.wa", "naacl")
    with pytest.raises(InputError, match="unknown alignment format"):
        read_gold(tmp_path / "latin1.wa", "giza")


# -- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [m for m in METHODS if m != "shift"])
def test_reversal_model_recovers_the_reversal(reversal_translator, method):
    pairs = reversal_pairs(30, seed=7)
    gold = [GoldAlignment.of(p.alignment) for p in pairs]
    predicted = [
        align(reversal_translator, p.source, p.target, method, reverse=reversal_translator)
        for p in pairs
    ]
    assert alignment_scores(predicted, gold).aer < 0.1


def test_symmetric_methods_need_a_reverse_model(reversal_translator):
    with pytest.raises(InputError, match="reverse"):
        align(reversal_translator, "a b", "b a", "grow-diag")


def test_links_are_sorted_like_fast_align(reversal_translator):
    assert align(reversal_translator, "a b c", "c b a") == [(2, 0), (1, 1), (0, 2)]


def test_any_text_the_tokenizer_handles(reversal_translator, shared_data):
    """Lower-cased, tokenized gold text (unseen words become byte pieces) maps to its words."""
    gold = shared_data / "gold" / "enfr-hansards-trial"
    source = (gold / "trial.en").read_text(encoding="utf-8").splitlines()[1]
    target = (gold / "trial.fr").read_text(encoding="utf-8").splitlines()[1]
    score = reversal_translator.score(source, target)
    assert len(set(word_of_piece(score.source_pieces))) - 1 == len(source.split())
    links = align(reversal_translator, source, target, "pieces")
    assert {t for _, t in links} == set(range(len(target.split())))
    assert all(0 <= s < len(source.split()) for s, _ in links)


def _lengths(first, second) -> list[tuple[int, int]]:
    lines = [p.read_text(encoding="utf-8-sig").splitlines() for p in (first, second)]
    return [(len(a.split()), len(b.split())) for a, b in zip(*lines, strict=True)]


def test_reads_the_hansards_gold(shared_data):
    gold_dir = shared_data / "gold" / "enfr-hansards-trial"
    lengths = _lengths(gold_dir / "trial.en", gold_dir / "trial.fr")
    gold = read_gold(gold_dir / "trial.wa", "naacl", lengths=lengths)
    assert len(gold) == 37
    assert sum(len(g.sure) for g in gold) == 338
    assert sum(len(g.possible) for g in gold) == 338 + 1446


def test_europarl_gold_out_of_range_link_is_reported(shared_data, tmp_path):
    gold_dir = shared_data / "gold" / "deen-europarl-100"
    lengths = _lengths(gold_dir / "test.de", gold_dir / "test.en")  # German first, as in .wa
    wa = gold_dir / "de-en.ref.wa"
    with pytest.raises(InputError, match=f"{wa}, line 776: link 12-16 .* sentence 63"):
        read_gold(wa, "naacl", lengths=lengths, one_based=False)
    lines = wa.read_text(encoding="utf-8").splitlines()
    del lines[775]
    gold = parse_naacl(lines, "fixed", lengths=lengths, one_based=False)
    assert len(gold) == 100
    assert sum(len(g.sure) for g in gold) == 1232
    # "1 4 3 S": German word 4, English word 3; an en->de model wants English first.
    assert (3, 4) in gold[0].transposed().sure


def test_a_translation_cut_at_the_length_limit_keeps_its_last_word(reversal_translator):
    cut = reversal_translator.translate("a b c d e f", beam_size=1, max_len=3)
    assert cut.target_pieces[-1] != "</s>"
    target = " ".join(cut.target_words)
    links = attention_links(cut, "a b c d e f", target, "pieces")
    assert {t for _, t in links} == set(range(len(cut.target_words)))
    with pytest.raises(InputError, match="shift"):
        attention_links(cut, "a b c d e f", target, "shift")
    assert own_links(cut) == links  # the app's overlay: the result's own words


def test_text_words_of_a_tokenizer_that_splits_punctuation_off():
    """Moses-style words ("shirt," -> "shirt" ",", escapes, lower case) map back, in order,
    to the whitespace word they were cut from; words that do not spell the text are refused."""
    pieces = ["a", "blue", "shirt", ",", "smi@@", "ling", "&amp;", "co", ".", "</s>"]
    word_of_piece = [0, 1, 2, 3, 4, 4, 5, 6, 7, 8]
    words = ["a", "blue", "shirt", ",", "smiling", "&amp;", "co", ".", "</s>"]
    text = "A blue shirt, smiling &co."
    assert text_word_of_piece(pieces, word_of_piece, text, words) == [0, 1, 2, 2, 3, 3, 4, 4, 4]
    with pytest.raises(InputError, match="make 8 words but the text has 5"):
        text_word_of_piece(pieces, word_of_piece, "A blue shirt, smiling co.", words)
    with pytest.raises(InputError, match="make 8 words"):
        text_word_of_piece(pieces, word_of_piece, text)  # without the words: no way to tell
