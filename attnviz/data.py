"""Corpora for training: reading, normalisation, de-duplication, splitting and batching.

The usual pipeline, from files to batches of indices into the encoded pairs::

    pairs = deduplicate(load_corpus({"tatoeba": "eng-fra"}, data_dir))
    train, dev, test = split_by_source(pairs, dev_fraction=0.02, test_fraction=0.02)
    train = filter_length(train, tokenizer, max_pieces=50, max_ratio=3.0)
    encoded = encode_pairs(train, tokenizer)
    for batch in bucket_batches(encoded, max_tokens=4096, seed=epoch):
        ...  # attnviz.training.batching.make_batch([encoded[i] for i in batch], ...)

Every text is normalised with :func:`attnviz.tokenize.normalize_text` (NFC, any whitespace,
the narrow no-break space included, as one plain space) as it is read. Splits and batches are
deterministic: they depend on the data and the seeds only, never on the process.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InputError
from .text_lines import iter_lines, read_lines
from .tokenize import Tokenizer, normalize_text

__all__ = [
    "CORPUS_SPEC_KEYS",
    "MULTI30K_LANGUAGES",
    "MULTI30K_SPLITS",
    "SHARED_DATA_HINT",
    "TATOEBA_LANGUAGES",
    "EncodedPair",
    "Pair",
    "Split",
    "bucket_batches",
    "deduplicate",
    "encode_pairs",
    "filter_length",
    "load_corpus",
    "padding_fraction",
    "read_parallel",
    "read_tatoeba",
    "source_key",
    "split_by_source",
]

SHARED_DATA_HINT = "the corpora live in ../shared/data (see its README.md)"
TATOEBA_LANGUAGES = {"eng-fra": ("en", "fr"), "eng-deu": ("en", "de")}
MULTI30K_LANGUAGES = ("en", "de", "fr")
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")
CORPUS_SPEC_KEYS = ("tatoeba", "multi30k", "multi30k_split")

EncodedPair = tuple[list[int], list[int]]


@dataclass(frozen=True)
class Pair:
    """A source sentence and its translation, both normalised."""

    source: str
    target: str


class Split(NamedTuple):
    """Train, dev and test pairs; unpacks as ``train, dev, test``."""

    train: list[Pair]
    dev: list[Pair]
    test: list[Pair]

    def sizes(self) -> dict[str, int]:
        """Number of pairs on each side, e.g. for a model card."""
        return {name: len(pairs) for name, pairs in self._asdict().items()}


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (see :mod:`attnviz.text_lines`), gzip-compressed when
    its name ends in ``.gz``."""
    if path.suffix != ".gz":
        return read_lines(path)
    try:
        with gzip.open(path, "rb") as f:
            return list(iter_lines(f, str(path)))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a complete gzip file ({exc})") from None


def read_tatoeba(path: str | Path) -> list[Pair]:
    """Pairs of a Tatoeba export: ``english<TAB>other[<TAB>more columns]`` per line.

    Blank lines are skipped and columns after the second are ignored. A line without a tab
    raises :class:`InputError` naming the file and the (1-based) line number.
    """
    path = Path(path)
    pairs = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise InputError(
                f"{path}, line {number}: expected 'english<TAB>translation', found no tab"
            )
        pairs.append(Pair(normalize_text(columns[0]), normalize_text(columns[1])))
    return pairs


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> list[Pair]:
    """Pairs of two line-aligned files (Multi30k): line i of one translates line i of the other.

    Files ending in ``.gz`` are read as gzip. Different line counts raise :class:`InputError`.
    """
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    sources, targets = _read_lines(src_path), _read_lines(tgt_path)
    if len(sources) != len(targets):
        raise InputError(
            f"{src_path} has {len(sources)} lines but {tgt_path} has {len(targets)}; "
            "the files of a parallel corpus must be line-aligned"
        )
    return [
        Pair(normalize_text(s), normalize_text(t)) for s, t in zip(sources, targets, strict=True)
    ]


def deduplicate(pairs: Iterable[Pair]) -> list[Pair]:
    """``pairs`` without exact repeats of a (source, target) pair, in first-seen order."""
    return list(dict.fromkeys(pairs))


def source_key(text: str) -> str:
    """What makes two English sentences "the same" for splitting: case-folded, normalised."""
    return normalize_text(text.casefold())


