"""The ``attnviz`` command: one function per subcommand, all returning an exit code.

Exit codes: 0 success; 1 some input lines could not be translated (the others were);
2 unusable invocation (bad arguments, unreadable model or input file, missing app).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .align import (
    DEFAULT_METHOD,
    DEFAULT_SYMMETRIC_METHOD,
    FORMATS,
    METHODS,
    SYMMETRIC_METHODS,
    LinkOutsideSentence,
    SkippedLink,
    align,
    alignment_scores,
    format_pharaoh,
    read_gold,
    read_lengths,
    read_pharaoh,
)
from .checkpoint import CARD_FILE
from .errors import AttnvizError, InputError
from .text_lines import read_lines
from .translator import Translation, Translator, load

# app.py lives at the repository root, next to the package (an editable install or a clone).
APP_PATH = Path(__file__).resolve().parent.parent / "app.py"
# The essentials of .streamlit/config.toml, also as flags: they hold wherever the app is
# started from (no Deploy button or menu; no external-IP lookup at a headless start).
APP_FLAGS = ["--client.toolbarMode", "minimal", "--browser.serverAddress", "localhost"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _error(message: str) -> None:
    print(f"attnviz: {message}", file=sys.stderr)


def _for_input_lines(path: str | None, handle: Callable[[Iterable[str]], int]) -> int:
    """Run ``handle`` over the lines of ``path`` (stdin when None; a byte-order mark is
    skipped); an unreadable input gives a message and exit code 2."""
    source = path or "standard input"
    try:
        if path is None:
            return handle(sys.stdin)
        with open(path, encoding="utf-8-sig") as lines:
            return handle(lines)
    except OSError as exc:
        _error(f"cannot read {source}: {exc.strerror}")
    except UnicodeDecodeError:
        _error(f"{source} is not UTF-8 text")
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


def _translate_lines(translator: Translator, lines: Iterable[str], args: argparse.Namespace) -> int:
    """Translate each line; one output record per input line (empty on failure)."""
    failed = False
    for number, line in enumerate(lines, start=1):
        try:
            t = translator.translate(
                line.rstrip("\r\n"), beam_size=args.beam, n_best=args.n_best, max_len=args.max_len
            )
            out = _format(number, t, args)
        except InputError as exc:
            _error(f"line {number}: {exc}")
            failed = True
            # Keep one output record per input line so outputs can be pasted next to inputs.
            out = json.dumps({"line": number, "error": str(exc)}) if args.json else ""
        # Flushed per line so that interactive use and pipes see each result at once.
        print(out, flush=True)
    return 1 if failed else 0


def cmd_translate(args: argparse.Namespace) -> int:
    """Translate source lines (stdin or ``-i FILE``), one output record per line."""
    if args.n_best > args.beam:
        _error(f"--n-best {args.n_best} needs --beam of at least {args.n_best}")
        return 2
    try:
        translator = load(args.model)
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    return _for_input_lines(args.input, lambda lines: _translate_lines(translator, lines, args))


# -- app ------------------------------------------------------------------------------------


def cmd_app(args: argparse.Namespace) -> int:
    """Run the Streamlit app in this Python environment."""
    if not APP_PATH.is_file():
        _error(
            f"the web app entry point {APP_PATH} is missing; `attnviz app` runs from a clone "
            "of the repository (pip install -e .)"
        )
        return 2
    command = [sys.executable, "-m", "streamlit", "run", str(APP_PATH), *APP_FLAGS]
    if args.port is not None:
        command += ["--server.port", str(args.port)]
    try:
        # From the repository root, so that Streamlit reads its .streamlit/config.toml.
        return subprocess.run(command, check=False, cwd=APP_PATH.parent).returncode
    except KeyboardInterrupt:
        # Ctrl+C reaches Streamlit too and it shuts down itself; no traceback from us.
        return 130


# -- train ----------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a recipe file; ``--resume`` continues a killed or stopped run."""
    # Imported here: the other commands need none of the training code.
    from .recipe import read_recipe
    from .training.card import write_alignment_metrics, write_test_metrics
    from .training.loop import train

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
        folder = train(recipe, resume=args.resume, device=args.device, overwrite=args.overwrite)
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    print(f"checkpoint: {folder}")
    return 0


# -- eval -----------------------------------------------------------------------------------


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
        translator = load(args.model)
        outputs = translate_all(translator, sources, beam_size=args.beam)
    except AttnvizError as exc:
        _error(str(exc))
        return 2
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


def _align_lines(
    translator: Translator,
    reverse: Translator | None,
    method: str,
    lines: Iterable[str],
) -> int:
    """Align each ``source ||| target`` line; one Pharaoh line (empty on failure) per line."""
    failed = False
    for number, line in enumerate(lines, start=1):
        source, bar, target = line.rstrip("\r\n").partition("|||")
        out = ""
        try:
            if not bar:
                raise InputError("expected 'source ||| target', found no '|||'")
            out = format_pharaoh(align(translator, source, target, method, reverse))
        except InputError as exc:
            _error(f"line {number}: {exc}")
            failed = True
        # One output line per input line (empty when it failed), like fast_align.
        print(out, flush=True)
    return 1 if failed else 0


