"""Run a file of sentences, or a parallel test set, through a translator: one row of quality
and attention statistics per sentence, corpus BLEU/chrF, and AER against gold word links.

Files arrive as bytes (an upload) and are read here; nothing here knows Streamlit, so a notebook
can do what the Checkpoint view does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sacrebleu.metrics import BLEU, CHRF

from .align import FORMATS, AlignmentScores, GoldAlignment, SkippedLink, parse_gold
from .analysis import coverage, mean_attention_entropy
from .errors import InputError
from .evaluate import Quality, corpus_quality
from .text_lines import decode_lines
from .translator import Translation, Translator

__all__ = [
    "MAX_LINES",
    "Corpus",
    "CorpusScores",
    "SentenceReport",
    "corpus_scores",
    "read_corpus",
    "read_gold_upload",
    "report_corpus",
    "report_sentence",
    "report_table",
    "sentence_report",
    "word_lengths",
]

MAX_LINES = 500  # a run translates at most this many lines: it decodes on the server, one by one

_SENTENCE_BLEU = BLEU(effective_order=True)  # plain BLEU is 0 for most short sentences
_SENTENCE_CHRF = CHRF()


@dataclass
class Corpus:
    """Sentences to run, with their references for a parallel set."""

    sources: list[str]
    references: list[str] | None
    lines: list[int]  # 1-based line of each source in its file
    lines_in_file: int  # sentences in the file, before the cut at the line limit

    @property
    def cut(self) -> bool:
        return self.lines_in_file > len(self.sources)


def _without_trailing_blanks(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def read_corpus(
    source: bytes,
    source_name: str,
    reference: bytes | None = None,
    reference_name: str = "",
    limit: int = MAX_LINES,
) -> Corpus:
    """Sentences (one per line; blank lines skipped), or with ``reference`` a parallel set
    (line i of each file is the same sentence; blank lines are not allowed but at the end),
    cut to the first ``limit``. InputError with a message naming the files otherwise. Files
    are read by the rule of :mod:`attnviz.text_lines`."""
    sources = _without_trailing_blanks(decode_lines(source, source_name))
    if reference is None:
        numbered = [(n, s) for n, s in enumerate(sources, start=1) if s.strip()]
        if not numbered:
            raise InputError(f"{source_name} has no sentences")
        return Corpus(
            [s for _, s in numbered[:limit]], None, [n for n, _ in numbered[:limit]], len(numbered)
        )
    references = _without_trailing_blanks(decode_lines(reference, reference_name))
    if len(sources) != len(references):
        raise InputError(
            f"{source_name} has {len(sources)} lines but {reference_name} has "
            f"{len(references)}: a parallel set needs one reference line per source line"
        )
    for number, line in enumerate(sources, start=1):
        if not line.strip():
            raise InputError(
                f"{source_name}, line {number} is empty: every line of a parallel set needs "
                "a sentence"
            )
    if not sources:
        raise InputError(f"{source_name} has no sentences")
    kept = min(limit, len(sources))
    return Corpus(sources[:kept], references[:kept], list(range(1, kept + 1)), len(sources))


# -- one row per sentence -------------------------------------------------------------------


@dataclass
class SentenceReport:
    """One sentence of a run: its translation and what the attention did.

    attention: (tgt_len, src_len) the translation's attention, "</s>" row and column included
    coverage:  (src_words,) total attention each source word received ("</s>" left out);
               a word translated once gets about 1 (see :func:`attnviz.analysis.coverage`)
    """

    line: int
    source: str
    translation: str
    reference: str | None
    chrf: float | None  # sentence chrF against the reference
    bleu: float | None  # sentence BLEU (sacreBLEU, effective order)
    attention: np.ndarray
    coverage: np.ndarray
    dropped: list[str]  # source words that received less than analysis.DROPPED
    repeated: list[str]  # source words that received more than analysis.OVER_ATTENDED
    length_ratio: float  # translation words / source words
    reference_ratio: float | None  # translation words / reference words
    truncated: bool  # the source was longer than the model reads


def sentence_report(line: int, translation: Translation, reference: str | None) -> SentenceReport:
    """Statistics of one translation (and its quality against ``reference``)."""
    covered = coverage(translation)
    words = len(translation.text.split())
    chrf = bleu = ratio = None
    if reference is not None:
        chrf = round(_SENTENCE_CHRF.sentence_score(translation.text, [reference]).score, 2)
        bleu = round(_SENTENCE_BLEU.sentence_score(translation.text, [reference]).score, 2)
        ratio = words / max(len(reference.split()), 1)
    return SentenceReport(
        line=line,
        source=translation.source,
        translation=translation.text,
        reference=reference,
        chrf=chrf,
        bleu=bleu,
        attention=translation.attention,
        coverage=covered.received,
        dropped=[covered.words[i] for i in covered.dropped],
        repeated=[covered.words[i] for i in covered.over_attended],
        length_ratio=words / max(len(translation.source.split()), 1),
        reference_ratio=ratio,
        truncated=translation.truncated,
    )


def report_sentence(
    translator: Translator, line: int, source: str, reference: str | None, beam_size: int
) -> SentenceReport:
    """Translate ``source`` and report on it."""
    return sentence_report(line, translator.translate(source, beam_size=beam_size), reference)


def report_corpus(
    translator: Translator,
    corpus: Corpus,
    beam_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[SentenceReport]:
    """Every sentence of ``corpus`` translated (in batches, see
    :meth:`Translator.translate_batch`) and reported on; ``progress(done)`` after each batch
    with the number of sentences translated so far."""
    references = corpus.references or [None] * len(corpus.sources)
    done = 0

    def batch_done(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done)

    translations = translator.translate_batch(
        corpus.sources, beam_size=beam_size, progress=batch_done
    )
    return [
        sentence_report(line, translation, reference)
        for line, translation, reference in zip(corpus.lines, translations, references, strict=True)
    ]


def report_table(
    reports: Sequence[SentenceReport], aer: Sequence[float] | None = None
) -> pd.DataFrame:
    """The per-sentence table: one row per report, reference columns only for a parallel set,
    an AER column when gold links were given (one AER per report)."""
    with_references = bool(reports) and reports[0].reference is not None
    rows = []
    for i, r in enumerate(reports):
        row: dict = {"line": r.line, "source": r.source, "translation": r.translation}
        if with_references:
            row |= {"reference": r.reference, "chrF": r.chrf, "BLEU": r.bleu}
        row |= {
            "mean entropy": round(mean_attention_entropy([r.attention]), 3),
            "min coverage": round(float(r.coverage.min()), 3) if r.coverage.size else None,
            "max coverage": round(float(r.coverage.max()), 3) if r.coverage.size else None,
            "dropped": len(r.dropped),
            "dropped words": " ".join(r.dropped),
            "repeated": len(r.repeated),
            "repeated words": " ".join(r.repeated),
            "length / source": round(r.length_ratio, 3),
        }
        if with_references:
            row["length / reference"] = round(r.reference_ratio, 3)
        if aer is not None:
            row["AER"] = round(aer[i], 3)
        row["truncated"] = r.truncated
        rows.append(row)
    return pd.DataFrame(rows)


# -- corpus scores --------------------------------------------------------------------------


@dataclass
class CorpusScores:
    """The numbers of a run: quality against the references, attention over all sentences,
    and alignment quality against gold links (when given)."""

    sentences: int
    beam_size: int
    mean_entropy: float  # nats, analysis.mean_attention_entropy of all the sentences
    dropped_words: int
    repeated_words: int
    quality: Quality | None
    alignment: AlignmentScores | None = None
    alignment_method: str | None = None


def corpus_scores(
    reports: Sequence[SentenceReport],
    beam_size: int,
    alignment: AlignmentScores | None = None,
    alignment_method: str | None = None,
) -> CorpusScores:
    """Corpus BLEU/chrF (sacreBLEU, with signatures) when the reports have references."""
    quality = None
    if reports and reports[0].reference is not None:
        quality = corpus_quality([r.translation for r in reports], [r.reference for r in reports])
    return CorpusScores(
        sentences=len(reports),
        beam_size=beam_size,
        mean_entropy=round(mean_attention_entropy([r.attention for r in reports]), 4),
        dropped_words=sum(len(r.dropped) for r in reports),
        repeated_words=sum(len(r.repeated) for r in reports),
        quality=quality,
        alignment=alignment,
        alignment_method=alignment_method,
    )


# -- gold alignments ------------------------------------------------------------------------


def word_lengths(corpus: Corpus) -> list[tuple[int, int]]:
    """(source words, reference words) of each pair, words split on whitespace."""
    if corpus.references is None:
        raise InputError("gold alignments need a parallel set: a source and a reference file")
    return [
        (len(s.split()), len(r.split()))
        for s, r in zip(corpus.sources, corpus.references, strict=True)
    ]


def read_gold_upload(
    data: bytes,
    name: str,
    fmt: str,
    corpus: Corpus,
    target_first: bool = False,
    one_based: bool = True,
    skipped: list[SkippedLink] | None = None,
) -> list[GoldAlignment]:
    """Gold links of ``corpus`` from an uploaded ``pharaoh``, ``talp`` or ``naacl`` file, as
    (source word, reference word). ``target_first``: the file lists the reference's word
    first; ``one_based``: NAACL word indices (Pharaoh is 0-based and TALP 1-based by
    definition). Every index is checked against the sentences: InputError naming the line,
    or with ``skipped`` (see :func:`attnviz.align.parse_gold`) such links are left out."""
    if fmt not in FORMATS:
        raise InputError(f"unknown alignment format {fmt!r}; use one of {', '.join(FORMATS)}")
    lengths = word_lengths(corpus)
    if corpus.cut:
        raise InputError(
            f"gold alignments need the whole set, but only the first {len(corpus.sources)} of "
            f"its {corpus.lines_in_file} lines were run"
        )
    sides = ("source", "reference")
    if target_first:
        lengths, sides = [(t, s) for s, t in lengths], ("reference", "source")
    lines = decode_lines(data, name)
    gold = parse_gold(lines, name, fmt, None, lengths, one_based, sides, skipped)
    return [g.transposed() for g in gold] if target_first else gold