def _unit_interval(seed_key: str, key: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (SHA-1, the same in every process)."""
    digest = hashlib.sha1(f"{seed_key}\t{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_source(
    pairs: Iterable[Pair], dev_fraction: float, test_fraction: float, seed_key: str = "attnviz"
) -> Split:
    """Deterministic train/dev/test split that never puts one source sentence on two sides.

    Each distinct :func:`source_key` goes to test with probability ``test_fraction``, to dev
    with probability ``dev_fraction``, else to train, by a hash of ``seed_key`` and the key;
    so the fractions hold for distinct sources and roughly for pairs. Input order is kept
    within each side.
    """
    if min(dev_fraction, test_fraction) < 0 or dev_fraction + test_fraction >= 1:
        raise ValueError(
            f"dev_fraction={dev_fraction} and test_fraction={test_fraction} must be "
            "non-negative and leave something for training (sum below 1)"
        )
    split = Split([], [], [])
    for pair in pairs:
        u = _unit_interval(seed_key, source_key(pair.source))
        if u < test_fraction:
            split.test.append(pair)
        elif u < test_fraction + dev_fraction:
            split.dev.append(pair)
        else:
            split.train.append(pair)
    return split


def filter_length(
    pairs: Iterable[Pair], tokenizer: Tokenizer, max_pieces: int, max_ratio: float | None = None
) -> list[Pair]:
    """Pairs whose sides both have 1 to ``max_pieces`` pieces (EOS not counted).

    With ``max_ratio``, also drop pairs whose target/source piece-count ratio is above
    ``max_ratio`` or below ``1 / max_ratio`` (likely misaligned or partial translations).
    """
    kept = []
    for pair in pairs:
        n_source, n_target = len(tokenizer.encode(pair.source)), len(tokenizer.encode(pair.target))
        if not (0 < n_source <= max_pieces and 0 < n_target <= max_pieces):
            continue
        if max_ratio is not None and max(n_target / n_source, n_source / n_target) > max_ratio:
            continue
        kept.append(pair)
    return kept


def encode_pairs(pairs: Iterable[Pair], tokenizer: Tokenizer) -> list[EncodedPair]:
    """(source ids, target ids) of each pair, without BOS/EOS (``make_batch`` adds them)."""
    return [(tokenizer.encode(p.source), tokenizer.encode(p.target)) for p in pairs]


def bucket_batches(
    encoded: Sequence[EncodedPair], max_tokens: int, seed: int, shuffle: bool = True
) -> list[list[int]]:
    """Batches of indices into ``encoded``, grouping pairs of similar length.

    Pairs are sorted by (target length, source length), ties broken at random (seeded), and
    cut into runs whose padded target size, batch size * (longest target + 1 for EOS), is at
    most ``max_tokens``. The batch order is then shuffled (seeded) unless ``shuffle`` is False.
    Every index appears in exactly one batch.
    """
    rng = random.Random(seed)
    tie_breaks = [rng.random() for _ in encoded]
    order = sorted(
        range(len(encoded)),
        key=lambda i: (len(encoded[i][1]), len(encoded[i][0]), tie_breaks[i]),
    )
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        slots = len(encoded[i][1]) + 1  # the longest target so far, as lengths never decrease
        if slots > max_tokens:
            raise ValueError(
                f"pair {i} has {slots} target tokens with EOS, over max_tokens={max_tokens}; "
                "drop long pairs with filter_length or raise max_tokens"
            )
        if (len(batch) + 1) * slots > max_tokens:
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    return batches


def padding_fraction(encoded: Sequence[EncodedPair], batches: Iterable[Sequence[int]]) -> float:
    """Fraction of the padded target slots (EOS included) of ``batches`` that are padding."""
    real = padded = 0
    for batch in batches:
        lengths = [len(encoded[i][1]) + 1 for i in batch]
        real += sum(lengths)
        padded += len(lengths) * max(lengths, default=0)
    return 1 - real / padded if padded else 0.0


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{path}: no such file; {SHARED_DATA_HINT}")
    return path


def _tatoeba_languages(name: Any) -> tuple[str, str]:
    if not isinstance(name, str) or name not in TATOEBA_LANGUAGES:
        raise InputError(f"tatoeba = {name!r}: expected one of {sorted(TATOEBA_LANGUAGES)}")
    return TATOEBA_LANGUAGES[name]


def _multi30k_languages(languages: Any) -> tuple[str, str]:
    if (
        not isinstance(languages, (list, tuple))
        or len(languages) != 2
        or languages[0] == languages[1]
        or any(lang not in MULTI30K_LANGUAGES for lang in languages)
    ):
        raise InputError(
            f"multi30k = {languages!r}: expected [source, target], two of {MULTI30K_LANGUAGES}"
        )
    return languages[0], languages[1]


def load_corpus(spec: dict[str, Any], data_dir: str | Path) -> list[Pair]:
    """The pairs a recipe's corpus ``spec`` names, read from ``data_dir`` (``../shared/data``).

    ``spec`` keys, each optional but at least one corpus required::

        tatoeba = "eng-fra"              # tatoeba/eng-fra.tsv.gz (English -> French)
        multi30k = ["en", "fr"]          # multi30k/{split}.en.gz -> multi30k/{split}.fr.gz
        multi30k_split = "train"         # or "val", "test_2016_flickr"; default "train"

    Tatoeba pairs come first, then Multi30k's; both must translate the same languages.
    Missing files, unknown keys or values raise :class:`InputError`.
    """
    data_dir = Path(data_dir)
    unknown = sorted(set(spec) - set(CORPUS_SPEC_KEYS))
    if unknown:
        raise InputError(f"corpus spec: unknown keys {unknown}; expected {CORPUS_SPEC_KEYS}")
    tatoeba, multi30k = spec.get("tatoeba"), spec.get("multi30k")
    if tatoeba is None and multi30k is None:
        raise InputError("corpus spec names no corpus: give 'tatoeba', 'multi30k' or both")
    split = spec.get("multi30k_split", "train")
    if split not in MULTI30K_SPLITS:
        raise InputError(f"multi30k_split = {split!r}: expected one of {MULTI30K_SPLITS}")
    pairs = []
    if tatoeba is not None:
        languages = _tatoeba_languages(tatoeba)
        if multi30k is not None and _multi30k_languages(multi30k) != languages:
            raise InputError(
                f"corpus spec: tatoeba {tatoeba!r} and multi30k {multi30k!r} translate "
                "different language pairs"
            )
        pairs += read_tatoeba(_require(data_dir / "tatoeba" / f"{tatoeba}.tsv.gz"))
    if multi30k is not None:
        source, target = (
            _require(data_dir / "multi30k" / f"{split}.{lang}.gz")
            for lang in _multi30k_languages(multi30k)
        )
        pairs += read_parallel(source, target)
    return pairs
