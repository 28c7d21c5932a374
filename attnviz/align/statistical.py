"""A statistical word aligner, eflomal (Östling & Tiedemann 2016), as the reference that
attention's links are measured against.

eflomal is the optional extra ``attnviz[align]``; without it every entry point raises an
:class:`InputError` that says how to install it. Words are the whitespace tokens of the text,
as everywhere in :mod:`attnviz.align`. Inside a word, punctuation is split off before
aligning ("car." -> "car", ".") because the training text is not tokenized; a word pair is
linked when any of their tokens are (the convention of the ``pieces`` method).

Both directions are aligned and combined by grow-diag-final-and. Aligning a training corpus
also gives *priors*: the counts of its links (eflomal's ``makepriors``), saved with the run, so
that later one sentence aligns alone in a fraction of a second with the corpus's knowledge.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import CheckpointError, InputError
from .gold import Link, sorted_links
from .links import grow_diag_final_and

__all__ = [
    "ALIGN_EXTRA",
    "PRIORS_FILE",
    "STATISTICAL_METHOD",
    "AlignerPriors",
    "StatisticalAlignment",
    "aligner_module",
    "model_priors",
    "read_priors",
    "statistical_align",
    "word_tokens",
    "write_priors",
]

STATISTICAL_METHOD = "eflomal"
ALIGN_EXTRA = "pip install 'attnviz[align]'"
# Saved with a run (its output folder is also its checkpoint folder): eflomal's priors file,
# gzip-compressed.
PRIORS_FILE = "aligner_priors.txt.gz"
_TOKEN = re.compile(r"\w+|[^\w\s]")
# eflomal samples 5000 / sqrt(pairs) iterations, made for corpora: for one sentence 5000, most
# of its time. With priors from a training corpus, fewer pairs than this get the iterations of
# this many (158): the priors hold what the corpus taught, and the sampler settles fast.
FEW_PAIRS = 1000
SAMPLERS = 3  # independent samplers whose link counts eflomal adds up: its default
# Aligned together with a corpus, the links are what an adapted copy is taught by and the
# reference it is measured against, and the time goes into the corpus, not the pairs: 8
# samplers aligned the development gold sets better and steadier than 3 (see the README), in
# 2.2x the time.
CORPUS_SAMPLERS = 8
# ... and the links of one such run still differ from the next run's (the sampler is not
# seeded). With a corpus, this many independent runs align the pairs, and a link is kept
# where most of them have it: on the development gold sets the vote of 3 runs aligned better
# and steadier than any one run (see the README), in 3x the time.
CORPUS_RUNS = 3


def aligner_module() -> ModuleType:
    """The eflomal package, or an InputError naming the extra that installs it."""
    try:
        import eflomal
    except ImportError:
        raise InputError(
            f"the {STATISTICAL_METHOD} word aligner is not installed; install it with {ALIGN_EXTRA}"
        ) from None
    return eflomal


def word_tokens(text: str) -> tuple[list[str], list[int]]:
    """The aligner's tokens of ``text`` (lowercased, punctuation split off each whitespace
    word) and the index of the word each token belongs to.

    >>> word_tokens("The car, red.")
    (['the', 'car', ',', 'red', '.'], [0, 1, 1, 2, 2])
    """
    tokens: list[str] = []
    word_of_token: list[int] = []
    for index, word in enumerate(text.split()):
        parts = _TOKEN.findall(word.lower())  # never empty: each character matches
        tokens += parts
        word_of_token += [index] * len(parts)
    return tokens, word_of_token


@dataclass
class AlignerPriors:
    """eflomal's Dirichlet priors, counted from a corpus's links (lowercased tokens).

    lexical:   source token -> target token -> count of links
    fertility: ("FERF" source / "FERR" target side) token -> fertility -> count
    jumps:     ("HMMF" forward / "HMMR" reverse) jump -> count
    """

    lexical: dict[str, dict[str, float]] = field(default_factory=dict)
    fertility: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    jumps: dict[str, dict[int, float]] = field(default_factory=dict)

    def lines_for(
        self, sources: Iterable[str] | None = None, targets: Iterable[str] | None = None
    ) -> list[str]:
        """The lines of eflomal's priors file that concern these source and target tokens
        (None: all), and all jump priors. A short run reads only those: reading the whole
        corpus's priors would take most of its time."""
        source_set = set(self.lexical) if sources is None else set(sources)
        target_set = None if targets is None else set(targets)
        lines = [
            f"LEX\t{s}\t{t}\t{alpha:g}"
            for s in source_set
            for t, alpha in self.lexical.get(s, {}).items()
            if target_set is None or t in target_set
        ]
        for kind, tokens in (("FERF", source_set), ("FERR", target_set)):
            by_token = self.fertility.get(kind, {})
            lines += [
                f"{kind}\t{w}\t{fert}\t{alpha:g}"
                for w in (by_token if tokens is None else tokens)
                for fert, alpha in by_token.get(w, {}).items()
            ]
        for kind, by_jump in self.jumps.items():
            lines += [f"{kind}\t{jump}\t{alpha:g}" for jump, alpha in by_jump.items()]
        return lines


