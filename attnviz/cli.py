"""The ``attnviz`` command: one function per subcommand, all returning an exit code.

Exit codes: 0 success; 1 some input lines could not be translated (the others were);
2 unusable invocation (bad arguments, unreadable model or input file, missing app).

Under ``torchrun --nproc_per_node N -m attnviz``, ``translate``, ``align`` and ``eval`` share
their input lines out over the N processes (:mod:`attnviz.sharding`); process 0 alone writes
the output, in input order, and the messages, as one process would.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from .adapter import is_factory_spec, load_factory, resolve_factory
from .align import (
    DEFAULT_METHOD,
    DEFAULT_SYMMETRIC_METHOD,
    FORMATS,
    METHODS,
    STATISTICAL_METHOD,
    SYMMETRIC_METHODS,
    AlignerPriors,
    LinkOutsideSentence,
    SkippedLink,
    align,
    align_batch,
    aligner_module,
    alignment_scores,
    format_pharaoh,
    model_priors,
    read_gold,
    read_lengths,
    read_pharaoh,
    statistical_align,
)
from .batch_search import BATCH_SIZE, READ_AHEAD_BATCHES
from .checkpoint import CARD_FILE
from .errors import AttnvizError, InputError
from .locations import APP_SCRIPT, DEFAULT_MODEL, MODELS_ENV, model_path
from .sharding import Ranks, corpus_ranks, leads
from .text_lines import read_lines
from .training.adapt import adapted_both
from .training.workers import (
    automatic_processes,
    run_workers,
    threads_per_process,
    under_launcher,
)
from .translator import Translation, Translator, load

if TYPE_CHECKING:
    from .recipe import Recipe

__all__ = ["STREAMLIT_OPTIONS", "build_parser", "main"]

# The settings of the repository's .streamlit/config.toml, which Streamlit reads only from the
# working directory: `attnviz app` runs from anywhere. Watching every imported module's file
# for changes cost the server four times the CPU of the work itself under classroom load.
STREAMLIT_OPTIONS = (
    "--server.fileWatcherType=none",
    "--server.runOnSave=false",
    "--browser.gatherUsageStats=false",
    "--client.toolbarMode=minimal",  # no Deploy button or menu in front of a class
    "--browser.serverAddress=localhost",  # no external-IP lookup at a headless start
)
MODEL_HELP = (
    f"checkpoint folder, or the name of a bundled one (default: {DEFAULT_MODEL}; "
    f"{MODELS_ENV} points to another folder of checkpoints), or module:factory for your own "
    "PyTorch model through an adapter (see the README)"
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _whole_number(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _error(message: str) -> None:
    if leads():  # under torchrun every process meets the same errors: rank 0 says them
        print(f"attnviz: {message}", file=sys.stderr)


def _load(model: str | None) -> Translator:
    """A checkpoint folder or bundled name, or ``module:factory`` (your own model through an
    adapter, see :mod:`attnviz.adapter`)."""
    if model is not None and is_factory_spec(model):
        return load_factory(model)
    return load(model_path(model))


# Lines end at "\n" (a "\r" before it is stripped with it), as attnviz.text_lines reads
# files: a lone "\r" or U+2028 inside a sentence stays in it.
TEXT_LINE_END = "\n"


def _utf8_stdin() -> TextIO:
    """Standard input read as UTF-8 whatever the locale, like the input files."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # already a text stream (a program that replaced sys.stdin)
        return sys.stdin
    return io.TextIOWrapper(
        buffer, encoding="utf-8-sig", errors="surrogateescape", newline=TEXT_LINE_END
    )


def _for_input_lines(path: str | None, handle: Callable[[Iterable[str]], int]) -> int:
    """Run ``handle`` over the lines of ``path`` (stdin when None; a byte-order mark is
    skipped); an unreadable input gives a message and exit code 2.

    Bytes that are not UTF-8 do not stop the reading: they arrive as lone surrogates, which
    the translator refuses with an InputError for that line only.
    """
    source = path or "standard input"
    try:
        if path is None:
            stdin = _utf8_stdin()
            try:
                return handle(stdin)
            finally:
                if stdin is not sys.stdin:
                    stdin.detach()  # leave sys.stdin open
        with open(
            path, encoding="utf-8-sig", errors="surrogateescape", newline=TEXT_LINE_END
        ) as lines:
            return handle(lines)
    except OSError as exc:
        _error(f"cannot read {source}: {exc.strerror}")
    return 2


# -- translate ------------------------------------------------------------------------------


def _as_json(line_number: int, t: Translation) -> dict[str, Any]:
    # float64 before rounding: a rounded float32 prints as 0.12340000271797180.
    attention = t.attention.astype("float64").round(4).tolist()
    return {
        "line": line_number,
        "text": t.text,
        "source_pieces": t.source_pieces,
        "target_pieces": t.target_pieces,
        "attention": attention,
        "hypotheses": [
            {"rank": h.rank, "text": h.text, "score": h.score, "logprob": h.logprob}
            for h in t.hypotheses
        ],
        "truncated": t.truncated,
    }


