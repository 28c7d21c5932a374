"""Attention as alignment: word-level aggregation, hard links, gold-file formats and AER.

A link is a pair ``(source word, target word)`` of 0-based indices into the text split on
whitespace, source first, as in fast_align's Pharaoh output. Three file formats are read and
written:

- Pharaoh: one line per sentence, ``0-1 2-3``, 0-based, source first (all links sure);
- TALP: one line per sentence, ``i-j`` sure and ``ipj`` possible, 1-based, source first;
- NAACL ``.wa`` (HLT-NAACL 2003): one link per line, ``sentence source target [S|P]``, all
  1-based (the de-en Europarl set uses 0-based word indices: ``one_based=False``).

AER, precision and recall follow Och & Ney (2003), with sure links S inside possible links P.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .tokenize import EOS_PIECE, word_of_piece
from .translator import Score, Translation, Translator

Decoded = Score | Translation  # anything with pieces and their attention

Link = tuple[int, int]  # (source word, target word), 0-based

DIRECTIONAL_METHODS = ("argmax", "shift", "threshold", "pieces")
SYMMETRIC_METHODS = ("intersect", "grow-diag", "agree")
METHODS = DIRECTIONAL_METHODS + SYMMETRIC_METHODS
# The single-model method with the lowest AER on the dev gold sets (Hansards trial en-fr,
# Europarl de-en) for the shipped models; the symmetric methods combine its links from the two
# directions. Unlike a per-word argmax it lets one target word link several source words.
DEFAULT_METHOD = "pieces"
# With a reverse model: the lowest AER of the symmetric methods on both dev gold sets.
DEFAULT_SYMMETRIC_METHOD = "agree"
# Fixed before looking at any gold set: a link needs a third of the target word's attention.
THRESHOLD = 0.3
FORMATS = ("pharaoh", "naacl", "talp")
# A NAACL file read without the sentence count may not number sentences beyond this (one
# stray "999999999 1 1" line would otherwise allocate a billion empty alignments).
MAX_NAACL_SENTENCES = 100_000
_INTEGER = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class GoldAlignment:
    """Gold links of one sentence; ``possible`` always contains ``sure`` (S ⊆ P)."""

    sure: frozenset[Link]
    possible: frozenset[Link]

    @classmethod
    def of(cls, sure: Iterable[Link], possible: Iterable[Link] = ()) -> GoldAlignment:
        """Gold links from sure links and (further) possible links; sure links go into P."""
        sure = frozenset(sure)
        return cls(sure, sure | frozenset(possible))

    def transposed(self) -> GoldAlignment:
        """The same links with source and target swapped (a gold file of the other direction)."""
        return GoldAlignment(
            frozenset((t, s) for s, t in self.sure), frozenset((t, s) for s, t in self.possible)
        )


@dataclass(frozen=True)
class AlignmentScores:
    """Corpus-level alignment quality (links counted over all sentences)."""

    aer: float
    precision: float
    recall: float
    predicted: int  # |A|
    sure: int  # |S|


def sorted_links(links: Iterable[Link]) -> list[Link]:
    """``links`` ordered by target word, then source word (fast_align's order)."""
    return sorted(links, key=lambda link: (link[1], link[0]))


# -- soft attention -> word attention -------------------------------------------------------


def word_attention(
    attention: np.ndarray,
    source_word_of_piece: Sequence[int],
    target_word_of_piece: Sequence[int],
) -> np.ndarray:
    """Piece attention (tgt_pieces, src_pieces) -> word attention (tgt_words, src_words).

    A source word receives the sum of its pieces' weights (rows still sum to 1); a target
    word's row is the mean of its pieces' rows.
    """
    src = np.asarray(source_word_of_piece)
    tgt = np.asarray(target_word_of_piece)
    summed = np.zeros((attention.shape[0], src.max() + 1))
    np.add.at(summed.T, src, attention.T)
    words = np.zeros((tgt.max() + 1, summed.shape[1]))
    np.add.at(words, tgt, summed)
    return words / np.bincount(tgt)[:, None]


def argmax_links(attention: np.ndarray, skip_last: bool = True) -> list[tuple[int, int]]:
    """(source, target) links: each target row to its most attended source position.

    With ``skip_last`` the end-of-sentence row and column take no part (they align nothing).
    """
    rows, cols = attention.shape
    if skip_last:
        rows, cols = rows - 1, cols - 1
    if rows <= 0 or cols <= 0:
        return []
    best = attention[:rows, :cols].argmax(axis=1)
    return [(int(j), i) for i, j in enumerate(best)]


def text_word_of_piece(pieces: Sequence[str], text: str) -> list[int]:
    """Word of ``text.split()`` that each piece belongs to; a final "</s>" piece is left out.

    Raises InputError when the pieces make more words than the text has (the pieces were not
    made from this text). Fewer is fine: a source cut at the model's limit loses its end.
    """
    if pieces and pieces[-1] == EOS_PIECE:
        pieces = pieces[:-1]
    mapping = word_of_piece(pieces)
    words = len(text.split())
    if mapping and mapping[-1] >= words:
        raise InputError(
            f"the pieces {' '.join(pieces)!r} make {mapping[-1] + 1} words "
            f"but the text has {words}: {text!r}"
        )
    return mapping


def _rows(score: Decoded, shift: bool) -> np.ndarray:
    """The attention rows that stand for the target pieces, without the source "</s>" column.

    Without ``shift`` row i is the step that predicted target piece i; with ``shift`` it is the
    step right after piece i was fed to the decoder (for the last piece, the "</s>" step).
    Returns (tgt_pieces, src_pieces); the weight left out on "</s>" means "no link".
    A translation cut at the length limit has no "</s>" step: every row is a piece's.
    """
    finished = score.target_pieces[-1:] == [EOS_PIECE]
    if shift and not finished:
        raise InputError("the shift method needs a translation that ends with </s>")
    rows = score.attention[1:] if shift else score.attention[: -1 if finished else None]
    return rows[:, :-1]


def alignment_attention(
    score: Decoded, source: str, target: str, shift: bool = False
) -> np.ndarray:
    """Word attention (tgt_words, src_words) of a forced decode of ``target`` given ``source``,
    over the words of ``source.split()`` and ``target.split()`` (see :func:`_rows`)."""
    return word_attention(
        _rows(score, shift),
        text_word_of_piece(score.source_pieces, source),
        text_word_of_piece(score.target_pieces, target),
    )


# -- attention -> hard links ----------------------------------------------------------------


def argmax_word_links(matrix: np.ndarray, target_word_of_row: Sequence[int]) -> set[Link]:
    """Each row of ``matrix`` (rows, src_words) to its most attended source word, as a link
    of the target word ``target_word_of_row[row]``."""
    best = matrix.argmax(axis=1)
    return {(int(j), int(t)) for j, t in zip(best, target_word_of_row, strict=True)}


def threshold_links(matrix: np.ndarray, threshold: float = THRESHOLD) -> set[Link]:
    """Every (source, target) word pair whose weight in ``matrix`` (tgt_words, src_words) is at
    least ``threshold``."""
    targets, sources = np.nonzero(matrix >= threshold)
    return {(int(s), int(t)) for s, t in zip(sources, targets, strict=True)}


def score_links(score: Decoded, source: str, target: str, method: str) -> set[Link]:
    """Links read off a forced decode (``score``) of ``target`` given ``source`` by ``method``.

    ``argmax``: each target word (mean of its pieces' rows) to its most attended source word;
    ``shift``: the same on the rows after each piece was fed; ``threshold``: every word pair
    with at least :data:`THRESHOLD` of the target word's attention; ``pieces``: each target
    piece to its most attended source word, a word pair being linked when any of their pieces
    are (the subword convention of Jalili Sabet et al. 2020), which lets one target word take
    several source words.
    """
    if method == "pieces":
        rows = _rows(score, shift=False)
        by_source_word = word_attention(
            rows, text_word_of_piece(score.source_pieces, source), range(rows.shape[0])
        )
        return argmax_word_links(by_source_word, text_word_of_piece(score.target_pieces, target))
    if method not in DIRECTIONAL_METHODS:
        raise InputError(
            f"unknown single-model method {method!r}; use one of {', '.join(DIRECTIONAL_METHODS)}"
        )
    matrix = alignment_attention(score, source, target, shift=method == "shift")
    if method == "threshold":
        return threshold_links(matrix)
    return argmax_word_links(matrix, range(matrix.shape[0]))


def _own_text(pieces: Sequence[str], words: Sequence[str]) -> str:
    """A result's words as text, without the "</s>" word a finished side ends with."""
    return " ".join(words[:-1] if pieces[-1:] == [EOS_PIECE] else words)


def own_links(result: Decoded, method: str = DEFAULT_METHOD) -> set[Link]:
    """Links of a translation or score over its own words, read off its own attention (what
    the app draws); a translation cut at the length limit keeps its last word."""
    source = _own_text(result.source_pieces, result.source_words)
    target = _own_text(result.target_pieces, result.target_words)
    return score_links(result, source, target, method)


def directional_links(
    translator: Translator, source: str, target: str, method: str = DEFAULT_METHOD
) -> set[Link]:
    """Links of one model, from its forced decode of ``target`` given ``source``."""
    return score_links(translator.score(source, target), source, target, method)


def _neighbours(link: Link) -> list[Link]:
    s, t = link
    return [(s + ds, t + dt) for ds in (-1, 0, 1) for dt in (-1, 0, 1) if ds or dt]


def grow_diag(forward: set[Link], backward: set[Link]) -> set[Link]:
    """Koehn et al.'s grow-diag: start from the intersection and add union links next to
    (also diagonally) an alignment point while they align a still unaligned word."""
    union = forward | backward
    links = forward & backward
    grown = True
    while grown:
        grown = False
        for link in sorted(links):
            for s, t in _neighbours(link):
                if (s, t) not in union or (s, t) in links:
                    continue
                if all(a != s for a, _ in links) or all(b != t for _, b in links):
                    links.add((s, t))
                    grown = True
    return links


def symmetrize(forward: set[Link], backward: set[Link], method: str) -> set[Link]:
    """Combine the links of a source->target and a target->source model (both as
    (source word, target word)) by ``intersect`` or ``grow-diag``."""
    if method == "intersect":
        return forward & backward
    if method == "grow-diag":
        return grow_diag(forward, backward)
    raise InputError(f"unknown symmetrization {method!r}; use one of intersect, grow-diag")


def agreement_links(forward: np.ndarray, backward: np.ndarray) -> set[Link]:
    """Links where both directions' word attention agree.

    forward:  (tgt_words, src_words) word attention of the source->target model
    backward: (tgt_words, src_words) the target->source model's word attention, transposed

    The product of the two (the agreement of Liang et al. 2006) is read both ways: each
    target word's best source word and each source word's best target word, combined by
    grow-diag. A side cut at a model's length limit keeps the words both models saw.
    """
    rows, cols = min(forward.shape[0], backward.shape[0]), min(forward.shape[1], backward.shape[1])
    product = forward[:rows, :cols] * backward[:rows, :cols]
    by_target = {(int(s), t) for t, s in enumerate(product.argmax(axis=1))}
    by_source = {(s, int(t)) for s, t in enumerate(product.argmax(axis=0))}
    return grow_diag(by_target, by_source)


def symmetric_links(
    there: Decoded, back: Decoded, source: str, target: str, method: str
) -> set[Link]:
    """Links of ``source`` and ``target`` from both directions' forced decodes: ``there`` of
    ``target`` given ``source``, ``back`` of ``source`` given ``target``.

    ``intersect`` and ``grow-diag`` combine both models' :data:`DEFAULT_METHOD` links,
    ``agree`` their word attention (:func:`agreement_links`).
    """
    if method == "agree":
        return agreement_links(
            alignment_attention(there, source, target),
            alignment_attention(back, target, source).T,
        )
    forward = score_links(there, source, target, DEFAULT_METHOD)
    backward = {(s, t) for t, s in score_links(back, target, source, DEFAULT_METHOD)}
    return symmetrize(forward, backward, method)


def align(
    translator: Translator,
    source: str,
    target: str,
    method: str = DEFAULT_METHOD,
    reverse: Translator | None = None,
) -> list[Link]:
    """Word links of ``source`` and ``target`` (words split on whitespace), sorted by target
    then source word like fast_align's output.

    The symmetric methods need ``reverse``, a model translating the target language into the
    source language (see :func:`symmetric_links`).
    """
    if method not in SYMMETRIC_METHODS:
        return sorted_links(directional_links(translator, source, target, method))
    if reverse is None:
        raise InputError(f"method {method!r} needs a reverse (target->source) model")
    there, back = translator.score(source, target), reverse.score(target, source)
    return sorted_links(symmetric_links(there, back, source, target, method))


# -- AER ------------------------------------------------------------------------------------


def alignment_scores(
    predicted: Sequence[Iterable[Link]], gold: Sequence[GoldAlignment]
) -> AlignmentScores:
    """AER, precision and recall of predicted links against gold, summed over sentences.

    AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|), precision = |A∩P| / |A|, recall = |A∩S| / |S|.
    An empty A has precision 1 and an empty S recall 1 (nothing wrong, nothing missed);
    AER is 0 when both are empty.
    """
    if len(predicted) != len(gold):
        raise InputError(f"{len(predicted)} predicted sentences but {len(gold)} gold sentences")
    a = a_sure = a_possible = sure = 0
    for links, g in zip(predicted, gold, strict=True):
        links = set(links)
        a += len(links)
        sure += len(g.sure)
        a_sure += len(links & g.sure)
        a_possible += len(links & g.possible)
    return AlignmentScores(
        aer=1.0 - (a_sure + a_possible) / (a + sure) if a + sure else 0.0,
        precision=a_possible / a if a else 1.0,
        recall=a_sure / sure if sure else 1.0,
        predicted=a,
        sure=sure,
    )


# -- readers --------------------------------------------------------------------------------


def _number(field: str, what: str, where: str) -> int:
    # Only ASCII digits: int() would also read "1_0" as 10 and "١" as 1.
    if not _INTEGER.fullmatch(field):
        raise InputError(f"{where}: {what} {field!r} is not a whole number")
    return int(field)


def _check_link(
    link: Link, sentence: int, lengths: Sequence[tuple[int, int]] | None, where: str
) -> Link:
    """``link`` (0-based) if it lies inside sentence ``sentence`` (0-based) of ``lengths``
    ((source words, target words) per sentence); InputError naming ``where`` otherwise."""
    s, t = link
    if s < 0 or t < 0:
        raise InputError(f"{where}: word index below the first word in link {s}-{t} (0-based)")
    if lengths is None:
        return link
    if sentence >= len(lengths):
        raise InputError(
            f"{where}: there is no sentence {sentence + 1} in the text, which has {len(lengths)}"
        )
    source_len, target_len = lengths[sentence]
    if s >= source_len or t >= target_len:
        raise InputError(
            f"{where}: link {s}-{t} (0-based) points past the end of sentence {sentence + 1}, "
            f"which has {source_len} source and {target_len} target words"
        )
    return link


def _pair(field: str, separator: str, offset: int, where: str) -> Link:
    left, _, right = field.partition(separator)
    return (
        _number(left, "source index", where) - offset,
        _number(right, "target index", where) - offset,
    )


def parse_pharaoh(
    lines: Iterable[str], name: str, lengths: Sequence[tuple[int, int]] | None = None
) -> list[set[Link]]:
    """Pharaoh lines (``0-1 2-3``) -> links per sentence. ``name`` is used in error messages;
    with ``lengths`` ((source words, target words) per sentence) every index is checked."""
    sentences = []
    for number, line in enumerate(lines, start=1):
        where = f"{name}, line {number}"
        links = set()
        for field in line.split():
            if "-" not in field:
                raise InputError(f"{where}: {field!r} is not a link like 0-1")
            links.add(_check_link(_pair(field, "-", 0, where), number - 1, lengths, where))
        sentences.append(links)
    _check_sentence_count(sentences, lengths, name)
    return sentences


def parse_talp(
    lines: Iterable[str], name: str, lengths: Sequence[tuple[int, int]] | None = None
) -> list[GoldAlignment]:
    """TALP lines (``1-2`` sure, ``3p4`` possible, 1-based) -> gold links per sentence."""
    sentences = []
    for number, line in enumerate(lines, start=1):
        where = f"{name}, line {number}"
        sure, possible = set(), set()
        for field in line.split():
            separator = "-" if "-" in field else "p"
            if separator not in field:
                raise InputError(f"{where}: {field!r} is not a link like 1-2 or 1p2")
            link = _check_link(_pair(field, separator, 1, where), number - 1, lengths, where)
            (sure if separator == "-" else possible).add(link)
        sentences.append(GoldAlignment.of(sure, possible))
    _check_sentence_count(sentences, lengths, name)
    return sentences


def parse_naacl(
    lines: Iterable[str],
    name: str,
    sentences: int | None = None,
    lengths: Sequence[tuple[int, int]] | None = None,
    one_based: bool = True,
) -> list[GoldAlignment]:
    """NAACL ``.wa`` lines (``sentence source target [S|P]``) -> gold links per sentence.

    Sentence numbers are 1-based and say which sentence a link belongs to; the result has
    ``sentences`` entries (default: ``len(lengths)``, else the largest sentence number), and
    a sentence number beyond that is an error. A missing S|P means S. Word indices are
    1-based unless ``one_based`` is False.
    """
    count = sentences if sentences is not None else len(lengths) if lengths is not None else None
    offset = 1 if one_based else 0
    sure: dict[int, set[Link]] = {}
    possible: dict[int, set[Link]] = {}
    for number, line in enumerate(lines, start=1):
        where = f"{name}, line {number}"
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (3, 4) or (len(fields) == 4 and fields[3] not in ("S", "P")):
            raise InputError(f"{where}: expected 'sentence source target S|P', got {line!r}")
        sentence = _number(fields[0], "sentence number", where) - 1
        if sentence < 0 or (count is not None and sentence >= count):
            raise InputError(
                f"{where}: sentence number {sentence + 1} does not match the text, "
                f"which has sentences 1 to {count}"
            )
        if count is None and sentence >= MAX_NAACL_SENTENCES:
            raise InputError(
                f"{where}: sentence number {sentence + 1} is over {MAX_NAACL_SENTENCES}; "
                "give the number of sentences in the text"
            )
        link = (
            _number(fields[1], "source index", where) - offset,
            _number(fields[2], "target index", where) - offset,
        )
        link = _check_link(link, sentence, lengths, where)
        kind = fields[3] if len(fields) == 4 else "S"
        (sure if kind == "S" else possible).setdefault(sentence, set()).add(link)
    if count is None:
        count = max([*sure, *possible], default=-1) + 1
    return [GoldAlignment.of(sure.get(i, ()), possible.get(i, ())) for i in range(count)]


def _check_sentence_count(
    sentences: list, lengths: Sequence[tuple[int, int]] | None, name: str
) -> None:
    if lengths is not None and len(sentences) != len(lengths):
        raise InputError(f"{name} has {len(sentences)} lines but the text has {len(lengths)}")


def _lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 file (a byte-order mark is skipped); InputError if unreadable.

    Lines end at \\n, \\r\\n or \\r only, as when the CLI reads its input: str.splitlines
    would also split at form feeds, U+2028 and other separators inside a sentence.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            return [line.rstrip("\n") for line in f]
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None


def read_pharaoh(
    path: str | Path, lengths: Sequence[tuple[int, int]] | None = None
) -> list[set[Link]]:
    """Links per sentence of a Pharaoh file (see :func:`parse_pharaoh`)."""
    return parse_pharaoh(_lines(path), str(path), lengths)


def read_gold(
    path: str | Path,
    fmt: str,
    sentences: int | None = None,
    lengths: Sequence[tuple[int, int]] | None = None,
    one_based: bool = True,
) -> list[GoldAlignment]:
    """Gold links per sentence of a ``pharaoh`` (all sure), ``talp`` or ``naacl`` file.

    ``sentences`` and ``one_based`` apply to NAACL files (see :func:`parse_naacl`).
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown alignment format {fmt!r}; use one of {', '.join(FORMATS)}")
    lines = _lines(path)
    if fmt == "pharaoh":
        return [GoldAlignment.of(links) for links in parse_pharaoh(lines, str(path), lengths)]
    if fmt == "talp":
        return parse_talp(lines, str(path), lengths)
    return parse_naacl(lines, str(path), sentences, lengths, one_based)


def read_lengths(path: str | Path) -> list[tuple[int, int]]:
    """(source words, target words) of each ``source ||| target`` line of a file."""
    lengths = []
    for number, line in enumerate(_lines(path), start=1):
        source, bar, target = line.partition("|||")
        if not bar:
            raise InputError(f"{path}, line {number}: no ' ||| ' between source and target")
        lengths.append((len(source.split()), len(target.split())))
    return lengths


# -- writers --------------------------------------------------------------------------------


def format_pharaoh(links: Iterable[Link]) -> str:
    """One Pharaoh line: ``0-1 2-3`` (0-based, source first, ordered by target word)."""
    return " ".join(f"{s}-{t}" for s, t in sorted_links(links))


def format_talp(gold: GoldAlignment) -> str:
    """One TALP line: sure links ``1-2``, possible-only links ``1p2`` (1-based)."""
    fields = [
        f"{s + 1}{'-' if (s, t) in gold.sure else 'p'}{t + 1}"
        for s, t in sorted_links(gold.possible)
    ]
    return " ".join(fields)


def format_naacl(gold: Sequence[GoldAlignment], one_based: bool = True) -> list[str]:
    """NAACL lines ``sentence source target S|P`` of all sentences (sentences 1-based)."""
    offset = 1 if one_based else 0
    return [
        f"{n} {s + offset} {t + offset} {'S' if (s, t) in g.sure else 'P'}"
        for n, g in enumerate(gold, start=1)
        for s, t in sorted_links(g.possible)
    ]


def _write(path: str | Path, lines: Iterable[str]) -> None:
    Path(path).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_pharaoh(path: str | Path, alignments: Iterable[Iterable[Link]]) -> None:
    """One Pharaoh line per sentence."""
    _write(path, (format_pharaoh(links) for links in alignments))


def write_talp(path: str | Path, gold: Iterable[GoldAlignment]) -> None:
    """One TALP line per sentence."""
    _write(path, (format_talp(g) for g in gold))


def write_naacl(path: str | Path, gold: Sequence[GoldAlignment], one_based: bool = True) -> None:
    """A NAACL ``.wa`` file: one link per line."""
    _write(path, format_naacl(gold, one_based))