def cmd_align(args: argparse.Namespace) -> int:
    """Word alignments of ``source ||| target`` lines as Pharaoh lines, one per input line."""
    method = args.method or (DEFAULT_SYMMETRIC_METHOD if args.reverse_model else DEFAULT_METHOD)
    symmetric = ", ".join(SYMMETRIC_METHODS)
    if method in SYMMETRIC_METHODS and args.reverse_model is None:
        _error(f"--method {method} needs --reverse-model (a target->source model)")
        return 2
    if method not in SYMMETRIC_METHODS and args.reverse_model is not None:
        _error(f"--reverse-model is used only by --method {symmetric}")
        return 2
    try:
        translator = load(args.model)
        reverse = load(args.reverse_model) if args.reverse_model else None
    except AttnvizError as exc:
        _error(str(exc))
        return 2
    return _for_input_lines(
        args.input, lambda lines: _align_lines(translator, reverse, method, lines)
    )


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


def cmd_bench(args: argparse.Namespace) -> int:
    """Time translation and scoring; print a table (and write JSON with --json FILE)."""
    from . import bench  # imported here: it trains a throwaway tokenizer when it has to

    try:
        return bench.main(args.model, args.runs, args.json, args.threads, not args.no_training)
    except AttnvizError as exc:
        _error(str(exc))
        return 2


# -- entry point ----------------------------------------------------------------------------


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
    aligner.add_argument("-m", "--model", required=True, help="checkpoint folder (source->target)")
    aligner.add_argument("-i", "--input", metavar="FILE", help="file of lines (default: stdin)")
    aligner.add_argument(
        "--method",
        choices=METHODS,
        help=f"how links are read off the attention (default: {DEFAULT_METHOD}; "
        f"{DEFAULT_SYMMETRIC_METHOD} with --reverse-model); {', '.join(SYMMETRIC_METHODS)} "
        "combine both directions",
    )
    aligner.add_argument(
        "--reverse-model", metavar="MODEL", help="checkpoint folder of a target->source model"
    )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnviz",
        description="See what an attention-based RNN translator looks at.",
    )
    commands = parser.add_subparsers(dest="command", required=True, title="commands")

    app = commands.add_parser("app", help="launch the web app (same as `streamlit run app.py`)")
    app.add_argument(
        "--port",
        type=_positive_int,
        metavar="N",
        help="port to serve on (default: Streamlit's, usually 8501)",
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
    translate.add_argument("-m", "--model", required=True, help="checkpoint folder")
    translate.add_argument(
        "-i", "--input", metavar="FILE", help="file of source lines (default: stdin)"
    )
    translate.add_argument(
        "--beam",
        type=_positive_int,
        default=5,
        metavar="N",
        help="beam size; 1 is greedy (default 5)",
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
    translate.set_defaults(func=cmd_translate)

    evaluate = commands.add_parser(
        "eval", help="sacreBLEU and chrF (with signatures) of a model on a test set"
    )
    evaluate.add_argument("-m", "--model", required=True, help="checkpoint folder")
    evaluate.add_argument("--src", required=True, metavar="FILE", help="source lines")
    evaluate.add_argument("--ref", required=True, metavar="FILE", help="reference lines")
    evaluate.add_argument("--beam", type=_positive_int, default=5, metavar="N")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
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
    train.add_argument("recipe", help="recipe file (.toml)")
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
    train.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1 ...")
    train.add_argument(
        "--max-minutes", type=float, metavar="M", help="stop after M minutes in all (overrides)"
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

    bench = commands.add_parser(
        "bench",
        help="latency figures (median and p95 of repeated runs)",
        description=(
            "Time translate (greedy and beam 5, 5/20/40-word sentences, with all traces) and "
            "score. Uses -m MODEL, else pretrained/en-fr-additive, else an untrained model "
            "of the same size (hidden 256, 8k vocabulary) held to a fixed number of steps."
        ),
    )
    bench.add_argument("-m", "--model", help="checkpoint folder to time")
    bench.add_argument("--runs", type=_positive_int, default=20, metavar="N")
    bench.add_argument("--threads", type=_positive_int, metavar="N", help="torch threads")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.add_argument(
        "--no-training", action="store_true", help="skip the training-throughput figure"
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``attnviz`` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command in ("translate", "align", "eval"):
        # One sentence at a time is small work: a second OpenMP thread gains ~10% on an idle
        # machine and costs 10x or more when another process keeps the cores busy.
        import torch

        torch.set_num_threads(1)
    return args.func(args)
