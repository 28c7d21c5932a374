"""Corpus reading, de-duplication, splitting, length filtering and batching (attnviz.data)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from attnviz.data import (
    Pair,
    bucket_batches,
    deduplicate,
    encode_pairs,
    filter_length,
    load_corpus,
    padding_fraction,
    read_parallel,
    read_tatoeba,
    source_key,
    split_by_source,
)
from attnviz.errors import InputError
from attnviz.tokenize import train_tokenizer

NNBSP = "\u202f"  # narrow no-break space, as Tatoeba's French uses before ! ? :


def write_gz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "mat", "le", "chat", "est", "sur", "tapis", "un", "a"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(500)]
    return train_tokenizer(texts, vocab_size=320)


# --- readers ---


def test_read_tatoeba_normalises_and_skips_blank_lines(tmp_path):
    path = write_gz(
        tmp_path / "eng-fra.tsv.gz",
        f"Run!\tCours{NNBSP}!\n"
        "\n"
        "Caf\u0065\u0301  time.\tL'heure du caf\u0065\u0301.\tCC-BY 2.0 (France) Attribution\n"
        "  \n"
        "Hi.\tSalut\u00a0!\n",
    )
    assert read_tatoeba(path) == [
        Pair("Run!", "Cours !"),
        Pair("Caf\u00e9 time.", "L'heure du caf\u00e9."),
        Pair("Hi.", "Salut !"),
    ]


def test_read_tatoeba_names_file_and_line_of_a_line_without_tab(tmp_path):
    path = write_gz(tmp_path / "bad.tsv.gz", "Go.\tVa !\n\nNo tab here\n")
    with pytest.raises(InputError, match=r"bad\.tsv\.gz, line 3"):
        read_tatoeba(path)


def test_read_tatoeba_rejects_a_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "plain.tsv.gz"
    path.write_text("Go.\tVa !\n")
    with pytest.raises(InputError, match="gzip"):
        read_tatoeba(path)


def test_read_parallel_reads_gzip_and_plain_files(tmp_path):
    source = write_gz(tmp_path / "train.en.gz", "A dog runs.\nTwo  men\u2009talk.\n")
    target = tmp_path / "train.fr"
    target.write_text(f"Un chien court.\nDeux hommes parlent{NNBSP}!\n", encoding="utf-8")
    assert read_parallel(source, target) == [
        Pair("A dog runs.", "Un chien court."),
        Pair("Two men talk.", "Deux hommes parlent !"),
    ]


def test_read_parallel_rejects_different_line_counts(tmp_path):
    source = write_gz(tmp_path / "val.en.gz", "one\ntwo\nthree\n")
    target = write_gz(tmp_path / "val.de.gz", "eins\nzwei\n")
    with pytest.raises(InputError, match=r"val\.en\.gz has 3 lines but .*val\.de\.gz has 2"):
        read_parallel(source, target)


def test_deduplicate_drops_exact_repeats_in_first_seen_order():
    pairs = [Pair("a", "x"), Pair("b", "y"), Pair("a", "x"), Pair("a", "z"), Pair("b", "y")]
    assert deduplicate(pairs) == [Pair("a", "x"), Pair("b", "y"), Pair("a", "z")]


# --- load_corpus ---


@pytest.fixture
def data_dir(tmp_path):
    write_gz(tmp_path / "tatoeba" / "eng-fra.tsv.gz", "Go.\tVa !\nHi.\tSalut !\n")
    write_gz(tmp_path / "multi30k" / "val.en.gz", "A dog.\n")
    write_gz(tmp_path / "multi30k" / "val.fr.gz", "Un chien.\n")
    return tmp_path


def test_load_corpus_reads_tatoeba_then_multi30k(data_dir):
    spec = {"tatoeba": "eng-fra", "multi30k": ["en", "fr"], "multi30k_split": "val"}
    assert load_corpus(spec, data_dir) == [
        Pair("Go.", "Va !"),
        Pair("Hi.", "Salut !"),
        Pair("A dog.", "Un chien."),
    ]


def test_load_corpus_names_a_missing_file_and_where_corpora_live(data_dir):
    with pytest.raises(InputError, match=r"multi30k/train\.en\.gz.*\.\./shared/data"):
        load_corpus({"multi30k": ["en", "fr"]}, data_dir)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "names no corpus"),
        ({"tatoeba": "eng-fra", "multi30k_splt": "val"}, "unknown keys"),
        ({"tatoeba": "fra-eng"}, "expected one of"),
        ({"multi30k": ["en"]}, r"\[source, target\]"),
        ({"multi30k": ["en", "fr"], "multi30k_split": "test"}, "test_2016_flickr"),
        ({"tatoeba": "eng-fra", "multi30k": ["en", "de"]}, "different language pairs"),
    ],
)
def test_load_corpus_rejects_bad_specs(data_dir, spec, message):
    with pytest.raises(InputError, match=message):
        load_corpus(spec, data_dir)


# --- split ---


def repeated_source_pairs(count: int = 2000, distinct: int = 800) -> list[Pair]:
    """Pairs whose English sentences repeat, with case and spacing variants."""
    rng = random.Random(3)
    pairs = []
    for i in range(count):
        sentence = f"Sentence number {rng.randrange(distinct)}."
        variant = rng.choice([sentence, sentence.upper(), sentence.replace(" ", "  ")])
        pairs.append(Pair(variant, f"Phrase {i}."))
    return pairs


def test_split_keeps_each_english_sentence_on_one_side():
    split = split_by_source(repeated_source_pairs(), dev_fraction=0.1, test_fraction=0.2)
    sides = [{source_key(p.source) for p in side} for side in split]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(split.sizes().values()) == 2000


def test_split_is_deterministic_and_depends_on_seed_key():
    pairs = repeated_source_pairs()
    first = split_by_source(pairs, 0.1, 0.2)
    assert split_by_source(list(pairs), 0.1, 0.2) == first
    assert split_by_source(pairs, 0.1, 0.2, seed_key="other") != first


def test_split_uses_a_hash_that_is_the_same_in_every_process():
    # Pinned: Python's salted hash() would move these between runs.
    pairs = [Pair(f"s{i}", "t") for i in range(8)]
    split = split_by_source(pairs, dev_fraction=0.25, test_fraction=0.25)
    assert [[p.source for p in side] for side in split] == [
        ["s0", "s3", "s5", "s6", "s7"],
        ["s4"],
        ["s1", "s2"],
    ]


def test_split_roughly_respects_fractions():
    sizes = split_by_source(repeated_source_pairs(), dev_fraction=0.1, test_fraction=0.2).sizes()
    assert sizes["dev"] / 2000 == pytest.approx(0.1, abs=0.04)
    assert sizes["test"] / 2000 == pytest.approx(0.2, abs=0.05)


def test_split_rejects_fractions_leaving_nothing_to_train():
    with pytest.raises(ValueError, match="sum below 1"):
        split_by_source([Pair("a", "b")], dev_fraction=0.5, test_fraction=0.5)


# --- length filtering and encoding ---


def test_filter_length_drops_empty_long_and_lopsided_pairs(tokenizer):
    keep = Pair("the cat sat", "le chat est")
    long = " ".join(["the cat"] * 20)
    pairs = [keep, Pair("", "le chat"), Pair("the cat", " "), Pair(long, "le chat")]
    lopsided = Pair("the", "le chat est sur un tapis le chat est sur un tapis")
    assert filter_length(pairs + [lopsided], tokenizer, max_pieces=30) == [keep, lopsided]
    assert filter_length(pairs + [lopsided], tokenizer, max_pieces=30, max_ratio=3.0) == [keep]


def test_encode_pairs_matches_the_tokenizer(tokenizer):
    pairs = [Pair("the cat", "le chat"), Pair("on a mat", "sur un tapis")]
    assert encode_pairs(pairs, tokenizer) == [
        (tokenizer.encode(p.source), tokenizer.encode(p.target)) for p in pairs
    ]


# --- batching ---


def realistic_lengths(count: int = 5000) -> list[tuple[list[int], list[int]]]:
    """Sentence lengths like Tatoeba's in pieces: mostly 4-15, a tail up to ~60."""
    rng = random.Random(1)
    encoded = []
    for _ in range(count):
        target = min(60, max(1, round(rng.lognormvariate(2.2, 0.45))))
        source = max(1, round(target * rng.uniform(0.7, 1.3)))
        encoded.append(([5] * source, [6] * target))
    return encoded