def _format(line_number: int, t: Translation, args: argparse.Namespace) -> str:
    if args.json:
        return json.dumps(_as_json(line_number, t), ensure_ascii=False)
    if args.n_best > 1:
        return "\n".join(f"{h.rank} ||| {h.score:.4f} ||| {h.text}" for h in t.hypotheses)
    return t.text


NumberedLines = list[tuple[int, str]]  # (line number from 1, line without its end)


@dataclass
class _Record:
    """What one input line gives: its output text (empty when it failed), the messages for
    standard error before it, and whether the line failed."""

    output: str
    messages: list[str] = field(default_factory=list)
    failed: bool = False


RecordsOf = Callable[[NumberedLines], list[_Record]]


def _line_chunks(
    lines: Iterable[str], batch_size: int, processes: int = 1
) -> Iterator[NumberedLines]:
    """Numbered lines in lists of ``batch_size * READ_AHEAD_BATCHES`` for each of
    ``processes``; one line at a time from a terminal or with batch size 1, so that each line
    is answered as soon as it is read."""
    interactive = batch_size == 1 or getattr(lines, "isatty", lambda: False)()
    size = 1 if interactive else batch_size * READ_AHEAD_BATCHES * processes
    chunk: NumberedLines = []
    for number, line in enumerate(lines, start=1):
        chunk.append((number, line.removesuffix("\n").removesuffix("\r")))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _translate_chunk(
    translator: Translator, texts: list[str], args: argparse.Namespace
) -> list[Translation]:
    """Translations of usable ``texts``: one by one for a single line, else in batches."""
    options = dict(beam_size=args.beam, n_best=args.n_best, max_len=args.max_len)
    if len(texts) == 1:
        return [translator.translate(texts[0], strict=args.strict, **options)]
    return translator.translate_batch(
        texts, strict=args.strict, batch_size=args.batch_size, **options
    )


def _write_records(records: Iterable[_Record]) -> bool:
    """Print each record's messages and output; whether any line failed."""
    failed = False
    for record in records:
        for message in record.messages:
            _error(message)
        # Flushed per record so that interactive use and pipes see each result at once.
        print(record.output, flush=True)
        failed |= record.failed
    return failed


def _records_of_lines(lines: Iterable[str], batch_size: int, records: RecordsOf) -> int:
    """Write the records of every chunk of lines as it is done; exit code 1 if a line failed."""
    failed = False
    for chunk in _line_chunks(lines, batch_size):
        failed |= _write_records(records(chunk))
    return 1 if failed else 0


def _records_on_ranks(ranks: Ranks, path: str | None, batch_size: int, records: RecordsOf) -> int:
    """:func:`_records_of_lines` over torchrun's processes: rank 0 reads the input a chunk at
    a time and hands it to all, each process makes the records of its share, and rank 0
    writes them all in input order. Every process returns rank 0's exit code."""
    if not ranks.leads:
        while isinstance(chunk := ranks.broadcast(None), list):
            ranks.gather(records(ranks.share(chunk)))
        return chunk  # the exit code that ended the input

    def lead(lines: Iterable[str]) -> int:
        failed = False
        for chunk in _line_chunks(lines, batch_size, ranks.world):
            ranks.broadcast(chunk)
            failed |= _write_records(ranks.gather(records(ranks.share(chunk))) or [])
        return 1 if failed else 0

    code = _for_input_lines(path, lead)
    ranks.broadcast(code)
    return code


def _records_of_input(path: str | None, batch_size: int, records: RecordsOf) -> int:
    """The records of the lines of ``path`` (stdin when None) written in input order, by
    this process alone or, under torchrun, shared out over its processes."""
    with corpus_ranks() as ranks:
        if ranks is not None:
            return _records_on_ranks(ranks, path, batch_size, records)
    return _for_input_lines(path, lambda lines: _records_of_lines(lines, batch_size, records))


def _translation_records(
    translator: Translator, chunk: NumberedLines, args: argparse.Namespace
) -> list[_Record]:
    """One record per line of ``chunk``: its translation, or the reason it has none."""
    limit = translator.config.max_src_len - 1
    refusals: dict[int, InputError] = {}
    for number, text in chunk:
        try:
            translator.source_ids(text, args.strict)
        except InputError as exc:
            refusals[number] = exc
    usable = [(number, text) for number, text in chunk if number not in refusals]
    translated = _translate_chunk(translator, [text for _, text in usable], args)
    results = dict(zip((number for number, _ in usable), translated, strict=True))
    records = []
    for number, _ in chunk:
        if number in results:
            t = results[number]
            record = _Record(_format(number, t, args))
            if t.truncated:
                record.messages.append(
                    f"line {number}: longer than the model reads ({limit} pieces); only "
                    "its beginning was translated (--strict makes this an error)"
                )
        else:
            exc = refusals[number]
            # Keep one output record per input line so outputs can be pasted next to inputs.
            output = json.dumps({"line": number, "error": str(exc)}) if args.json else ""
            record = _Record(output, [f"line {number}: {exc}"], failed=True)
        records.append(record)
    return records


