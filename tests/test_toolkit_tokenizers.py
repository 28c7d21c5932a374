"""Tokenizers of Joey NMT and OpenNMT-py models: every kind round-trips, BPE is subword-nmt's,
the Moses steps are sacremoses', words group the way the toolkits join them, and the output
text follows each toolkit's rules."""

from __future__ import annotations

import gzip
import io
import sys
from collections import Counter
from pathlib import Path

import pytest
import sentencepiece as spm
from sacremoses import MosesDetokenizer, MosesTokenizer
from subword_nmt.apply_bpe import BPE
from subword_nmt.learn_bpe import learn_bpe

from attnviz.errors import CheckpointError, InputError
from attnviz.tokenize import (
    EOS_PIECE,
    BPESegmenter,
    SentencePieceSegmenter,
    ToolkitTokenizer,
    Vocabulary,
    WordSegmenter,
    group_words,
)

SENTENCES = [
    "The red car is fast.",
    "It is cold today, isn't it?",
    "Where do you live?",
    "The dog is running in the snow.",
    "I don't know what he wants.",
    "A man in a blue shirt is standing on a ladder cleaning windows.",
    "Two young children are playing with a ball near the river.",
    'She said: "we will meet at 10 o\'clock" and left.',
    "The children's books are on the third shelf.",
    "People are walking down a busy street in the city.",
    "A woman is reading a newspaper while drinking coffee.",
    "My brother bought 3 apples & 2 oranges for $5.",
]
JOEY_SPECIALS = ["<unk>", "<pad>", "<s>", "</s>"]
ONMT_SPECIALS = ["<unk>", "<blank>", "<s>", "</s>"]


def learn_codes(lines: list[str], symbols: int) -> bytes:
    out = io.StringIO()
    learn_bpe(io.StringIO("\n".join(lines) + "\n"), out, symbols, min_frequency=2)
    return out.getvalue().encode("utf-8")


def ranked_pieces(lines: list[list[str]]) -> list[str]:
    """The pieces of ``lines`` by frequency, then alphabetically (as Joey NMT ranks them)."""
    counts = Counter(piece for line in lines for piece in line)
    return sorted(sorted(counts), key=lambda p: -counts[p])


def vocabulary_of(lines: list[list[str]], specials: list[str]) -> Vocabulary:
    """A toolkit vocabulary: the specials, then the pieces of ``lines``."""
    return Vocabulary(specials + [p for p in ranked_pieces(lines) if p not in specials])


@pytest.fixture(scope="module")
def codes() -> bytes:
    return learn_codes(SENTENCES * 3, 60)


@pytest.fixture(scope="module")
def reference_bpe(codes: bytes) -> BPE:
    return BPE(io.StringIO(codes.decode("utf-8")))


def bpe_tokenizer(codes: bytes, toolkit: str, vocabulary: Vocabulary, **kw) -> ToolkitTokenizer:
    restrict = set(vocabulary.pieces) - set(JOEY_SPECIALS) if toolkit == "joeynmt" else None
    return ToolkitTokenizer(BPESegmenter(codes, vocab=restrict), vocabulary, toolkit, **kw)


# -- BPE ------------------------------------------------------------------------------------


def test_bpe_pieces_are_subword_nmts(codes: bytes, reference_bpe: BPE) -> None:
    lines = [reference_bpe.process_line(s).split() for s in SENTENCES]
    tokenizer = bpe_tokenizer(codes, "opennmt-py", vocabulary_of(lines, ONMT_SPECIALS))
    unseen = "The windows of the busy children are snowing."
    for text in [*SENTENCES, unseen]:
        assert tokenizer.pieces(text) == reference_bpe.process_line(text).split()
    assert any(p.endswith("@@") for p in tokenizer.pieces(unseen))


