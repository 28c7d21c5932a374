"""The Checkpoint view's "Run a file": a file of sentences or a parallel test set through the
opened checkpoint; corpus scores, a sortable per-sentence table whose rows open in Align, and
AER against uploaded gold links."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from ..align import (
    DEFAULT_METHOD,
    DIRECTIONAL_METHODS,
    FORMATS,
    Link,
    aer_per_sentence,
    align_batch,
    alignment_scores,
)
from ..batch_search import BATCH_SIZE
from ..corpus_report import (
    MAX_LINES,
    Corpus,
    CorpusScores,
    SentenceReport,
    corpus_scores,
    read_corpus,
    read_gold_upload,
    report_corpus,
    report_table,
)
from ..errors import InputError
from ..translator import Translator
from .checkpoint_open import Opened
from .downloads import download_row, file_stem
from .inputs import MAX_CHARS
from .messages import markdown_literal
from .state import ALIGN, CHECKPOINT, TEXT, VIEW

__all__ = ["render_run"]

TABLE_KEY = "corpus_table"
KINDS = {"sentences": "Sentences (one file)", "parallel": "Parallel set (source + reference)"}
FORMAT_NAMES = {
    "pharaoh": "Pharaoh (0-1 2-3, 0-based)",
    "naacl": "NAACL .wa (sentence source target S|P)",
    "talp": "TALP (1-2 sure, 1p2 possible, 1-based)",
}
# Sentences per cached batch: the progress bar moves after each; the translator sorts and
# batches within it.
RUN_BATCH = 4 * BATCH_SIZE
MAX_TEXT_MB = 10  # a text upload; MAX_LINES lines of text are far smaller


# -- cached work, per batch of sentences: a progress bar can follow it, and a second upload of
# the same file reuses what was computed.


@st.cache_data(max_entries=256, show_spinner=False)
def cached_reports(
    key: str,
    beam: int,
    lines: tuple[int, ...],
    sources: tuple[str, ...],
    references: tuple[str, ...] | None,
    _translator: Translator,
) -> list[SentenceReport]:
    refs = None if references is None else list(references)
    corpus = Corpus(list(sources), refs, list(lines), len(lines))
    return report_corpus(_translator, corpus, beam)


@st.cache_data(max_entries=256, show_spinner=False)
def cached_links(
    key: str,
    method: str,
    sources: tuple[str, ...],
    references: tuple[str, ...],
    _translator: Translator,
) -> list[list[Link]]:
    return align_batch(_translator, list(zip(sources, references, strict=True)), method)


def each_batch_with_progress(
    corpus: Corpus,
    what: str,
    check: Callable[[str, str | None], object],
    work: Callable[[tuple[int, ...], tuple[str, ...], tuple[str, ...] | None], list],
) -> list | None:
    """``work(lines, sources, references)`` for batches of the corpus under a progress bar;
    None (and a message naming the line) when ``check(source, reference)`` refuses one."""
    references = corpus.references or [None] * len(corpus.sources)
    for line, source, reference in zip(corpus.lines, corpus.sources, references, strict=True):
        try:
            check(source, reference)
        except InputError as exc:
            st.error(markdown_literal(f"Line {line}: {exc}"))
            return None
    total = len(corpus.sources)
    bar = st.progress(0.0, text=f"{what}…")
    results: list = []
    for start in range(0, total, RUN_BATCH):
        end = start + RUN_BATCH
        refs = None if corpus.references is None else tuple(corpus.references[start:end])
        results += work(tuple(corpus.lines[start:end]), tuple(corpus.sources[start:end]), refs)
        bar.progress(len(results) / total, text=f"{what}: {len(results)} of {total}")
    bar.empty()
    return results


# -- widgets --------------------------------------------------------------------------------


def uploaded_corpus(kind: str) -> Corpus | None:
    """The sentences or parallel set the person uploaded, read and checked."""
    st.caption(f"At most {MAX_LINES} lines are translated; a longer file is cut there.")
    if kind == "sentences":
        file = st.file_uploader(
            "Sentences, one per line (UTF-8 text)", key="run_sentences", max_upload_size=MAX_TEXT_MB
        )
        if file is None:
            return None
        args: tuple = (file.getvalue(), file.name)
    else:
        left, right = st.columns(2)
        source = left.file_uploader(
            "Source sentences", key="run_source", max_upload_size=MAX_TEXT_MB
        )
        reference = right.file_uploader(
            "References (line i translates source line i)",
            key="run_reference",
            max_upload_size=MAX_TEXT_MB,
        )
        if source is None or reference is None:
            return None
        args = (source.getvalue(), source.name, reference.getvalue(), reference.name)
    try:
        corpus = read_corpus(*args)
    except InputError as exc:
        st.error(markdown_literal(str(exc)))
        return None
    if corpus.cut:
        st.warning(
            f"The file has {corpus.lines_in_file} sentences; only the first "
            f"{len(corpus.sources)} are translated."
        )
    return corpus


def gold_alignment(opened: Opened, corpus: Corpus) -> tuple[list[set[Link]], list, str] | None:
    """(predicted links, gold links, method) when gold links were uploaded for the set."""
    st.markdown("**Gold word alignments (AER)**")
    st.caption(
        "Links are read off the model's attention while it force-decodes each reference as "
        "given; gold sets are usually lower-cased and tokenized, so upload their text too."
    )
    left, middle, right = st.columns(3)
    fmt = left.radio("Format", FORMATS, format_func=FORMAT_NAMES.get, key="gold_format")
    method = middle.selectbox(
        "Links from attention by",
        DIRECTIONAL_METHODS,
        index=DIRECTIONAL_METHODS.index(DEFAULT_METHOD),
        key="align_method",
    )
    target_first = right.checkbox("The file lists the reference's word first", key="gold_swap")
    zero_based = right.checkbox(
        "NAACL word indices are 0-based", key="gold_zero", disabled=fmt != "naacl"
    )
    file = st.file_uploader("Gold links", key="run_gold", max_upload_size=MAX_TEXT_MB)
    if file is None:
        return None
    try:
        gold = read_gold_upload(
            file.getvalue(), file.name, fmt, corpus, target_first, one_based=not zero_based
        )
    except InputError as exc:
        st.error(markdown_literal(str(exc)))
        return None

    def check(source: str, reference: str | None) -> None:
        opened.translator.source_ids(source)
        opened.translator.target_ids(reference or "")

    def links(lines: tuple[int, ...], sources: tuple[str, ...], references) -> list:
        return cached_links(opened.key, method, sources, references, opened.translator)

    predicted = each_batch_with_progress(corpus, "Aligning", check, links)
    return None if predicted is None else ([set(p) for p in predicted], gold, method)


def show_scores(scores: CorpusScores) -> None:
    columns = st.columns(4)
    if scores.quality is not None:
        columns[0].metric("BLEU", f"{scores.quality.bleu:.2f}")
        columns[1].metric("chrF", f"{scores.quality.chrf:.2f}")
    columns[2].metric("Mean attention entropy (nats)", f"{scores.mean_entropy:.3f}")
    if scores.alignment is not None:
        a = scores.alignment
        columns[3].metric("AER", f"{a.aer:.3f}", help=f"precision {a.precision:.3f}")
        st.text(
            f"Alignment ({scores.alignment_method}): AER {a.aer:.4f}, precision "
            f"{a.precision:.4f}, recall {a.recall:.4f} ({a.predicted} links predicted, "
            f"{a.sure} sure gold links)"
        )
    if scores.quality is not None:
        st.text(f"BLEU {scores.quality.bleu_signature}\nchrF {scores.quality.chrf_signature}")
    st.text(
        f"{scores.sentences} sentences, beam {scores.beam_size}: {scores.dropped_words} source "
        f"words hardly attended (dropped?), {scores.repeated_words} attended twice or more "
        "(repeated?)"
    )


def open_in_align(sources: Sequence[str]) -> Callable[[], None]:
    """The table's on_select callback: the selected row's sentence goes into the shared text
    box and the view switches to Align. It must be a callback: those run before the script,
    while the "view" radio and "text" box can still take a new value."""

    def open_row() -> None:
        rows = st.session_state[TABLE_KEY].selection.rows
        if rows:
            st.session_state[TEXT] = sources[rows[0]][:MAX_CHARS]
            st.session_state[VIEW] = ALIGN

    return open_row


def render_run(opened: Opened, beam: int, model: str) -> None:
    """The "Run a file" section of the Checkpoint view."""
    st.subheader("Run a file")
    kind = st.radio("File", list(KINDS), format_func=KINDS.get, horizontal=True, key="run_kind")
    corpus = uploaded_corpus(kind)
    if corpus is None:
        return

    def check(source: str, reference: str | None) -> None:
        opened.translator.source_ids(source)

    def reports_of(lines: tuple[int, ...], sources: tuple[str, ...], references) -> list:
        return cached_reports(opened.key, beam, lines, sources, references, opened.translator)

    reports = each_batch_with_progress(corpus, "Translating", check, reports_of)
    if reports is None:
        return
    alignment = gold_alignment(opened, corpus) if corpus.references is not None else None
    aer = overall = method = None
    if alignment is not None:
        predicted, gold, method = alignment
        aer, overall = aer_per_sentence(predicted, gold), alignment_scores(predicted, gold)
    scores = corpus_scores(reports, beam, overall, method)
    show_scores(scores)
    table = report_table(reports, aer)
    st.dataframe(
        table,
        key=TABLE_KEY,
        on_select=open_in_align(corpus.sources),
        selection_mode="single-row",
        hide_index=True,
    )
    where = "" if opened.bundled else f" with the sidebar's model ({model})"
    st.caption(markdown_literal(f"Click a row to open its sentence in the Align view{where}."))
    stem = file_stem(CHECKPOINT, opened.translator.name, "run", kind, f"beam-{beam}")
    download_row(stem, key="run", numbers=lambda: run_numbers(scores, table), table=table)


def run_numbers(scores: CorpusScores, table: pd.DataFrame) -> dict:
    """The JSON export of a run: the corpus scores and the table's row of every sentence."""
    return {"corpus": scores, "sentences": table.to_dict(orient="records")}