def cmd_translate(args: argparse.Namespace) -> int:
    """Translate source lines (stdin or ``-i FILE``), one output record per line."""
    try:
        translator = _load(args.model)
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    args.beam = args.beam or translator.decoding.beam_size
    if args.n_best > args.beam:
        _error(f"--n-best {args.n_best} needs --beam of at least {args.n_best}")
        return 2
    return _records_of_input(
        args.input, args.batch_size, lambda chunk: _translation_records(translator, chunk, args)
    )


# -- app ------------------------------------------------------------------------------------


def cmd_app(args: argparse.Namespace) -> int:
    """Become the Streamlit server of the app (this process, so that a signal sent to its
    PID, such as ``kill -TERM``, stops the server); returns only if it cannot start."""
    from .ui.checkpoint_open import ALLOW_PATHS_ENV  # Streamlit is needed from here on anyway

    folders = [Path(f).expanduser().resolve() for f in args.allow_path]
    for folder in folders:
        if not folder.is_dir():
            _error(f"--allow-path {folder}: no such folder")
            return 2
    if folders:  # the server, which this process becomes, reads it
        os.environ[ALLOW_PATHS_ENV] = os.pathsep.join(map(str, folders))
    if args.model is not None:
        from .ui.models import ADAPTED_MODEL_ENV

        try:  # a typo is said here, before the server starts; the server builds the model
            resolve_factory(args.model)
        except AttnvizError as exc:
            _error(str(exc))
            return 2
        os.environ[ADAPTED_MODEL_ENV] = args.model
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), *STREAMLIT_OPTIONS]
    if args.port is not None:
        command.append(f"--server.port={args.port}")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, command)
    except OSError as exc:
        _error(f"cannot start the web app ({sys.executable}): {exc.strerror}")
    return 2


# -- train ----------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a recipe file; ``--resume`` continues a killed or stopped run."""
    # Imported here: the other commands need none of the training code.
    from .recipe import read_recipe
    from .training.card import write_alignment_metrics, write_test_metrics
    from .training.loop import train
    from .training.output import claim_output

    try:
        recipe = read_recipe(args.recipe)
        if args.output is not None:
            recipe.output = Path(args.output).resolve()
        if args.test_only:
            write_test_metrics(recipe)
            print(f"test metrics written to {recipe.output / CARD_FILE}")
            return 0
        if args.alignment_only:
            write_alignment_metrics(recipe)
            print(f"gold-set alignment scores written to {recipe.output / CARD_FILE}")
            return 0
        if args.max_minutes is not None:
            recipe.training.max_minutes = args.max_minutes
        processes = _training_processes(args, recipe)
        if processes > 1 and not under_launcher():
            # Refused here, once, rather than by every worker; the workers find it free.
            claim_output(recipe.output, resume=args.resume, overwrite=args.overwrite)
            threads = threads_per_process(recipe.training.threads, processes)
            code = run_workers(_worker_argv(args, recipe, processes), processes, threads)
            if code:
                stopped = "interrupted" if code == 130 else f"a training process failed ({code})"
                _error(f"{stopped}; continue the run with --resume --output {recipe.output}")
            return code
        folder = train(recipe, resume=args.resume, device=args.device, overwrite=args.overwrite)
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        if not under_launcher():
            _error("interrupted; continue the run with --resume")
        return 130
    if leads():
        print(f"checkpoint: {folder}")
    return 0


def _training_processes(args: argparse.Namespace, recipe: Recipe) -> int:
    """``--processes``, else the automatic choice; under torchrun, torchrun's (a different
    ``--processes`` is refused)."""
    if under_launcher():
        world = int(os.environ["WORLD_SIZE"])
        if args.processes not in (None, world):
            raise InputError(
                f"--processes {args.processes} under a launcher of {world} processes "
                "(torchrun --nproc_per_node): give one of the two"
            )
        return world
    spec = recipe.training
    return args.processes or automatic_processes(args.device, spec.threads, spec.max_tokens)


def _worker_argv(args: argparse.Namespace, recipe: Recipe, processes: int) -> list[str]:
    """The command line of each worker: this one, with the folder already claimed."""
    argv = ["train", args.recipe, "--output", str(recipe.output), "--device", args.device]
    argv += ["--processes", str(processes)]
    if args.resume:
        argv.append("--resume")
    if args.max_minutes is not None:
        argv += ["--max-minutes", repr(args.max_minutes)]
    return argv


# -- import ---------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    """Import a Joey NMT model folder or an OpenNMT-py checkpoint as a checkpoint folder."""
    # Imported here: only this command reads other toolkits' files.
    from .importers import import_model

    misplaced = (
        ["--src-tokenizer", "--tgt-tokenizer"] if args.toolkit == "joey" else ["--checkpoint"]
    )
    given = [flag for flag in misplaced if getattr(args, flag[2:].replace("-", "_"))]
    if given:
        _error(
            f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} not an option of "
            f"`attnviz import {args.toolkit}`"
        )
        return 2
    try:
        checkpoint = import_model(
            args.toolkit,
            args.source,
            args.output,
            overwrite=args.overwrite,
            checkpoint=args.checkpoint,
            src_tokenizer=args.src_tokenizer,
            tgt_tokenizer=args.tgt_tokenizer,
        )
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    c = checkpoint.config
    print(
        f"imported {c.cell.upper()} {c.decoder_order}-order model ({c.scorer} attention, "
        f"{c.vocab_size} target tokens)"
    )
    print(f"checkpoint: {checkpoint.path}")
    return 0


