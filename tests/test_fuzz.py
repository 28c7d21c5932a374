"""Property tests: arbitrary text and files never crash attnviz, and results keep their shape.

Whatever goes in, the only exceptions out are the typed ones (:class:`attnviz.InputError`),
and every result keeps the invariants the views rely on: attention rows sum to 1, pieces,
words and attention agree in length, words join back to the normalised text. Sizes are kept
small so that the whole file runs in seconds; every test also runs under an alarm, so a hang
fails instead of blocking the suite.
"""

from __future__ import annotations

import io
import re
import signal
import string
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attnviz import InputError, cli
from attnviz.align import (
    MAX_NAACL_SENTENCES,
    GoldAlignment,
    format_naacl,
    format_pharaoh,
    format_talp,
    parse_naacl,
    parse_pharaoh,
    parse_talp,
    read_gold,
    read_lengths,
    read_pharaoh,
    write_naacl,
    write_pharaoh,
    write_talp,
)
from attnviz.tokenize import BOS_ID, EOS_ID, EOS_PIECE, WORD_START, group_words, word_of_piece
from attnviz.tokenize import normalize_text as normalized
from attnviz.translator import Score, Translation

SECONDS_PER_TEST = 60
FAST = settings(max_examples=60, deadline=None)
# tmp_path is function-scoped: every example writes the same file again, which is fine.
FILES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Characters that break naive text handling: controls, combining marks, right-to-left text
# and marks, zero-width characters, emoji (with modifiers and joiners), the byte-order mark,
# SentencePiece's own word mark, odd whitespace, and text that looks like markup or pieces.
HOSTILE = [
    "\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\t", "\x0b", "\x0c", "\x1c",
    "\u0301", "\u0308", "\u20dd",
    "\u05e9", "\u05dc", "\u0627", "\u0644", "\u200e", "\u200f", "\u202e", "\u2066",
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",
    "😀", "👍🏽", "👩\u200d👩\u200d👧", "🇫🇷",
    WORD_START, "\u202f", "\u00a0", "\u2028", "\u3000",
    "</s>", "<unk>", "<0x41>", "<b>", "*", "_", "|||",
]  # fmt: skip
CHARS = st.one_of(
    st.characters(exclude_categories=("Cs",)),  # any code point but lone surrogates
    st.sampled_from(HOSTILE),
    st.sampled_from(string.ascii_lowercase + " "),  # the reversal model's own words
)
TEXT = st.lists(CHARS, max_size=40).map("".join)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail a test that runs past SECONDS_PER_TEST instead of letting it hang."""

    def fail(signum: int, frame: object) -> None:
        raise TimeoutError(f"test ran over {SECONDS_PER_TEST} s: something hangs")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(SECONDS_PER_TEST)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------
# Tokenizer


def check_word_of_piece(pieces: list[str], mapping: list[int]) -> None:
    assert len(mapping) == len(pieces)
    for i, (piece, word) in enumerate(zip(pieces, mapping, strict=True)):
        if i == 0:
            assert word == 0
            continue
        starts = piece.startswith(WORD_START) or EOS_PIECE in (piece, pieces[i - 1])
        assert word == mapping[i - 1] + starts


@FAST
@given(text=TEXT)
@example(text="a\u2581b")  # a typed word mark: SentencePiece splits the word there
@example(text="e\u0301 \u05e9\u05dc \U0001f44d\U0001f3fd \u200b")
def test_tokenizer_round_trip(reversal_translator, text: str) -> None:
    tokenizer = reversal_translator.source_tokenizer
    ids = tokenizer.encode(text)
    assert all(isinstance(i, int) and BOS_ID < i < tokenizer.vocab_size for i in ids)
    pieces = tokenizer.pieces(text)
    assert pieces == [tokenizer.id_to_piece(i) for i in ids]
    assert tokenizer.decode(ids) == normalized(text)
    mapping = word_of_piece(pieces)
    check_word_of_piece(pieces, mapping)
    words = group_words(tokenizer, pieces)
    assert len(words) == (mapping[-1] + 1 if mapping else 0)
    assert " ".join(words) == normalized(text)  # what the heatmap shows is what was typed
    assert len(words) == len(normalized(text).split())


@settings(max_examples=10, deadline=None)
@given(unit=st.lists(CHARS, min_size=1, max_size=8).map("".join), times=st.integers(500, 3000))
def test_tokenizer_very_long_text(reversal_translator, unit: str, times: int) -> None:
    tokenizer = reversal_translator.source_tokenizer
    text = unit * times
    pieces = tokenizer.pieces(text)
    assert " ".join(group_words(tokenizer, pieces)) == normalized(text)


@FAST
@given(pieces=st.lists(st.one_of(TEXT, st.just(EOS_PIECE), st.just(WORD_START + "x")), max_size=30))
def test_word_of_piece_on_any_pieces(reversal_translator, pieces: list[str]) -> None:
    mapping = word_of_piece(pieces)
    check_word_of_piece(pieces, mapping)
    words = group_words(reversal_translator.source_tokenizer, pieces)
    assert len(words) == (mapping[-1] + 1 if mapping else 0)
    assert all(
        words[w] == EOS_PIECE for p, w in zip(pieces, mapping, strict=True) if p == EOS_PIECE
    )


@FAST
@given(ids=st.lists(st.integers(0, 339), max_size=20))
@example(ids=[BOS_ID, EOS_ID])  # a model emitting "<s>": its word decoded to ""
@example(ids=[36, EOS_ID])  # "<0x20>", a space: its word decoded to " "
def test_every_word_of_model_output_is_visible(reversal_translator, ids: list[int]) -> None:
    """Any piece sequence a model can output groups into non-empty words."""
    tokenizer = reversal_translator.source_tokenizer
    pieces = [tokenizer.id_to_piece(i % tokenizer.vocab_size) for i in ids]
    words = group_words(tokenizer, pieces)
    assert len(words) == (word_of_piece(pieces)[-1] + 1 if pieces else 0)
    assert all(word.strip() for word in words)


# ---------------------------------------------------------------------------------------------
# Translator


def check_aligned(result: Translation | Score, translator) -> None:
    """Invariants shared by translations and scores."""
    config = translator.config
    src, tgt = result.source_pieces, result.target_pieces
    assert src[-1] == EOS_PIECE and len(src) <= config.max_src_len
    assert result.attention.shape == (len(tgt), len(src))
    assert np.isfinite(result.attention).all() and (result.attention >= 0).all()
    np.testing.assert_allclose(result.attention.sum(axis=1), 1.0, atol=1e-4)
    for pieces, mapping, words in (
        (src, result.source_word_of_piece, result.source_words),
        (tgt, result.target_word_of_piece, result.target_words),
    ):
        check_word_of_piece(pieces, mapping)
        assert len(words) == mapping[-1] + 1
    assert [s.piece for s in result.steps] == tgt
    for step, row in zip(result.steps, result.attention, strict=True):
        np.testing.assert_allclose(step.attention, row, atol=1e-6)
        probs = [c.prob for c in step.candidates]
        assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
        assert 0 <= step.prob <= 1 and step.logprob <= 1e-5
    if not result.truncated:
        assert " ".join(result.source_words[:-1]) == normalized(result.source)


PREFIX = st.one_of(
    st.none(),
    TEXT,
    st.lists(st.one_of(st.sampled_from(["▁a", "▁b", "c", "<unk>", "<pad>", EOS_PIECE]), TEXT)),
)


@FAST
@given(
    text=TEXT,
    beam=st.integers(1, 4),
    n_best=st.integers(1, 5),
    top_k=st.integers(1, 400),
    max_len=st.one_of(st.none(), st.integers(-2, 30)),
    alpha=st.floats(-1, 2),
    prefix=PREFIX,
)
# Greedy search with a negative max_len failed with an IndexError.
@example(text="a b", beam=1, n_best=1, top_k=5, max_len=-1, alpha=1.0, prefix=None)
@example(text="a b", beam=2, n_best=1, top_k=5, max_len=0, alpha=1.0, prefix=None)
# A blank prefix raised "the target text is empty".
@example(text="a b", beam=2, n_best=2, top_k=5, max_len=None, alpha=1.0, prefix=" \u2581 ")
def test_translate_never_crashes(
    reversal_translator, text, beam, n_best, top_k, max_len, alpha, prefix
) -> None:
    translator = reversal_translator
    try:
        t = translator.translate(
            text, beam_size=beam, n_best=n_best, top_k=top_k, max_len=max_len, alpha=alpha,
            prefix=prefix,
        )  # fmt: skip
    except InputError:
        assert not normalized(text) or (max_len is not None and max_len < 1)
        return
    assert normalized(text) and (max_len is None or max_len >= 1)
    check_aligned(t, translator)
    assert 1 <= len(t.hypotheses) <= n_best
    assert t.hypotheses[0].text == t.text and t.hypotheses[0].pieces == t.target_pieces
    assert [h.rank for h in t.hypotheses] == list(range(len(t.hypotheses)))
    for h in t.hypotheses:
        assert h.attention.shape == (len(h.pieces), len(t.source_pieces))
        np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, atol=1e-4)
        assert h.finished == (h.pieces[-1] == EOS_PIECE)
        assert h.token_logprobs.shape == (len(h.pieces),)
        assert all(len(s.candidates) == min(top_k, translator.config.vocab_size) for s in h.steps)
    if isinstance(prefix, str):
        prefix = normalized(prefix)  # a blank prefix forces nothing
    forced = translator.target_ids(prefix, add_eos=False) if prefix else []
    limit = max(max_len or translator.config.max_tgt_len, len(forced) + 1)
    assert len(t.target_pieces) <= limit
    assert [
        translator.target_tokenizer.piece_to_id(p) for p in t.target_pieces[: len(forced)]
    ] == forced
    for i, node in enumerate(t.beam_tree):
        assert node.id == i and -1 <= node.parent < i
        assert node.status in ("kept", "pruned", "finished", "stopped")


@FAST
@given(source=TEXT, target=st.one_of(TEXT, PREFIX.filter(lambda p: p is not None)))
def test_score_never_crashes(reversal_translator, source, target) -> None:
    translator = reversal_translator
    try:
        s = translator.score(source, target)
    except InputError:
        assert not normalized(source) or (isinstance(target, str) and not normalized(target))
        return
    check_aligned(s, translator)
    assert s.target_pieces[-1] == EOS_PIECE
    assert len(s.target_pieces) <= translator.config.max_tgt_len
    assert s.token_logprobs.shape == (len(s.target_pieces),)
    assert (s.token_logprobs <= 1e-5).all()
    assert s.logprob == pytest.approx(float(s.token_logprobs.sum()), abs=1e-3)
    if isinstance(target, str):
        expected = translator.target_tokenizer.pieces(target)[: translator.config.max_tgt_len - 1]
        assert s.target_pieces[:-1] == expected


SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@FAST
@given(before=TEXT, surrogate=SURROGATE, after=TEXT)
@example(before="caf", surrogate="\udce9", after="")  # Latin-1 "café" read as UTF-8
def test_lone_surrogates_are_input_errors(reversal_translator, before, surrogate, after) -> None:
    """Bytes that were not UTF-8 (decoded with surrogateescape) never reach SentencePiece."""
    text = before + surrogate + after
    with pytest.raises(InputError, match="not valid UTF-8"):
        reversal_translator.translate(text, beam_size=2)
    with pytest.raises(InputError, match="not valid UTF-8"):
        reversal_translator.score("a b", text)


# Lines of any bytes but line ends: invalid UTF-8, NUL, control characters, byte-order marks.
LINE_BYTES = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00", b"\x1b[0m", b"\xef\xbb\xbf"]),
    st.sampled_from([b"a", b"b", b" "]),
)
INPUT_LINES = st.lists(
    st.lists(LINE_BYTES, max_size=6).map(lambda parts: b"".join(parts).translate(None, b"\r\n")),
    min_size=1,
    max_size=5,
)


@FILES
@given(lines=INPUT_LINES)
def test_cli_keeps_one_output_line_per_input_line(
    reversal_checkpoint, tmp_path: Path, monkeypatch, capsys, lines: list[bytes]
) -> None:
    """`attnviz translate` on any bytes, from stdin and from a file: one output line per input
    line, a line-level message for each line it cannot translate, never a traceback."""
    data = b"\n".join(lines) + b"\n"
    (tmp_path / "in.txt").write_bytes(data)
    argv = ["translate", "-m", str(reversal_checkpoint), "--beam", "2", "--max-len", "8"]
    outputs = []
    for extra, stdin in (([], data), (["-i", str(tmp_path / "in.txt")], b"")):
        stdin_stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="strict")
        monkeypatch.setattr(sys, "stdin", stdin_stream)
        code = cli.main([*argv, *extra])
        out, err = capsys.readouterr()
        records = out.split("\n")
        assert len(records) == len(lines) + 1 and records[-1] == ""
        failed = [int(m) for m in re.findall(r"^attnviz: line (\d+): ", err, re.M)]
        assert len(failed) == err.count("\n")  # every message is about one line
        assert code == (1 if failed else 0)
        assert all(records[n - 1] == "" for n in failed)
        outputs.append((code, out, err))
    # A byte-order mark counts only at the start of a file (and of stdin).
    assert outputs[0] == outputs[1]


# ---------------------------------------------------------------------------------------------
# Alignment files


LINK = st.tuples(st.integers(0, 60), st.integers(0, 60))
LINKS = st.frozensets(LINK, max_size=12)
GOLD = st.builds(GoldAlignment.of, LINKS, LINKS)
# Lines that look almost like link files: digits, separators, signs, odd spaces, and anything.
LINKISH = st.lists(
    st.one_of(st.sampled_from(list("0123456789-p PS\t_+") + ["١", "𝟙", "\u00a0"]), CHARS),
    max_size=30,
).map("".join)


@FAST
@given(sentences=st.lists(LINKS, max_size=8))
def test_pharaoh_round_trip(sentences: list[frozenset]) -> None:
    lines = [format_pharaoh(links) for links in sentences]
    assert parse_pharaoh(lines, "x") == [set(s) for s in sentences]


@FAST
@given(gold=st.lists(GOLD, max_size=8))
def test_talp_and_naacl_round_trip(gold: list[GoldAlignment]) -> None:
    assert parse_talp([format_talp(g) for g in gold], "x") == gold
    for one_based in (True, False):
        lines = format_naacl(gold, one_based)
        assert parse_naacl(lines, "x", len(gold), one_based=one_based) == gold


@FAST
@given(
    lines=st.lists(LINKISH, max_size=8),
    lengths=st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)))),
)
@example(lines=["1_0-2"], lengths=None)  # int() reads "1_0" as 10
@example(lines=["١-1"], lengths=None)  # and "١" (Arabic-Indic one) as 1
@example(lines=["0-" + "9" * 5000], lengths=None)  # int() refuses over 4300 digits
@example(lines=[""], lengths=[])  # a trailing blank line after zero sentences
def test_link_parsers_raise_only_input_error(lines: list[str], lengths) -> None:
    for parse in (parse_pharaoh, parse_talp):
        try:
            result = parse(lines, "gold.txt", lengths)
        except InputError as exc:
            assert "gold.txt" in str(exc)
            continue
        # Blank lines past the text's last sentence are a file's trailing newlines, not sentences.
        assert len(result) == (len(lines) if lengths is None else len(lengths))
        text = " ".join(lines).replace("p", " ").replace("-", " ")
        assert all(c.isspace() or c in "0123456789" for c in text)  # only ASCII numbers read
        for links in result:
            pairs = links if parse is parse_pharaoh else links.possible
            if lengths is not None:
                assert all(s < 10 and t < 10 for s, t in pairs)


@FAST
@given(
    lines=st.lists(LINKISH, max_size=8),
    sentences=st.one_of(st.none(), st.integers(0, 10)),
    one_based=st.booleans(),
)
@example(lines=["999999999999 1 1"], sentences=None, one_based=True)  # would allocate 10^12
def test_naacl_parser_raises_only_input_error(lines, sentences, one_based) -> None:
    try:
        gold = parse_naacl(lines, "gold.wa", sentences, one_based=one_based)
    except InputError as exc:
        assert "gold.wa, line" in str(exc)
        return
    if sentences is not None:
        assert len(gold) == sentences
    assert len(gold) <= MAX_NAACL_SENTENCES
    assert all(g.sure <= g.possible for g in gold)


@FILES
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["pharaoh", "talp", "naacl"]))
@example(data=b"\xff\xfe0-1\n", fmt="pharaoh")
@example(data=b"\xef\xbb\xbf0-1 1-0\n", fmt="pharaoh")  # byte-order mark
def test_file_readers_raise_only_input_error(tmp_path: Path, data: bytes, fmt: str) -> None:
    path = tmp_path / "gold.txt"
    path.write_bytes(data)
    for read in (
        lambda: read_gold(path, fmt),
        lambda: read_pharaoh(path),
        lambda: read_lengths(path),
    ):
        try:
            read()
        except InputError as exc:
            assert str(path) in str(exc)


def test_file_readers_on_missing_file_and_folder(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.txt", tmp_path):
        for read in (read_pharaoh, read_lengths, lambda p: read_gold(p, "naacl")):
            with pytest.raises(InputError, match="cannot read"):
                read(path)


SENTENCE = st.lists(CHARS.filter(lambda c: c not in "\r\n"), max_size=20).map("".join)


@FILES
@given(pairs=st.lists(st.tuples(SENTENCE, SENTENCE), max_size=6))
@example(pairs=[("a\x0cb", "c\u2028d"), ("e\x1cf", "g\x85h")])  # not line ends in a text file
def test_lengths_count_lines_as_the_cli_reads_them(tmp_path: Path, pairs) -> None:
    pairs = [(s.replace("|||", ""), t.replace("|||", "")) for s, t in pairs]
    path = tmp_path / "text.txt"
    # A leading byte-order mark is dropped by the reader, not taken as part of the first word.
    path.write_text("\ufeff" + "".join(f"{s} ||| {t}\n" for s, t in pairs), encoding="utf-8")
    with open(path, encoding="utf-8-sig") as f:  # how `attnviz align` reads its input
        assert len(list(f)) == len(pairs)
    assert read_lengths(path) == [(len(s.split()), len(t.split())) for s, t in pairs]


@FILES
@given(sentences=st.lists(LINKS, max_size=6), gold=st.lists(GOLD, max_size=6))
def test_writers_and_readers_round_trip(tmp_path: Path, sentences, gold) -> None:
    write_pharaoh(tmp_path / "a.txt", sentences)
    assert read_pharaoh(tmp_path / "a.txt") == [set(s) for s in sentences]
    write_talp(tmp_path / "b.txt", gold)
    assert read_gold(tmp_path / "b.txt", "talp") == gold
    write_naacl(tmp_path / "c.wa", gold)
    assert read_gold(tmp_path / "c.wa", "naacl", len(gold)) == gold