@dataclass
class StatisticalAlignment:
    """The aligner's links for a list of pairs, and the priors its directional links give."""

    links: list[list[Link]]  # symmetrised word links of each pair, sorted
    # Every aligned sentence's tokens and directional token links, for the priors.
    run: tuple[list[list[str]], list[list[str]], list[set[Link]], list[set[Link]]] = field(
        repr=False, compare=False
    )

    @cached_property
    def priors(self) -> AlignerPriors:
        """Counted when first asked for: aligning 37 pairs with a corpus of 166,000 took
        46 s, and counting the priors, which aligning given pairs never uses, 6 s more."""
        return _count_priors(*self.run)


def _token_links(line: str) -> set[Link]:
    return {(int(s), int(t)) for s, _, t in (link.partition("-") for link in line.split())}


def _word_links(
    token_links: set[Link], source_words: list[int], target_words: list[int]
) -> list[Link]:
    return sorted_links({(source_words[s], target_words[t]) for s, t in token_links})


def _count_priors(
    sources: list[list[str]],
    targets: list[list[str]],
    forward: list[set[Link]],
    backward: list[set[Link]],
) -> AlignerPriors:
    """Priors from the directional links, as eflomal's ``calculate_priors`` counts them."""
    module = aligner_module()
    lexical, jump_f, jump_r, fert_f, fert_r = module.calculate_priors(
        [" ".join(s) for s in sources],
        [" ".join(t) for t in targets],
        [" ".join(f"{s}-{t}" for s, t in sorted(links)) for links in forward],
        [" ".join(f"{s}-{t}" for s, t in sorted(links)) for links in backward],
    )
    priors = AlignerPriors(jumps={"HMMF": dict(jump_f), "HMMR": dict(jump_r)})
    for (s, t), alpha in lexical.items():
        priors.lexical.setdefault(s, {})[t] = alpha
    for kind, counts in (("FERF", fert_f), ("FERR", fert_r)):
        by_token: dict[str, dict[int, float]] = defaultdict(dict)
        for (token, fert), alpha in counts.items():
            by_token[token][fert] = alpha
        priors.fertility[kind] = dict(by_token)
    return priors


def statistical_align(
    pairs: Sequence[tuple[str, str]],
    priors: AlignerPriors | None = None,
    corpus: Sequence[tuple[str, str]] = (),
) -> StatisticalAlignment:
    """Word links of every (source, target) pair by eflomal, both directions combined by
    grow-diag-final-and; with ``priors`` (from a training corpus) even one pair aligns well.

    The pairs are aligned together, as one corpus: more pairs, better links. With ``corpus``
    (more pairs, such as the model's training text; those with an empty side are left out)
    they are aligned together with it, in :data:`CORPUS_RUNS` runs of :data:`CORPUS_SAMPLERS`
    samplers each, and only their own links that most runs found are returned. Each run takes
    as long as aligning the corpus (about two minutes for 170,000 pairs on 2 cores), but aligns
    better than priors counted from the same corpus (see the README). A pair with an empty
    side raises InputError.
    """
    module = aligner_module()
    tokenized = [(word_tokens(s), word_tokens(t)) for s, t in pairs]
    for number, ((source, _), (target, _)) in enumerate(tokenized, 1):
        if not source or not target:
            raise InputError(f"pair {number}: the aligner needs words on both sides")
    sources = [s for (s, _), _ in tokenized]
    targets = [t for _, (t, _) in tokenized]
    for source, target in corpus:
        source_tokens, target_tokens = word_tokens(source)[0], word_tokens(target)[0]
        if source_tokens and target_tokens:
            sources.append(source_tokens)
            targets.append(target_tokens)
    prior_lines = None
    if priors is not None:
        prior_lines = priors.lines_for(
            (w for s in sources for w in s), (w for t in targets for w in t)
        )
    few = 1.0 if priors is None else min(1.0, math.sqrt(len(sources) / FEW_PAIRS))
    aligner = module.Aligner(rel_iterations=few, n_samplers=CORPUS_SAMPLERS if corpus else SAMPLERS)
    runs = [
        _directional_links(aligner, sources, targets, prior_lines)
        for _ in range(CORPUS_RUNS if corpus else 1)
    ]
    own = len(tokenized)  # the corpus's links follow the pairs' own
    words = [(s_words, t_words) for (_, s_words), (_, t_words) in tokenized]
    links = [
        [
            _word_links(grow_diag_final_and(f, b), *pair_words)
            for f, b, pair_words in zip(forward[:own], backward[:own], words, strict=True)
        ]
        for forward, backward in runs
    ]
    return StatisticalAlignment(_most_voted(links), (sources, targets, *runs[0]))