# -- eval -----------------------------------------------------------------------------------


def _translations_on_ranks(
    translator: Translator, sources: list[str], args: argparse.Namespace, ranks: Ranks
) -> list[str] | None:
    """``translate_all`` of ``sources`` shared out over torchrun's processes: all of them on
    rank 0, in input order (None on the others). Every process first checks every source, so
    that an unusable one stops them all with the same InputError."""
    from .evaluate import translate_all

    for number, text in enumerate(sources, start=1):
        try:
            translator.source_ids(text)
        except InputError as exc:
            raise InputError(f"sentence {number}: {exc}") from exc
    mine = translate_all(translator, ranks.share(sources), args.beam, batch_size=args.batch_size)
    return ranks.gather(mine)


def cmd_eval(args: argparse.Namespace) -> int:
    """Translate --src and score it against --ref: sacreBLEU and chrF with signatures."""
    from .evaluate import corpus_quality, translate_all

    try:
        sources, references = read_lines(args.src), read_lines(args.ref)
    except InputError as exc:
        _error(str(exc))
        return 2
    if len(sources) != len(references):
        _error(f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}")
        return 2
    try:
        translator = _load(args.model)
        with corpus_ranks() as ranks:
            if ranks is None:
                outputs = translate_all(translator, sources, args.beam, batch_size=args.batch_size)
            else:
                outputs = _translations_on_ranks(translator, sources, args, ranks)
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    if outputs is None:
        return 0  # a process other than rank 0, which scores and prints
    quality = corpus_quality(outputs, references)
    if args.json:
        print(json.dumps(quality.to_dict(), indent=2))
    else:
        print(f"BLEU {quality.bleu:.2f}  {quality.bleu_signature}")
        print(
            f"BLEU (lower-cased) {quality.bleu_lowercase:.2f}  {quality.bleu_lowercase_signature}"
        )
        print(f"chrF {quality.chrf:.2f}  {quality.chrf_signature}")
    return 0


# -- align ----------------------------------------------------------------------------------


def _align_pair(line: str) -> tuple[str, str]:
    source, bar, target = line.partition("|||")
    if not bar:
        raise InputError("expected 'source ||| target', found no '|||'")
    return source, target


def _alignable_pair(
    translator: Translator, reverse: Translator | None, line: str
) -> tuple[str, str]:
    """The (source, target) of a ``source ||| target`` line; raises the InputError its
    parsing or a forced decode of the pair (both ways with ``reverse``) would."""
    source, target = _align_pair(line)
    for model, given, forced in ((translator, source, target), (reverse, target, source)):
        if model is not None:
            model.source_ids(given)
            model.target_ids(forced)
    return source, target


def _alignment_records(
    translator: Translator,
    reverse: Translator | None,
    method: str,
    chunk: NumberedLines,
) -> list[_Record]:
    """One record per ``source ||| target`` line of ``chunk``: its Pharaoh line, or an empty
    line (like fast_align) and the reason."""
    pairs: dict[int, tuple[str, str]] = {}
    refusals: dict[int, str] = {}
    for number, line in chunk:
        try:
            pairs[number] = _alignable_pair(translator, reverse, line)
        except InputError as exc:
            refusals[number] = f"line {number}: {exc}"
    links: dict[int, list[tuple[int, int]]] = {}
    try:
        aligned = align_batch(translator, list(pairs.values()), method, reverse)
        links = dict(zip(pairs, aligned, strict=True))
    except InputError:  # a pair the model's words cannot map onto: find which, align the rest
        for number, pair in pairs.items():
            try:
                links[number] = align(translator, *pair, method, reverse)
            except InputError as exc:
                refusals[number] = f"line {number}: {exc}"
    return [
        _Record(format_pharaoh(links[number]))
        if number in links
        else _Record("", [refusals[number]], failed=True)
        for number, _ in chunk
    ]


def _statistical_records(
    chunk: NumberedLines, priors: AlignerPriors | None, corpus: list[tuple[str, str]]
) -> list[_Record]:
    """One record per ``source ||| target`` line of ``chunk``, the lines aligned together by
    eflomal with the model's priors or with the ``corpus`` pairs: its Pharaoh line, or an
    empty line and the reason."""
    pairs: dict[int, tuple[str, str]] = {}
    refusals: dict[int, str] = {}
    for number, line in chunk:
        try:
            source, target = _align_pair(line)
            if not source.split() or not target.split():
                raise InputError("the aligner needs words on both sides")
        except InputError as exc:
            refusals[number] = f"line {number}: {exc}"
            continue
        pairs[number] = (source, target)
    aligned = statistical_align(list(pairs.values()), priors, corpus).links if pairs else []
    links = dict(zip(pairs, aligned, strict=True))
    return [
        _Record(format_pharaoh(links[number]))
        if number in links
        else _Record("", [refusals[number]], failed=True)
        for number, _ in chunk
    ]