def test_bpe_round_trips_and_unknown_units_become_unk(codes: bytes, reference_bpe: BPE) -> None:
    lines = [reference_bpe.process_line(s).split() for s in SENTENCES]
    for toolkit, specials in (("joeynmt", JOEY_SPECIALS), ("opennmt-py", ONMT_SPECIALS)):
        tokenizer = bpe_tokenizer(codes, toolkit, vocabulary_of(lines, specials))
        for text in SENTENCES:
            ids = tokenizer.encode(text)
            assert tokenizer.special_ids[1] not in ids
            assert tokenizer.decode(ids + [tokenizer.special_ids[3]]) == text
        ids = tokenizer.encode("ñüñ")
        assert len(ids) == 3 and set(ids) == {0}  # characters never seen: each unit is <unk>


def test_joey_bpe_undoes_merges_outside_its_vocabulary(codes: bytes, reference_bpe: BPE) -> None:
    lines = [reference_bpe.process_line(s).split() for s in SENTENCES]
    full = vocabulary_of(lines, JOEY_SPECIALS)
    merged = max((p for p in full.pieces[4:] if len(p.rstrip("@")) > 2), key=len)
    smaller = Vocabulary([p for p in full.pieces if p != merged])
    tokenizer = bpe_tokenizer(codes, "joeynmt", smaller)
    restricted = BPE(io.StringIO(codes.decode("utf-8")), vocab=set(smaller.pieces[4:]))
    text = next(s for s, line in zip(SENTENCES, lines, strict=True) if merged in line)
    assert tokenizer.pieces(text) == restricted.process_line(text).split()
    assert merged not in tokenizer.pieces(text)
    assert 0 not in tokenizer.encode(text)  # split into units it knows, not <unk>


def test_bpe_matches_subword_nmt_on_a_corpus(shared_data: Path) -> None:
    """Codes learnt on 3,000 Multi30k sentences, applied after Moses tokenization and
    lowercasing (Joey NMT's order) to 300 held-out ones."""
    with gzip.open(shared_data / "multi30k" / "train.en.gz", "rt", encoding="utf-8") as f:
        train = [next(f).strip() for _ in range(3000)]
    with gzip.open(shared_data / "multi30k" / "val.en.gz", "rt", encoding="utf-8") as f:
        held_out = [next(f).strip() for _ in range(300)]
    moses = MosesTokenizer(lang="en")
    prepared = [moses.tokenize(s, return_str=True).lower() for s in train]
    codes = learn_codes(prepared, 500)
    reference = BPE(io.StringIO(codes.decode("utf-8")))
    lines = [reference.process_line(s).split() for s in prepared]
    tokenizer = ToolkitTokenizer(
        BPESegmenter(codes),
        vocabulary_of(lines, ONMT_SPECIALS),
        "opennmt-py",
        lowercase=True,
        moses_lang="en",
    )
    for text in held_out:
        expected = reference.process_line(moses.tokenize(text, return_str=True).lower()).split()
        assert tokenizer.pieces(text) == expected


def test_malformed_codes_are_refused_without_exiting() -> None:
    with pytest.raises(CheckpointError, match="line 2 'a b c' is not two units"):
        BPESegmenter(b"#version: 0.2\na b c\n")
    with pytest.raises(CheckpointError, match="not UTF-8"):
        BPESegmenter(b"\xff\xfe")


# -- word level, SentencePiece with a vocabulary ---------------------------------------------


def test_word_level_round_trip_and_unknown_words() -> None:
    words = [s.split(" ") for s in SENTENCES]
    tokenizer = ToolkitTokenizer(WordSegmenter(), vocabulary_of(words, JOEY_SPECIALS), "joeynmt")
    for text in SENTENCES:
        assert tokenizer.pieces(text) == text.split(" ")
        assert tokenizer.decode(tokenizer.encode(text)) == text
    ids = tokenizer.encode("The purple car is fast.")
    assert tokenizer.id_to_piece(ids[1]) == "<unk>"
    assert tokenizer.decode(ids) == "The <unk> car is fast."  # Joey keeps <unk> in its output
    assert tokenizer.encode("  The   red\tcar ") == tokenizer.encode("The red car")