def _directional_links(
    aligner: Any,
    sources: list[list[str]],
    targets: list[list[str]],
    prior_lines: list[str] | None,
) -> tuple[list[set[Link]], list[set[Link]]]:
    """One eflomal run: the forward and the backward token links of every pair."""
    with tempfile.TemporaryDirectory(prefix="attnviz-eflomal-") as folder:
        forward_path, backward_path = os.path.join(folder, "fwd"), os.path.join(folder, "rev")
        aligner.align(
            [" ".join(s) for s in sources],
            [" ".join(t) for t in targets],
            links_filename_fwd=forward_path,
            links_filename_rev=backward_path,
            priors_input=prior_lines,
        )
        forward = [_token_links(line) for line in Path(forward_path).read_text().splitlines()]
        backward = [_token_links(line) for line in Path(backward_path).read_text().splitlines()]
    return forward, backward


def _most_voted(runs: list[list[list[Link]]]) -> list[list[Link]]:
    """Each pair's links that more than half of the runs found (one run: all of them).

    runs: for each run, the links of each pair
    """
    votes = [Counter(link for found in pair for link in found) for pair in zip(*runs, strict=True)]
    return [sorted_links(link for link, n in pair.items() if 2 * n > len(runs)) for pair in votes]


def write_priors(path: str | Path, priors: AlignerPriors) -> None:
    """Write ``priors`` as eflomal's priors file (gzip-compressed), through a temporary file."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as f:
        for line in priors.lines_for():
            f.write(line + "\n")
    partial.replace(path)


def read_priors(path: str | Path) -> AlignerPriors:
    """Read a priors file written by :func:`write_priors` (or eflomal-makepriors, gzipped or
    not). Raises CheckpointError when it is unreadable or not a priors file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    priors = AlignerPriors()
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                _read_prior_line(priors, line.rstrip("\n").split("\t"), path, number)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read the aligner priors {path}: {exc}") from None
    return priors


def _read_prior_line(priors: AlignerPriors, fields: list[str], path: Path, number: int) -> None:
    try:
        kind, alpha = fields[0], float(fields[-1])
        if kind == "LEX" and len(fields) == 4:
            priors.lexical.setdefault(fields[1], {})[fields[2]] = alpha
        elif kind in ("FERF", "FERR") and len(fields) == 4:
            by_token = priors.fertility.setdefault(kind, {})
            by_token.setdefault(fields[1], {})[int(fields[2])] = alpha
        elif kind in ("HMMF", "HMMR") and len(fields) == 3:
            priors.jumps.setdefault(kind, {})[int(fields[1])] = alpha
        else:
            raise ValueError(kind)
    except ValueError:
        raise CheckpointError(f"{path} line {number}: not an aligner prior") from None


def model_priors(folder: str | Path) -> AlignerPriors:
    """The aligner priors saved in a checkpoint folder; InputError when it has none."""
    path = Path(folder) / PRIORS_FILE
    if not path.is_file():
        raise InputError(
            f"the model {folder} has no word aligner priors ({PRIORS_FILE}); a model trained "
            "with a [guidance] weight above 0 has them"
        )
    return read_priors(path)