def _aligner_corpus(path: str | None) -> list[tuple[str, str]]:
    """The pairs of ``--aligner-corpus`` (``source ||| target`` lines, blank ones skipped);
    none without it. InputError names the file and line of a bad line."""
    if path is None:
        return []
    pairs = []
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            pairs.append(_align_pair(line))
        except InputError as exc:
            raise InputError(f"{path}, line {number}: {exc}") from None
    if not pairs:
        raise InputError(f"{path}: no 'source ||| target' lines")
    return pairs


def _aligner_evidence(
    args: argparse.Namespace,
) -> tuple[AlignerPriors | None, list[tuple[str, str]]]:
    """What eflomal aligns the input with: the ``--aligner-corpus`` pairs when given, else the
    model's priors. InputError without the extra, for a bad corpus or a model without priors."""
    aligner_module()
    corpus = _aligner_corpus(args.aligner_corpus)
    return (None if corpus else model_priors(model_path(args.model))), corpus


def _whole_input(path: str | None, why: str) -> list[str] | None:
    """Every line of the input, read before any is aligned; None (after a message) under
    torchrun, whose ranks each read a share, or when the input cannot be read."""
    with corpus_ranks() as ranks:
        if ranks is not None:
            _error(f"{why}: run it without torchrun")
            return None
    lines: list[str] = []
    code = _for_input_lines(path, lambda read: lines.extend(read) or 0)
    return None if code else lines


def _cmd_statistical_align(args: argparse.Namespace) -> int:
    if args.reverse_model is not None:
        _error(f"--method {STATISTICAL_METHOD} aligns both directions itself: no --reverse-model")
        return 2
    try:
        priors, corpus = _aligner_evidence(args)
    except AttnvizError as exc:
        _error(str(exc))
        return 2

    def records(chunk: NumberedLines) -> list[_Record]:
        return _statistical_records(chunk, priors, corpus)

    if not corpus:
        return _records_of_input(args.input, args.batch_size, records)
    # Each alignment run aligns the whole corpus too: one run for the whole input.
    lines = _whole_input(args.input, "--aligner-corpus aligns the whole input at once")
    return 2 if lines is None else _records_of_lines(lines, max(len(lines), 1), records)


def cmd_align(args: argparse.Namespace) -> int:
    """Word alignments of ``source ||| target`` lines as Pharaoh lines, one per input line."""
    if args.method == STATISTICAL_METHOD:
        if args.adapt_epochs:
            _error(f"--adapt-epochs trains the attention models, not {STATISTICAL_METHOD}")
            return 2
        return _cmd_statistical_align(args)
    method = args.method or (DEFAULT_SYMMETRIC_METHOD if args.reverse_model else DEFAULT_METHOD)
    symmetric = ", ".join(SYMMETRIC_METHODS)
    if method in SYMMETRIC_METHODS and args.reverse_model is None:
        _error(f"--method {method} needs --reverse-model (a target->source model)")
        return 2
    if method not in SYMMETRIC_METHODS and args.reverse_model is not None:
        _error(f"--reverse-model is used only by --method {symmetric}")
        return 2
    if args.adapt_guided and not args.adapt_epochs:
        _error("--adapt-guided needs --adapt-epochs N")
        return 2
    if args.aligner_corpus is not None and not args.adapt_guided:
        _error(f"--aligner-corpus is read by --method {STATISTICAL_METHOD} and --adapt-guided")
        return 2
    try:
        translator = _load(args.model)
        reverse = load(model_path(args.reverse_model)) if args.reverse_model else None
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    if args.adapt_epochs:
        return _align_adapted(args, translator, reverse, method)
    return _records_of_input(
        args.input,
        args.batch_size,
        lambda chunk: _alignment_records(translator, reverse, method, chunk),
    )


def _align_adapted(
    args: argparse.Namespace, translator: Translator, reverse: Translator | None, method: str
) -> int:
    """``align --adapt-epochs N``: read the whole input, train copies of the models on its
    alignable pairs (:func:`attnviz.training.adapt.adapted`), then align every line."""
    lines = _whole_input(args.input, "--adapt-epochs trains on the whole input at once")
    if lines is None:
        return 2
    pairs = []
    for line in lines:
        try:
            pairs.append(_alignable_pair(translator, reverse, line.rstrip("\r\n")))
        except InputError:
            continue  # reported with its line number when the lines are aligned
    if pairs:
        try:
            translator, reverse = _adapted_models(args, translator, reverse, pairs)
        except AttnvizError as exc:
            _error(str(exc))
            return 2
    return _records_of_lines(
        lines, args.batch_size, lambda chunk: _alignment_records(translator, reverse, method, chunk)
    )


def _adapted_models(
    args: argparse.Namespace,
    translator: Translator,
    reverse: Translator | None,
    pairs: list[tuple[str, str]],
) -> tuple[Translator, Translator | None]:
    """Copies of the model and the reverse model trained on ``pairs`` (guided by eflomal's
    links of them with ``--adapt-guided``: with the model's priors, or aligned together with
    the ``--aligner-corpus`` pairs)."""
    links = None
    if args.adapt_guided:
        links = statistical_align(pairs, *_aligner_evidence(args)).links
    guided = " with eflomal's links as guidance" if links is not None else ""
    _error(
        f"training copies of the models {args.adapt_epochs} epochs on {len(pairs)} pairs{guided}"
    )
    return adapted_both(translator, reverse, pairs, args.adapt_epochs, links)


