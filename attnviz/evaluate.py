"""Translation quality: sacreBLEU (cased, with signature), lower-cased BLEU and chrF."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from sacrebleu.metrics import BLEU, CHRF

from .analysis import mean_attention_entropy
from .batch_search import BATCH_SIZE, READ_AHEAD_BATCHES
from .translator import Translator

__all__ = [
    "CLASSROOM_SENTENCES",
    "Quality",
    "corpus_quality",
    "evaluate_test_sets",
    "example_translations",
    "translate_all",
]


@dataclass
class Quality:
    """Corpus-level scores of one system output against one reference set."""

    bleu: float  # cased sacreBLEU, 13a tokenization
    bleu_signature: str
    bleu_lowercase: float  # lower-cased, 13a-tokenized BLEU (the usual figure of RNN papers)
    bleu_lowercase_signature: str
    chrf: float
    chrf_signature: str
    sentences: int

    def to_dict(self) -> dict:
        return asdict(self)


def corpus_quality(hypotheses: Sequence[str], references: Sequence[str]) -> Quality:
    """sacreBLEU (cased and lower-cased) and chrF of ``hypotheses`` against ``references``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, bleu_lc, chrf = BLEU(), BLEU(lowercase=True), CHRF()
    refs = [list(references)]
    return Quality(
        bleu=round(bleu.corpus_score(hypotheses, refs).score, 2),
        bleu_signature=str(bleu.get_signature()),
        bleu_lowercase=round(bleu_lc.corpus_score(hypotheses, refs).score, 2),
        bleu_lowercase_signature=str(bleu_lc.get_signature()),
        chrf=round(chrf.corpus_score(hypotheses, refs).score, 2),
        chrf_signature=str(chrf.get_signature()),
        sentences=len(hypotheses),
    )


def translate_all(
    translator: Translator,
    sources: Sequence[str],
    beam_size: int | None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> list[str]:
    """Best translation of every source, decoded in batches (traces are computed and
    dropped); ``beam_size`` None: the translator's default; ``progress`` gets the size of
    each batch done."""
    outputs: list[str] = []
    # Read ahead a few batches at a time, so only their traces are held at once.
    step = batch_size * READ_AHEAD_BATCHES
    for start in range(0, len(sources), step):
        translations = translator.translate_batch(
            sources[start : start + step],
            beam_size=beam_size,
            top_k=1,
            batch_size=batch_size,
            progress=progress,
        )
        outputs += [t.text for t in translations]
    return outputs


CLASSROOM_SENTENCES = (
    "It is cold today.",
    "Where do you live?",
    "The dog is running in the snow.",
    "The red car is fast.",
    "I don't know what he wants.",
)


def evaluate_test_sets(
    translator: Translator, test_sets: dict[str, Sequence], beams: Sequence[int] = (1, 5)
) -> dict:
    """Quality of ``translator`` on each named test set (lists of pairs), per beam size."""
    metrics: dict[str, dict] = {}
    for name, pairs in test_sets.items():
        references = [p.target for p in pairs]
        metrics[name] = {}
        for beam in beams:
            results = translator.translate_batch([p.source for p in pairs], beam_size=beam, top_k=1)
            label = "greedy" if beam == 1 else f"beam{beam}"
            quality = corpus_quality([r.text for r in results], references).to_dict()
            entropy = mean_attention_entropy([r.attention for r in results])
            quality["attention_entropy"] = round(entropy, 4)
            metrics[name][label] = quality
    return metrics


def example_translations(
    translator: Translator, beam_size: int = 5, sentences: Sequence[str] | None = None
) -> dict[str, str]:
    """Sentences a person will try first (everyday ones by default), and their translations."""
    chosen = CLASSROOM_SENTENCES if sentences is None else sentences
    return {s: translator.translate(s, beam_size=beam_size).text for s in chosen}