@pytest.fixture(scope="module")
def toolkit_spm() -> bytes:
    """A SentencePiece model as the toolkits train it (its own ids: unk 0, bos 1, eos 2)."""
    proto = io.BytesIO()
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter(SENTENCES * 5),
        model_writer=proto,
        vocab_size=120,
        model_type="bpe",
        minloglevel=2,
    )
    return proto.getvalue()


def test_sentencepiece_ids_come_from_the_vocabulary(toolkit_spm: bytes) -> None:
    processor = spm.SentencePieceProcessor()
    processor.LoadFromSerializedProto(toolkit_spm)
    lines = [processor.encode(s, out_type=str) for s in SENTENCES]
    vocabulary = vocabulary_of(lines, JOEY_SPECIALS)
    tokenizer = ToolkitTokenizer(SentencePieceSegmenter(toolkit_spm), vocabulary, "joeynmt")
    for text, pieces in zip(SENTENCES, lines, strict=True):
        ids = tokenizer.encode(text)
        assert [vocabulary.pieces[i] for i in ids] == pieces
        assert ids != processor.encode(text)  # the vocabulary's ids, not the model's own
        assert tokenizer.decode(ids) == text
    assert tokenizer.special_ids == (1, 0, 2, 3)
    missing = Vocabulary([p for p in vocabulary.pieces if p != lines[0][1]])
    tokenizer = ToolkitTokenizer(SentencePieceSegmenter(toolkit_spm), missing, "opennmt-py")
    assert tokenizer.encode(SENTENCES[0])[1] == 0  # a piece outside the vocabulary is <unk>


# -- pre- and post-processing -----------------------------------------------------------------


def test_moses_and_lowercase_as_joey_applies_them() -> None:
    moses, detok = MosesTokenizer(lang="en"), MosesDetokenizer(lang="en")
    lines = [moses.tokenize(s, return_str=True).lower().split(" ") for s in SENTENCES]
    tokenizer = ToolkitTokenizer(
        WordSegmenter(),
        vocabulary_of(lines, JOEY_SPECIALS),
        "joeynmt",
        lowercase=True,
        moses_lang="en",
    )
    for text, expected in zip(SENTENCES, lines, strict=True):
        assert tokenizer.pieces(text) == expected
        assert tokenizer.decode(tokenizer.encode(text)) == detok.detokenize(expected)
    pieces = tokenizer.pieces("I don't know what he wants.")
    assert "&apos;t" in pieces  # sacremoses' default escaping, as the model was trained
    assert tokenizer.decode(tokenizer.encode("I don't know what he wants.")) == (
        "i don't know what he wants."
    )
    assert group_words(tokenizer, pieces)[2] == "'t"


def test_joey_normalize_option() -> None:
    vocabulary = vocabulary_of([["it", "&apos;s", '"', "fine", '"', "?", "ok"]], JOEY_SPECIALS)
    tokenizer = ToolkitTokenizer(
        WordSegmenter(), vocabulary, "joeynmt", moses_lang="en", normalize=True
    )
    text = "It\u2019s  \u201cﬁne\u201d ?"  # curly quotes, a ligature, a space before "?"
    assert tokenizer.pieces(text) == ["It", "&apos;s", "&quot;", "fine", "&quot;", "?"]
    words = ToolkitTokenizer(WordSegmenter(), vocabulary, "joeynmt", normalize=True)
    assert words.pieces("fine ? ok .") == ["fine?", "ok."]
    assert words.decode([vocabulary.lookup(p) for p in ["fine", "?", "ok", "</s>"]]) == "fine? ok"


