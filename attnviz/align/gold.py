"""Gold word alignments: their files (read and written) and AER against them.

A link is a pair ``(source word, target word)`` of 0-based indices into the text split on
whitespace, source first, as in fast_align's Pharaoh output. Three file formats:

- Pharaoh: one line per sentence, ``0-1 2-3``, 0-based, source first (all links sure);
- TALP: one line per sentence, ``i-j`` sure and ``ipj`` possible, 1-based, source first;
- NAACL ``.wa`` (HLT-NAACL 2003): one link per line, ``sentence source target [S|P]``, all
  1-based (the de-en Europarl set uses 0-based word indices: ``one_based=False``).

Files are read by the rule of :mod:`attnviz.text_lines`. When the word counts of the aligned
text are known (``lengths``), every link is checked against them, and blank lines at the end of
a one-line-per-sentence file beyond the last sentence are ignored (gold files as people have
them often end with one). A link outside its sentence is an error, unless the caller collects
such links in ``skipped``: they are then left out, and the caller says so.

AER, precision and recall follow Och & Ney (2003), with sure links S inside possible links P.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import InputError
from ..text_lines import read_lines

__all__ = [
    "FORMATS",
    "MAX_NAACL_SENTENCES",
    "AlignmentScores",
    "GoldAlignment",
    "Link",
    "LinkOutsideSentence",
    "SkippedLink",
    "aer_per_sentence",
    "alignment_scores",
    "format_naacl",
    "format_pharaoh",
    "format_talp",
    "parse_gold",
    "parse_naacl",
    "parse_pharaoh",
    "parse_talp",
    "read_gold",
    "read_lengths",
    "read_pharaoh",
    "sorted_links",
    "write_naacl",
    "write_pharaoh",
    "write_talp",
]

Link = tuple[int, int]  # (source word, target word), 0-based

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


def aer_per_sentence(
    predicted: Sequence[Iterable[Link]], gold: Sequence[GoldAlignment]
) -> list[float]:
    """AER of each sentence on its own (:func:`alignment_scores` sums links over sentences)."""
    return [alignment_scores([p], [g]).aer for p, g in zip(predicted, gold, strict=True)]


# -- checking links against the text ---------------------------------------------------------


class LinkOutsideSentence(InputError):
    """A gold or predicted link whose word index lies outside its sentence."""


@dataclass(frozen=True)
class SkippedLink:
    """A link left out because it lies outside its sentence; ``str()`` says where and why."""

    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Text:
    """What the links of a file are checked against.

    lengths: (words of the first column's side, words of the second's) per sentence, or None
    sides:   the names of those two sides, for messages
    skipped: where links outside their sentence go (None: they are an error)
    """

    lengths: Sequence[tuple[int, int]] | None
    sides: tuple[str, str]
    skipped: list[SkippedLink] | None

    def check(self, link: Link, sentence: int, where: str) -> Link | None:
        """``link`` (0-based) when it lies inside sentence ``sentence`` (0-based); None when it
        does not and is skipped; LinkOutsideSentence otherwise."""
        s, t = link
        if self.lengths is not None and sentence >= len(self.lengths):
            raise InputError(
                f"{where}: there is no sentence {sentence + 1} in the text, which has "
                f"{len(self.lengths)}"
            )
        if s < 0 or t < 0:
            message = f"{where}: word index below the first word in link {s}-{t} (0-based)"
        elif self.lengths is None:
            return link
        else:
            first, second = self.lengths[sentence]
            if s < first and t < second:
                return link
            message = (
                f"{where}: link {s}-{t} (0-based) points past the end of sentence "
                f"{sentence + 1}, which has {first} {self.sides[0]} and {second} "
                f"{self.sides[1]} words"
            )
        if self.skipped is None:
            raise LinkOutsideSentence(message)
        self.skipped.append(SkippedLink(message))
        return None


def _whole_number(field: str, what: str, where: str) -> int:
    # Only ASCII digits: int() would also read "1_0" as 10 and "١" as 1.
    if not _INTEGER.fullmatch(field):
        raise InputError(f"{where}: {what} {field!r} is not a whole number")
    return int(field)


def _pair(field: str, separator: str, offset: int, where: str) -> Link:
    left, _, right = field.partition(separator)
    return (
        _whole_number(left, "source index", where) - offset,
        _whole_number(right, "target index", where) - offset,
    )


def _sentence_lines(lines: Iterable[str], count: int | None) -> list[str]:
    """The lines of a one-line-per-sentence file, without blank lines past the ``count``-th."""
    lines = list(lines)
    while count is not None and len(lines) > count and not lines[-1].strip():
        lines.pop()
    return lines


def _check_sentence_count(sentences: list, text: _Text, name: str) -> None:
    if text.lengths is not None and len(sentences) != len(text.lengths):
        raise InputError(f"{name} has {len(sentences)} lines but the text has {len(text.lengths)}")


T = TypeVar("T")


def _per_line(
    lines: Iterable[str],
    name: str,
    lengths: Sequence[tuple[int, int]] | None,
    sentences: int | None,
    sides: tuple[str, str],
    skipped: list[SkippedLink] | None,
    read_line: Callable[[str, _Text, int, str], T],
) -> list[T]:
    """One alignment per line of a format with a sentence per line (Pharaoh, TALP):
    ``read_line(line, text, sentence index, where)`` reads one, checking its links."""
    text = _Text(lengths, sides, skipped)
    count = sentences if sentences is not None else len(lengths) if lengths is not None else None
    alignments = [
        read_line(line, text, number - 1, f"{name}, line {number}")
        for number, line in enumerate(_sentence_lines(lines, count), start=1)
    ]
    _check_sentence_count(alignments, text, name)
    return alignments


# -- readers --------------------------------------------------------------------------------


def parse_pharaoh(
    lines: Iterable[str],
    name: str,
    lengths: Sequence[tuple[int, int]] | None = None,
    sentences: int | None = None,
    sides: tuple[str, str] = ("source", "target"),
    skipped: list[SkippedLink] | None = None,
) -> list[set[Link]]:
    """Pharaoh lines (``0-1 2-3``) -> links per sentence. ``name`` is used in error messages.

    With ``lengths`` ((source words, target words) per sentence, named ``sides`` in messages)
    every index is checked; a link outside its sentence goes into ``skipped`` when given, else
    it is an error. Blank lines after the ``sentences``-th (default ``len(lengths)``) are
    ignored.
    """

    def read_line(line: str, text: _Text, index: int, where: str) -> set[Link]:
        links = set()
        for field in line.split():
            if "-" not in field:
                raise InputError(f"{where}: {field!r} is not a link like 0-1")
            link = text.check(_pair(field, "-", 0, where), index, where)
            if link is not None:
                links.add(link)
        return links

    return _per_line(lines, name, lengths, sentences, sides, skipped, read_line)


def parse_talp(
    lines: Iterable[str],
    name: str,
    lengths: Sequence[tuple[int, int]] | None = None,
    sentences: int | None = None,
    sides: tuple[str, str] = ("source", "target"),
    skipped: list[SkippedLink] | None = None,
) -> list[GoldAlignment]:
    """TALP lines (``1-2`` sure, ``3p4`` possible, 1-based) -> gold links per sentence (the
    other arguments as in :func:`parse_pharaoh`)."""

    def read_line(line: str, text: _Text, index: int, where: str) -> GoldAlignment:
        sure, possible = set(), set()
        for field in line.split():
            separator = "-" if "-" in field else "p"
            if separator not in field:
                raise InputError(f"{where}: {field!r} is not a link like 1-2 or 1p2")
            link = text.check(_pair(field, separator, 1, where), index, where)
            if link is not None:
                (sure if separator == "-" else possible).add(link)
        return GoldAlignment.of(sure, possible)

    return _per_line(lines, name, lengths, sentences, sides, skipped, read_line)


def parse_naacl(
    lines: Iterable[str],
    name: str,
    sentences: int | None = None,
    lengths: Sequence[tuple[int, int]] | None = None,
    one_based: bool = True,
    sides: tuple[str, str] = ("source", "target"),
    skipped: list[SkippedLink] | None = None,
) -> list[GoldAlignment]:
    """NAACL ``.wa`` lines (``sentence source target [S|P]``) -> gold links per sentence.

    Sentence numbers are 1-based and say which sentence a link belongs to; the result has
    ``sentences`` entries (default: ``len(lengths)``, else the largest sentence number), and
    a sentence number beyond that is an error. A missing S|P means S. Word indices are
    1-based unless ``one_based`` is False. ``lengths``, ``sides`` and ``skipped`` as in
    :func:`parse_pharaoh`.
    """
    text = _Text(lengths, sides, skipped)
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
        sentence = _whole_number(fields[0], "sentence number", where) - 1
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
            _whole_number(fields[1], "source index", where) - offset,
            _whole_number(fields[2], "target index", where) - offset,
        )
        if text.check(link, sentence, where) is None:
            continue
        kind = fields[3] if len(fields) == 4 else "S"
        (sure if kind == "S" else possible).setdefault(sentence, set()).add(link)
    if count is None:
        count = max([*sure, *possible], default=-1) + 1
    return [GoldAlignment.of(sure.get(i, ()), possible.get(i, ())) for i in range(count)]


def parse_gold(
    lines: Iterable[str],
    name: str,
    fmt: str,
    sentences: int | None = None,
    lengths: Sequence[tuple[int, int]] | None = None,
    one_based: bool = True,
    sides: tuple[str, str] = ("source", "target"),
    skipped: list[SkippedLink] | None = None,
) -> list[GoldAlignment]:
    """Gold links per sentence of the lines of a ``pharaoh`` (all sure), ``talp`` or ``naacl``
    file, as the file lists them (first column first). ``one_based`` applies to NAACL files
    (Pharaoh is 0-based and TALP 1-based by definition); the rest as in :func:`parse_naacl`."""
    if fmt == "pharaoh":
        links = parse_pharaoh(lines, name, lengths, sentences, sides, skipped)
        return [GoldAlignment.of(sentence) for sentence in links]
    if fmt == "talp":
        return parse_talp(lines, name, lengths, sentences, sides, skipped)
    if fmt == "naacl":
        return parse_naacl(lines, name, sentences, lengths, one_based, sides, skipped)
    raise InputError(f"unknown alignment format {fmt!r}; use one of {', '.join(FORMATS)}")


def read_pharaoh(
    path: str | Path,
    lengths: Sequence[tuple[int, int]] | None = None,
    skipped: list[SkippedLink] | None = None,
) -> list[set[Link]]:
    """Links per sentence of a Pharaoh file (see :func:`parse_pharaoh`)."""
    return parse_pharaoh(read_lines(path), str(path), lengths, skipped=skipped)


def read_gold(
    path: str | Path,
    fmt: str,
    sentences: int | None = None,
    lengths: Sequence[tuple[int, int]] | None = None,
    one_based: bool = True,
    sides: tuple[str, str] = ("source", "target"),
    skipped: list[SkippedLink] | None = None,
) -> list[GoldAlignment]:
    """Gold links per sentence of a ``pharaoh``, ``talp`` or ``naacl`` file (see
    :func:`parse_gold`)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown alignment format {fmt!r}; use one of {', '.join(FORMATS)}")
    lines = read_lines(path)
    return parse_gold(lines, str(path), fmt, sentences, lengths, one_based, sides, skipped)


def read_lengths(path: str | Path) -> list[tuple[int, int]]:
    """(source words, target words) of each ``source ||| target`` line of a file."""
    lengths = []
    for number, line in enumerate(read_lines(path), start=1):
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