def padded_tokens(encoded, batch) -> int:
    return len(batch) * (max(len(encoded[i][1]) for i in batch) + 1)


def test_bucket_batches_cover_every_pair_once_within_budget():
    encoded = realistic_lengths()
    batches = bucket_batches(encoded, max_tokens=1500, seed=0)
    assert sorted(i for batch in batches for i in batch) == list(range(len(encoded)))
    assert max(padded_tokens(encoded, batch) for batch in batches) <= 1500
    assert padding_fraction(encoded, batches) < 0.1


def test_bucket_batches_are_seeded():
    encoded = realistic_lengths(1000)
    batches = bucket_batches(encoded, max_tokens=600, seed=0)
    assert bucket_batches(encoded, max_tokens=600, seed=0) == batches
    assert bucket_batches(encoded, max_tokens=600, seed=1) != batches


def test_bucket_batches_without_shuffle_grow_in_target_length():
    encoded = realistic_lengths(1000)
    longest = [
        max(len(encoded[i][1]) for i in batch)
        for batch in bucket_batches(encoded, max_tokens=600, seed=0, shuffle=False)
    ]
    assert longest == sorted(longest)


def test_bucket_batches_reject_a_target_over_the_budget():
    with pytest.raises(ValueError, match="max_tokens=10"):
        bucket_batches([([1], [1] * 10)], max_tokens=10, seed=0)


def test_padding_fraction_counts_padded_target_slots():
    encoded = [([1], [1]), ([1], [1, 1, 1]), ([1], [1] * 5)]
    # batch [0, 1]: 2 + 4 real of 2 * 4 slots; batch [2]: 6 of 6
    assert padding_fraction(encoded, [[0, 1], [2]]) == pytest.approx(1 - 12 / 14)
    assert padding_fraction(encoded, []) == 0.0


# --- the real corpora in ../shared/data ---


def test_real_tatoeba_eng_fra(shared_data):
    pairs = read_tatoeba(shared_data / "tatoeba" / "eng-fra.tsv.gz")
    assert len(pairs) > 140_000
    assert not any(NNBSP in p.source or NNBSP in p.target for p in pairs)
    split = split_by_source(deduplicate(pairs), dev_fraction=0.02, test_fraction=0.02)
    train, dev, test = ({source_key(p.source) for p in side} for side in split)
    assert not (train & dev or train & test or dev & test)
    words = [([0] * len(p.source.split()), [0] * len(p.target.split())) for p in split.train]
    assert padding_fraction(words, bucket_batches(words, max_tokens=4096, seed=0)) < 0.05


def test_real_multi30k_train_is_line_aligned(shared_data):
    pairs = load_corpus({"multi30k": ["en", "de"]}, shared_data)
    assert len(pairs) == 29_000
    assert pairs[0].target.startswith("Zwei junge weiße Männer")