def cmd_eval_align(args: argparse.Namespace) -> int:
    """AER, precision and recall of predicted Pharaoh links against a gold file."""
    skipped: list[SkippedLink] | None = [] if args.skip_bad_links else None
    try:
        lengths = read_lengths(args.text) if args.text else None
        predicted = read_pharaoh(args.pred, lengths, skipped)
        gold_lengths, sides = lengths, ("source", "target")
        if lengths and args.reverse_gold:
            gold_lengths, sides = [(t, s) for s, t in lengths], ("target", "source")
        gold = read_gold(
            args.gold,
            args.format,
            len(predicted),
            gold_lengths,
            not args.zero_based,
            sides,
            skipped,
        )
        if args.reverse_gold:
            gold = [g.transposed() for g in gold]
        if len(gold) != len(predicted):
            raise InputError(
                f"{args.pred} has {len(predicted)} lines but {args.gold} has {len(gold)}"
            )
    except LinkOutsideSentence as exc:
        _error(f"{exc} (--skip-bad-links leaves such links out)")
        return 2
    except InputError as exc:
        _error(str(exc))
        return 2
    for link in skipped or ():
        _error(f"warning: left out {link}")
    scores = alignment_scores(predicted, gold)
    print(f"AER {scores.aer:.4f}")
    print(f"precision {scores.precision:.4f}")
    print(f"recall {scores.recall:.4f}")
    counts = f"{scores.predicted} predicted links, {scores.sure} sure gold links"
    print(f"({counts}, {len(gold)} sentences)")
    return 0


# -- bench ----------------------------------------------------------------------------------


