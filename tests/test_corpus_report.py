"""Running files through a translator: reading uploads, the per-sentence table, scores, gold."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.align import GoldAlignment, aer_per_sentence
from attnviz.analysis import attention_entropy
from attnviz.corpus_report import (
    Corpus,
    corpus_scores,
    read_corpus,
    read_gold_upload,
    report_corpus,
    report_table,
    sentence_report,
)
from attnviz.errors import InputError
from attnviz.evaluate import evaluate_test_sets
from attnviz.export import as_json
from attnviz.synthetic import reversal_pairs

SOURCES = b"a b c\nd e f g\nh i\n"
REFERENCES = b"c b a\ng f e d\ni h\n"


def parallel(sources: bytes = SOURCES, references: bytes = REFERENCES, limit: int = 500):
    return read_corpus(sources, "src.txt", references, "ref.txt", limit)


# -- reading uploads ------------------------------------------------------------------------


def test_sentence_file_skips_blank_lines_and_keeps_their_numbers():
    corpus = read_corpus("\ufeffone\n\n  \ntwo\r\nthree\n\n".encode(), "s.txt")
    assert corpus.sources == ["one", "two", "three"] and corpus.lines == [1, 4, 5]
    assert corpus.references is None and not corpus.cut


def test_lines_end_only_at_newlines_like_every_file_attnviz_reads():
    corpus = read_corpus("a\u2028b\r\nc\x0cd\re\n".encode(), "s.txt")
    assert corpus.sources == ["a\u2028b", "c\x0cd\re"]


def test_parallel_set_with_different_line_counts_names_both():
    with pytest.raises(InputError, match="src.txt has 3 lines but ref.txt has 2"):
        parallel(references=b"c b a\ng f e d\n")


def test_parallel_set_refuses_an_empty_source_line_by_number():
    with pytest.raises(InputError, match=r"src.txt, line 2 is empty"):
        parallel(b"a\n\nb\n", b"x\ny\nz\n")


def test_long_files_are_cut_at_the_limit():
    corpus = parallel(b"a\nb\nc\nd\n", b"w\nx\ny\nz\n", limit=2)
    assert corpus.sources == ["a", "b"] and corpus.references == ["w", "x"]
    assert corpus.lines == [1, 2] and corpus.lines_in_file == 4 and corpus.cut


@pytest.mark.parametrize("data", [b"\xff\xfe a", b"\n\n"])
def test_unreadable_or_empty_files_give_input_errors(data):
    with pytest.raises(InputError, match="s.txt"):
        read_corpus(data, "s.txt")


# -- the table and the scores ---------------------------------------------------------------


def test_reports_of_a_parallel_set(reversal_translator):
    reports = report_corpus(reversal_translator, parallel(), beam_size=1)
    assert [r.translation for r in reports] == ["c b a", "g f e d", "i h"]
    first = reports[0]
    assert first.chrf == 100.0 and first.bleu == 100.0 and first.length_ratio == 1.0
    assert first.coverage.shape == (3,) and not first.dropped and not first.repeated
    table = report_table(reports, aer=[0.0, 0.25, 0.5])
    assert len(table) == 3 and list(table["AER"]) == [0.0, 0.25, 0.5]
    assert {"reference", "chrF", "BLEU", "mean entropy", "dropped words"} <= set(table.columns)
    scores = corpus_scores(reports, beam_size=1)
    assert scores.quality.bleu == 100.0 and scores.sentences == 3
    assert '"bleu_signature"' in as_json(scores)


def test_dropped_and_repeated_words_come_from_coverage(reversal_translator):
    translation = reversal_translator.translate("a b c", beam_size=1)
    translation.attention = np.zeros_like(translation.attention)
    translation.attention[:, 0] = 1.0  # every step looks at "a" only
    report = sentence_report(7, translation, None)
    assert report.line == 7 and report.dropped == ["b", "c"] and report.repeated == ["a"]
    assert report.chrf is None and report.reference_ratio is None
    table = report_table([report])
    assert "reference" not in table and table["dropped words"][0] == "b c"
    assert table["repeated"][0] == 1 and table["min coverage"][0] == 0.0


# -- gold alignments ------------------------------------------------------------------------


def test_gold_formats_read_the_same_links():
    corpus = parallel()
    pharaoh = read_gold_upload(b"0-2 1-1 2-0\n\n0-1\n", "g", "pharaoh", corpus)
    talp = read_gold_upload(b"1-3 2-2 3-1\n\n1-2\n", "g", "talp", corpus)
    naacl = read_gold_upload(b"1 1 3 S\n1 2 2\n1 3 1 S\n3 1 2 S\n", "g", "naacl", corpus)
    assert pharaoh == talp == naacl
    assert pharaoh[0] == GoldAlignment.of({(0, 2), (1, 1), (2, 0)}) and pharaoh[1].sure == set()


def test_gold_listing_the_reference_first_is_transposed():
    corpus = Corpus(["a b c"], ["x y"], [1], 1)
    gold = read_gold_upload(b"1 0 2 S\n", "g", "naacl", corpus, True, one_based=False)
    assert gold[0].sure == {(2, 0)}  # source word 2 ("c"), reference word 0 ("x")
    with pytest.raises(InputError, match="points past the end"):
        read_gold_upload(b"1 0 2 S\n", "g", "naacl", corpus, False, one_based=False)


def test_gold_out_of_range_names_the_line():
    with pytest.raises(InputError, match=r"gold.txt, line 2: link 9-0 \(0-based\) points past"):
        read_gold_upload(b"0-2\n9-0\n0-1\n", "gold.txt", "pharaoh", parallel())


def test_gold_needs_the_whole_parallel_set():
    with pytest.raises(InputError, match="parallel set"):
        read_gold_upload(b"0-0\n", "g", "pharaoh", Corpus(["a"], None, [1], 1))
    with pytest.raises(InputError, match="only the first 2 of its 3 lines"):
        read_gold_upload(b"0-0\n0-0\n", "g", "pharaoh", parallel(limit=2))


def test_aer_per_sentence_scores_each_sentence_alone():
    gold = [GoldAlignment.of({(0, 0)}), GoldAlignment.of({(0, 1)})]
    assert aer_per_sentence([{(0, 0)}, {(1, 1)}], gold) == [0.0, 1.0]


def test_shared_gold_files_read_with_the_right_options(shared_data):
    folder = shared_data / "gold"
    hansards = folder / "enfr-hansards-trial"
    corpus = read_corpus(
        (hansards / "trial.en").read_bytes(), "trial.en", (hansards / "trial.fr").read_bytes(), "fr"
    )
    gold = read_gold_upload((hansards / "trial.wa").read_bytes(), "trial.wa", "naacl", corpus)
    assert len(gold) == 37 and sum(len(g.sure) for g in gold) == 338
    europarl = folder / "deen-europarl-100"
    corpus = read_corpus(
        (europarl / "test.en").read_bytes(), "test.en", (europarl / "test.de").read_bytes(), "de"
    )
    wa = (europarl / "de-en.ref.wa").read_bytes()
    with pytest.raises(InputError, match=r"de-en.ref.wa, line \d+: link .* points past the end"):
        read_gold_upload(wa, "de-en.ref.wa", "naacl", corpus, True, one_based=False)


def test_gold_errors_count_words_on_their_own_side():
    """The message names each count by its side, also when the file lists the reference first."""
    corpus = Corpus(["a b c"], ["x y"], [1], 1)
    with pytest.raises(InputError, match="which has 3 source and 2 reference words"):
        read_gold_upload(b"0-5\n", "g", "pharaoh", corpus)
    with pytest.raises(InputError, match="which has 2 reference and 3 source words"):
        read_gold_upload(b"0-5\n", "g", "pharaoh", corpus, target_first=True)


def test_gold_links_past_their_sentence_can_be_skipped():
    corpus = Corpus(["a b c"], ["x y"], [1], 1)
    skipped: list = []
    gold = read_gold_upload(b"0-0 0-5\n\n", "g", "pharaoh", corpus, skipped=skipped)
    assert gold == [GoldAlignment.of({(0, 0)})]
    assert [str(s) for s in skipped] == [
        "g, line 1: link 0-5 (0-based) points past the end of sentence 1, which has 3 source "
        "and 2 reference words"
    ]


def test_mean_attention_entropy_is_the_cards(reversal_translator):
    """The run's mean entropy is the card's (every step of every sentence counts once), not a
    mean of per-sentence means."""
    pairs = reversal_pairs(6, seed=3, min_len=2, max_len=9)
    corpus = read_corpus("\n".join(p.source for p in pairs).encode(), "s.txt")
    reports = report_corpus(reversal_translator, corpus, beam_size=1)
    card = evaluate_test_sets(reversal_translator, {"set": pairs}, beams=(1,))
    mean_of_means = np.mean([attention_entropy(r.attention).mean() for r in reports])
    assert corpus_scores(reports, 1).mean_entropy == card["set"]["greedy"]["attention_entropy"]
    assert corpus_scores(reports, 1).mean_entropy != round(float(mean_of_means), 4)