def test_output_rules_of_each_toolkit() -> None:
    words = [s.split(" ") for s in SENTENCES]
    joey = ToolkitTokenizer(WordSegmenter(), vocabulary_of(words, JOEY_SPECIALS), "joeynmt")
    onmt = ToolkitTokenizer(WordSegmenter(), vocabulary_of(words, ONMT_SPECIALS), "opennmt-py")
    for tokenizer in (joey, onmt):
        pad, unk, bos, eos = tokenizer.special_ids
        red, car = tokenizer.encode("red car")
        ids = [bos, red, pad, unk, car, eos, red]
        if tokenizer is joey:  # specials but <unk> dropped, cut at </s>; empty -> "<unk>"
            assert tokenizer.decode(ids) == "red <unk> car"
            assert tokenizer.decode([eos]) == "<unk>"
            assert tokenizer.decode([bos, pad, eos]) == "<unk>"
        else:  # every piece before </s>, joined with spaces
            assert tokenizer.decode(ids) == "<s> red <blank> <unk> car"
            assert tokenizer.decode([eos]) == ""


# -- words ------------------------------------------------------------------------------------


def test_word_grouping_of_each_kind(toolkit_spm: bytes) -> None:
    vocabulary = Vocabulary(JOEY_SPECIALS + ["th@@", "e", "red", "c@@", "ar"])
    bpe = ToolkitTokenizer(BPESegmenter(b"#version: 0.2\nt h\n"), vocabulary, "joeynmt")
    pieces = ["th@@", "e", "red", "c@@", "ar", EOS_PIECE]
    assert bpe.word_of_piece(pieces) == [0, 0, 1, 2, 2, 3]
    assert group_words(bpe, pieces) == ["the", "red", "car", EOS_PIECE]
    assert bpe.word_of_piece(["c@@", EOS_PIECE, "ar"]) == [0, 1, 2]
    words = ToolkitTokenizer(WordSegmenter(), Vocabulary(JOEY_SPECIALS + ["a"]), "joeynmt")
    assert words.word_of_piece(["a", "b", "c", EOS_PIECE]) == [0, 1, 2, 3]
    sentencepiece = ToolkitTokenizer(
        SentencePieceSegmenter(toolkit_spm), Vocabulary(JOEY_SPECIALS), "joeynmt"
    )
    assert sentencepiece.word_of_piece(["▁The", "▁re", "d", "▁car", EOS_PIECE]) == [0, 1, 1, 2, 3]
    assert group_words(sentencepiece, ["▁The", "▁re", "d"]) == ["The", "red"]


# -- vocabularies and the optional extra ------------------------------------------------------


def test_vocabulary_special_ids_and_refusals() -> None:
    assert Vocabulary(JOEY_SPECIALS + ["a"]).special_ids == (1, 0, 2, 3)
    assert Vocabulary(["<s>", "</s>", "<blank>", "<unk>"]).special_ids == (2, 3, 0, 1)
    assert Vocabulary.from_bytes("\n".join(ONMT_SPECIALS + ["é"]).encode()).lookup("é") == 4
    with pytest.raises(CheckpointError, match="</s> are missing"):
        Vocabulary(["<unk>", "<pad>", "<s>", "a"])
    with pytest.raises(CheckpointError, match="'a' is listed twice"):
        Vocabulary(JOEY_SPECIALS + ["a", "b", "a"])
    with pytest.raises(CheckpointError, match="not UTF-8"):
        Vocabulary.from_bytes(b"\xff")


@pytest.mark.parametrize(
    ("module", "build"),
    [
        ("subword_nmt.apply_bpe", lambda: BPESegmenter(b"a b\n")),
        (
            "sacremoses",
            lambda: ToolkitTokenizer(
                WordSegmenter(), Vocabulary(JOEY_SPECIALS), "joeynmt", moses_lang="en"
            ),
        ),
    ],
)
def test_missing_extra_names_the_install_command(monkeypatch, module, build) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(CheckpointError, match=r"pip install 'attnviz\[toolkits\]'"):
        build()


def test_text_that_is_not_utf8_is_an_input_error() -> None:
    tokenizer = ToolkitTokenizer(WordSegmenter(), Vocabulary(JOEY_SPECIALS), "joeynmt")
    with pytest.raises(InputError, match="not valid UTF-8"):
        tokenizer.encode("caf\udce9")
