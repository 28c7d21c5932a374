"""The human-annotated gold alignment sets in ../shared/data/gold, scored for model cards."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .align import (
    DIRECTIONAL_METHODS,
    SYMMETRIC_METHODS,
    GoldAlignment,
    Link,
    SkippedLink,
    alignment_scores,
    attention_links,
    null_links_of,
    read_gold,
    symmetric_links,
)
from .align.statistical import CORPUS_RUNS, CORPUS_SAMPLERS, AlignerPriors, statistical_align
from .text_lines import read_lines
from .training.adapt import ADAPT_LR, GUIDANCE_WEIGHT, adapted_both
from .translator import Translator

__all__ = [
    "GOLD_SETS",
    "GoldSet",
    "gold_alignment_metrics",
    "load_gold",
    "reference_aligner_metrics",
]


@dataclass(frozen=True)
class GoldSet:
    """A gold set whose source side is English (the models translate from English)."""

    name: str
    english: str  # file of English sentences (lower-cased, tokenized)
    other: str  # file of the other language's sentences
    links: str  # the gold link file
    english_first: bool  # True when the link file lists the English index first
    one_based: bool  # word indices in the link file


GOLD_SETS = {
    "fr": GoldSet(
        "enfr-hansards-trial (37 sentences, NAACL 2003 trial set)",
        "enfr-hansards-trial/trial.en",
        "enfr-hansards-trial/trial.fr",
        "enfr-hansards-trial/trial.wa",
        english_first=True,
        one_based=True,
    ),
    "de": GoldSet(
        "deen-europarl-100 (100 sentences, Europarl de-en)",
        "deen-europarl-100/test.en",
        "deen-europarl-100/test.de",
        "deen-europarl-100/de-en.ref.wa",
        english_first=False,
        one_based=False,
    ),
}


def load_gold(
    gold_dir: Path, gold: GoldSet
) -> tuple[list[tuple[str, str]], list[GoldAlignment], int]:
    """(English, other) sentence pairs, gold links (English word first), and how many gold
    links pointed past their sentence and were left out."""
    english, other = read_lines(gold_dir / gold.english), read_lines(gold_dir / gold.other)
    pairs = list(zip(english, other, strict=True))
    lengths = [(len(e.split()), len(o.split())) for e, o in pairs]
    if not gold.english_first:
        lengths = [(o, e) for e, o in lengths]
    skipped: list[SkippedLink] = []
    links = read_gold(
        gold_dir / gold.links,
        "naacl",
        lengths=lengths,
        one_based=gold.one_based,
        skipped=skipped,
    )
    if not gold.english_first:
        links = [g.transposed() for g in links]
    return pairs, links, len(skipped)


def gold_alignment_metrics(
    translator: Translator,
    gold_dir: Path,
    language: str,
    reverse: Translator | None = None,
    adapt_epochs: int = 0,
    aligner_corpus: Sequence[tuple[str, str]] = (),
) -> dict:
    """AER, precision and recall of every single-model method on the language's gold set, and
    of the symmetric methods too when ``reverse`` (a model translating into English) is given.

    With ``adapt_epochs`` the methods are scored again with copies of the models trained that
    many epochs on the gold pairs (:func:`attnviz.training.adapt.adapted`): under "adapted"
    with the translation loss alone and, given ``aligner_corpus`` (the model's training
    pairs), under "adapted_guided" with guidance towards eflomal's links of the gold pairs
    aligned together with it too (needs the ``attnviz[align]`` extra).
    """
    gold = GOLD_SETS[language]
    pairs, links, dropped = load_gold(gold_dir, gold)
    metrics = {
        "gold_set": gold.name,
        "methods": _method_scores(translator, reverse, pairs, links),
        "definition": (
            "AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|) (Och & Ney 2003), links summed over the "
            "set; the model force-decodes the gold target as given (lower-cased, tokenized) "
            "and links are read off its attention (attnviz.align)."
        ),
        "gold_links_outside_their_sentence_left_out": dropped,
    }
    if reverse is not None:
        metrics["reverse_model"] = reverse.name
    if adapt_epochs:
        metrics["adapted"] = _adapted_scores(translator, reverse, pairs, links, adapt_epochs)
    if adapt_epochs and aligner_corpus:
        aligner_links = statistical_align(pairs, corpus=aligner_corpus).links
        metrics["adapted_guided"] = _adapted_scores(
            translator, reverse, pairs, links, adapt_epochs, aligner_links
        )
        metrics["reference_aligner_with_training_text"] = {
            "method": "eflomal",
            "scores": _scores(aligner_links, links),
            "definition": (
                f"eflomal 2.0.0 (attnviz align --method eflomal --aligner-corpus) on the gold "
                f"pairs together with this model's training pairs: {CORPUS_RUNS} runs of "
                f"{CORPUS_SAMPLERS} samplers, both directions, grow-diag-final-and, the links "
                "most runs found; the links the adapted_guided copies were taught. Its sampler "
                "is not seeded, so runs differ."
            ),
        }
    return metrics


def _adapted_scores(
    translator: Translator,
    reverse: Translator | None,
    pairs: list[tuple[str, str]],
    links: list[GoldAlignment],
    epochs: int,
    aligner_links: list[list[Link]] | None = None,
) -> dict:
    """The methods' scores with both models first trained ``epochs`` epochs on the pairs,
    guided towards ``aligner_links`` (eflomal's, with the training text) when given."""
    there, back = adapted_both(translator, reverse, pairs, epochs, aligner_links)
    training = "the translation loss only: no gold link and no aligner output is used"
    if aligner_links is not None:
        training = (
            f"the translation loss plus the guidance loss (weight {GUIDANCE_WEIGHT}) towards "
            "eflomal's links of the gold pairs, aligned together with the model's training "
            "pairs (attnviz align --method eflomal --aligner-corpus), the words it leaves "
            "unaligned pointed at the source </s> (null links), which the methods then leave "
            "unaligned too; one run: no gold link is used"
        )
    return {
        "epochs": epochs,
        "learning_rate": ADAPT_LR,
        "methods": _method_scores(there, back, pairs, links),
        "definition": (
            "the same methods, read off copies of the models (and of the reverse model) "
            f"trained {epochs} epochs on the gold sentence pairs themselves, as a word "
            f"aligner estimates its tables on the pairs it aligns; {training}."
        ),
    }


def _method_scores(
    translator: Translator,
    reverse: Translator | None,
    pairs: list[tuple[str, str]],
    links: list[GoldAlignment],
) -> dict:
    """Every method's scores: the directional ones, and the symmetric ones with ``reverse``."""
    # One forced decode per sentence and direction, read by every method.
    there = translator.score_batch(pairs)
    back = reverse.score_batch([(o, e) for e, o in pairs]) if reverse is not None else []
    null = null_links_of(translator, reverse)
    predicted = {
        method: [
            attention_links(t, e, o, method, null[0])
            for t, (e, o) in zip(there, pairs, strict=True)
        ]
        for method in DIRECTIONAL_METHODS
    }
    for method in SYMMETRIC_METHODS if back else ():
        predicted[method] = [
            symmetric_links(t, b, e, o, method, null)
            for t, b, (e, o) in zip(there, back, pairs, strict=True)
        ]
    return {method: _scores(found, links) for method, found in predicted.items()}


def _scores(found: list, gold: list[GoldAlignment]) -> dict:
    """AER, precision, recall and link counts of ``found`` against ``gold``, rounded."""
    return {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in asdict(alignment_scores(found, gold)).items()
    }


def reference_aligner_metrics(
    priors: AlignerPriors, gold_dir: Path, language: str, runs: int = 5
) -> dict:
    """eflomal's scores on the language's gold set, aligned with a model's ``priors``: the run
    of median AER of ``runs`` runs (its sampler is not seeded, so runs differ) and every run's
    AER. Needs the ``attnviz[align]`` extra. (Aligned together with the training text instead,
    eflomal is scored by :func:`gold_alignment_metrics`, with the links it teaches.)"""
    pairs, links, _ = load_gold(gold_dir, GOLD_SETS[language])
    scored = [_scores(statistical_align(pairs, priors).links, links) for _ in range(runs)]
    median = statistics.median_low(s["aer"] for s in scored)
    return {
        "method": "eflomal",
        f"median_of_{runs}_runs": next(s for s in scored if s["aer"] == median),
        f"aer_of_{runs}_runs": sorted(s["aer"] for s in scored),
        "definition": (
            "eflomal 2.0.0 (attnviz align --method eflomal) on the gold pairs alone, with the "
            "priors in aligner_priors.txt.gz counted from its links of this model's training "
            "pairs (both directions, grow-diag-final-and); its sampler is not seeded, so runs "
            "differ."
        ),
    }