def _corpus_bench(data: Path, json_path: str | None) -> int:
    """``attnviz bench --corpus DATA``: corpus decoding one at a time against batched."""
    from .bench import progress
    from .corpus_bench import format_corpus_bench, run_corpus_bench

    try:
        cases = run_corpus_bench(data, progress)
    except (AttnvizError, OSError) as exc:
        _error(f"cannot run the corpus benchmark on {data}: {exc}")
        return 2
    print(format_corpus_bench(cases))
    if json_path:
        Path(json_path).write_text(json.dumps({"corpus": cases}, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time translation and scoring; print a table (and write JSON with --json FILE)."""
    from . import bench  # imported here: it trains a throwaway tokenizer when it has to

    if args.corpus:
        return _corpus_bench(Path(args.corpus), args.json)
    try:
        model = str(model_path(args.model)) if args.model else None
        return bench.main(model, args.runs, args.json, args.threads, not args.no_training)
    except AttnvizError as exc:
        _error(str(exc))
        return 2


# -- entry point ----------------------------------------------------------------------------


def _add_batch_size(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=BATCH_SIZE,
        metavar="N",
        help=f"{what} of similar length decoded together (default {BATCH_SIZE}); 1 decodes "
        "each line alone as soon as it is read, as from a terminal",
    )


def _add_align_parsers(commands: argparse._SubParsersAction) -> None:
    """The ``align`` and ``eval-align`` subcommands."""
    aligner = commands.add_parser(
        "align",
        help='"source ||| target" lines in, Pharaoh word links out',
        description=(
            "Word alignments read off the model's attention (forced decoding of the target). "
            "Words are split on whitespace. Each input line gives one line `i-j ...` (0-based "
            "word indices, source first, like fast_align). A line that cannot be aligned is "
            "reported on stderr and gives an empty line; the exit code is then 1."
        ),
    )
    aligner.add_argument("-m", "--model", help=f"source->target model: {MODEL_HELP}")
    aligner.add_argument("-i", "--input", metavar="FILE", help="file of lines (default: stdin)")
    aligner.add_argument(
        "--method",
        choices=(*METHODS, STATISTICAL_METHOD),
        help=f"how links are read off the attention (default: {DEFAULT_METHOD}; "
        f"{DEFAULT_SYMMETRIC_METHOD} with --reverse-model); {', '.join(SYMMETRIC_METHODS)} "
        f"combine both directions; {STATISTICAL_METHOD}: not the attention but the eflomal "
        "word aligner with the priors saved with the model (the extra attnviz[align])",
    )
    aligner.add_argument(
        "--reverse-model",
        metavar="MODEL",
        help="target->source model (checkpoint folder, or the name of a bundled one)",
    )
    aligner.add_argument(
        "--adapt-epochs",
        type=_whole_number,
        default=0,
        metavar="N",
        help="first train copies of the models (and of the reverse model) N epochs on the "
        "input's own pairs, translation loss only, as a statistical aligner estimates its "
        "tables on the text it aligns; reads the whole input before aligning (default 0: "
        "the models as they are; the model cards report 60)",
    )
    aligner.add_argument(
        "--adapt-guided",
        action="store_true",
        help="with --adapt-epochs: also guide the copies' attention towards eflomal's links of "
        "the same pairs (guided alignment training, weight 1.0), with the priors saved with "
        "the model or the --aligner-corpus (the extra attnviz[align])",
    )
    aligner.add_argument(
        "--aligner-corpus",
        metavar="FILE",
        help=f"for --method {STATISTICAL_METHOD} and --adapt-guided: align the input together "
        "with the 'source ||| target' lines of FILE (such as the model's training text) "
        "instead of using the model's priors; better links (the links most of 3 runs find), "
        "but each run aligns the whole file (1-2 minutes for 170,000 pairs) and the whole "
        "input is read first",
    )
    _add_batch_size(aligner, "pairs")
    aligner.set_defaults(func=cmd_align)

    evaluator = commands.add_parser(
        "eval-align",
        help="AER, precision and recall of Pharaoh links against gold links",
        description=(
            "AER, precision and recall (Och & Ney 2003) of predicted Pharaoh links against a "
            "gold file. Files are UTF-8 (a byte-order mark is skipped); blank lines at the end "
            "of a one-line-per-sentence gold file beyond the last sentence are ignored. A "
            "link outside its sentence is an error, unless --skip-bad-links."
        ),
    )
    evaluator.add_argument("--pred", required=True, metavar="FILE", help="Pharaoh lines")
    evaluator.add_argument("--gold", required=True, metavar="FILE", help="gold alignments")
    evaluator.add_argument(
        "--format",
        choices=FORMATS,
        default="pharaoh",
        help="gold format: pharaoh (0-based, all sure), talp (1-based, i-j sure, ipj "
        "possible), naacl (`sentence i j S|P`, 1-based; the sentence number picks the "
        "predicted line) (default: pharaoh)",
    )
    evaluator.add_argument(
        "--text",
        metavar="FILE",
        help="the `source ||| target` lines that were aligned: every link is checked against "
        "the sentence lengths",
    )
    evaluator.add_argument(
        "--zero-based",
        action="store_true",
        help="naacl word indices start at 0 (as in the de-en Europarl gold set)",
    )
    evaluator.add_argument(
        "--reverse-gold",
        action="store_true",
        help="the gold lists the target word first (e.g. de-en gold for an en->de model)",
    )
    evaluator.add_argument(
        "--skip-bad-links",
        action="store_true",
        help="leave out links that point outside their sentence (with --text, or a negative "
        "index), each named in a warning on stderr, instead of refusing the files",
    )
    evaluator.set_defaults(func=cmd_eval_align)


def _add_import_parser(commands: Any) -> None:
    importer = commands.add_parser(
        "import",
        help="turn a Joey NMT or OpenNMT-py RNN model into an attnviz checkpoint folder",
        description=(
            "attnviz import joey MODEL_DIR -o FOLDER [--checkpoint best.ckpt] reads a Joey NMT "
            "2.x model folder (config.yaml, vocabularies, tokenizer files, checkpoints); "
            "attnviz import onmt CHECKPOINT.pt -o FOLDER [--src-tokenizer F] [--tgt-tokenizer F] "
            "reads an OpenNMT-py 3.x checkpoint and the SentencePiece model or BPE codes it was "
            "trained with. FOLDER becomes an ordinary checkpoint folder (float32 weights, the "
            "toolkit's tokenizer and decoding defaults, card.json saying where it came from). "
            "Nothing in the files is run. A FOLDER that already holds anything is refused, "
            "unless --overwrite replaces its checkpoint files."
        ),
    )
    importer.add_argument("toolkit", choices=("joey", "onmt"), help="the toolkit that trained it")
    importer.add_argument(
        "source", metavar="SOURCE", help="Joey: the model folder; OpenNMT-py: the .pt file"
    )
    importer.add_argument(
        "-o", "--output", required=True, metavar="FOLDER", help="the checkpoint folder to write"
    )
    importer.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="Joey: the checkpoint in the folder (default best.ckpt, else latest.ckpt, else "
        "the highest step)",
    )
    importer.add_argument(
        "--src-tokenizer",
        metavar="FILE",
        help="OpenNMT-py: the source SentencePiece model or BPE codes the model was trained with",
    )
    importer.add_argument(
        "--tgt-tokenizer",
        metavar="FILE",
        help="OpenNMT-py: the target's (default: the source's, when the model names one file)",
    )
    importer.add_argument(
        "--overwrite", action="store_true", help="replace a checkpoint already in FOLDER"
    )
    importer.set_defaults(func=cmd_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnviz",
        description="See what an attention-based RNN translator looks at.",
    )
    parser.add_argument("--version", action="version", version=f"attnviz {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")

    app = commands.add_parser("app", help="launch the web app (same as `streamlit run app.py`)")
    app.add_argument(
        "--port",
        type=_positive_int,
        metavar="N",
        help="port to serve on (default: Streamlit's, usually 8501)",
    )
    app.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="let visitors open checkpoint folders inside DIR on this machine (repeatable; "
        "default: none, the Checkpoint view then offers no server folders)",
    )
    app.add_argument(
        "--model",
        metavar="MODULE:FACTORY",
        help="also offer your own PyTorch model, first in the model picker: FACTORY() in "
        "MODULE (a module importable from here, or path/to/file.py) returns an adapter (see "
        "attnviz.adapter); the server imports this code, a visitor never names any",
    )
    app.set_defaults(func=cmd_app)

    translate = commands.add_parser(
        "translate",
        help="lines in, translations out",
        description=(
            "Translate one sentence per line. Output has one line per input line; with "
            "--n-best N each input gives up to N lines `rank ||| score ||| text` (rank 0 is "
            "the best, score is the length-normalised log-probability). A line that cannot "
            "be translated is reported on stderr and gives one empty line (with --json, an "
            'object with "error"); the exit code is then 1.'
        ),
    )
    translate.add_argument("-m", "--model", help=MODEL_HELP)
    translate.add_argument(
        "-i", "--input", metavar="FILE", help="file of source lines (default: stdin)"
    )
    translate.add_argument(
        "--beam",
        type=_positive_int,
        default=None,
        metavar="N",
        help="beam size; 1 is greedy (default: the model's decoding beam_size, else 5)",
    )
    translate.add_argument(
        "--n-best",
        type=_positive_int,
        default=1,
        metavar="N",
        help="hypotheses per input (default 1)",
    )
    translate.add_argument(
        "--max-len",
        type=_positive_int,
        metavar="N",
        help="most target pieces (default: the model's limit)",
    )
    translate.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line: text, pieces, attention, hypotheses, truncated",
    )
    translate.add_argument(
        "--strict",
        action="store_true",
        help="a line longer than the model reads is an error (default: translate its "
        "beginning and warn)",
    )
    _add_batch_size(translate, "sentences")
    translate.set_defaults(func=cmd_translate)

    evaluate = commands.add_parser(
        "eval", help="sacreBLEU and chrF (with signatures) of a model on a test set"
    )
    evaluate.add_argument("-m", "--model", help=MODEL_HELP)
    evaluate.add_argument("--src", required=True, metavar="FILE", help="source lines")
    evaluate.add_argument("--ref", required=True, metavar="FILE", help="reference lines")
    evaluate.add_argument(
        "--beam",
        type=_positive_int,
        default=None,
        metavar="N",
        help="beam size (default: the model's decoding beam_size, else 5)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    _add_batch_size(evaluate, "sentences")
    evaluate.set_defaults(func=cmd_eval)

    _add_align_parsers(commands)

    train = commands.add_parser(
        "train",
        help="train from a recipe file, with a progress bar",
        description=(
            "Train the model a recipe (TOML) describes. The best checkpoint (by greedy dev "
            "BLEU), its history and the resumable state go to the output folder: --output, "
            "else the recipe's `output`, else runs/<name>/. A folder that already holds "
            "anything is refused, unless --resume continues the run saved there or "
            "--overwrite replaces it."
        ),
    )
    train.add_argument("recipe", metavar="RECIPE", help="recipe file (.toml)")
    train.add_argument(
        "-o", "--output", metavar="FOLDER", help="the run's folder (overrides the recipe's)"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the run saved in the output folder"
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a checkpoint or run already in the output folder",
    )
    train.add_argument(
        "--device", default="cpu", metavar="D", help="cpu (default), cuda, cuda:1 ..."
    )
    train.add_argument(
        "--max-minutes", type=float, metavar="M", help="stop after M minutes in all (overrides)"
    )
    train.add_argument(
        "--processes",
        type=_positive_int,
        metavar="N",
        help="data-parallel training processes (default on a CPU: one per core the run may "
        "use, the recipe's `threads` or every core, at most one per 500 tokens of "
        "max_tokens, the cores shared out as torch threads; 1 with --device cuda)",
    )
    train.add_argument(
        "--test-only",
        action="store_true",
        help="only score the existing checkpoint on the recipe's test sets (into card.json)",
    )
    train.add_argument(
        "--alignment-only",
        action="store_true",
        help="only score the existing checkpoint's attention on the gold alignment set",
    )
    train.set_defaults(func=cmd_train)

    _add_import_parser(commands)

    bench = commands.add_parser(
        "bench",
        help="latency figures (median and p95 of repeated runs)",
        description=(
            "Time translate (greedy and beam 5, 5/20/40-word sentences, with all traces) and "
            "score, and the 20-word beam-5 translation with one decoding thread and with "
            "torch's default, idle and next to a busy process. Uses -m MODEL, else the "
            f"bundled {DEFAULT_MODEL}; without it (says so) an untrained model of the same "
            "size (hidden 256, 8k vocabulary) held to a fixed number of steps. Progress goes "
            "to stderr."
        ),
    )
    bench.add_argument("-m", "--model", help=MODEL_HELP)
    bench.add_argument("--runs", type=_positive_int, default=20, metavar="N")
    bench.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="torch threads for training and for the thread comparison (translations "
        "decode with one)",
    )
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.add_argument(
        "--no-training", action="store_true", help="skip the training-throughput figure"
    )
    bench.add_argument(
        "--corpus",
        metavar="DATA",
        help="instead: time corpus decoding one sentence at a time and batched (attnviz eval "
        "on DATA/multi30k test, beam 5; attnviz align --reverse-model on the gold sets in "
        "DATA/gold) with the bundled en-fr, fr-en, en-de and de-en models",
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``attnviz`` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up at the last flush
    except BrokenPipeError:
        # The reader of the output went away (`attnviz ... | head`): stop quietly, as other
        # command-line tools do, and keep Python from failing again on its final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
