"""The recipe's data: train/dev/test pairs with no source sentence on two sides, its
tokenizer, the encoded pairs the loop trains on, and, for guided training, their links."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..data import (
    TATOEBA_LANGUAGES,
    EncodedPair,
    Pair,
    deduplicate,
    encode_pairs,
    filter_length,
    load_corpus,
    source_key,
    split_by_source,
)
from ..errors import InputError
from ..recipe import Recipe
from ..synthetic import date_pairs, reversal_pairs
from ..tokenize import SentencePieceTokenizer, Tokenizer, train_tokenizer
from .guidance import PieceLinks, read_word_links, training_piece_links

__all__ = [
    "SYNTHETIC_TASKS",
    "PreparedData",
    "kept_indices",
    "prepare_data",
    "recipe_tokenizer",
    "split_corpora",
    "target_language",
]

SYNTHETIC_TASKS = {"reversal": reversal_pairs, "dates": date_pairs}


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: list[EncodedPair]
    dev: list[EncodedPair]
    dev_pairs: list[Pair]  # the dev sentences decoded for BLEU at each validation
    test_sets: dict[str, list[Pair]]  # held out for the model card
    sizes: dict[str, int]
    # With guidance: the links of each training pair, indexed like ``train``, so that they
    # go wherever batching, shuffling and sharding send the pair's index.
    train_links: list[PieceLinks] | None = None


def split_corpora(recipe: Recipe) -> tuple[list[Pair], list[Pair], dict[str, list[Pair]]]:
    """Train pairs, dev pairs and named test sets, with no English sentence on two sides."""
    spec = recipe.data
    if spec.synthetic is not None:
        if spec.synthetic not in SYNTHETIC_TASKS:
            raise InputError(
                f"unknown synthetic task {spec.synthetic!r}; use {', '.join(SYNTHETIC_TASKS)}"
            )
        generated = SYNTHETIC_TASKS[spec.synthetic](spec.synthetic_pairs, seed=recipe.seed)
        pairs = [Pair(p.source, p.target) for p in generated]
        train, dev, test = split_by_source(pairs, spec.dev_fraction, spec.test_fraction)
        return train, dev, {spec.synthetic: test}
    train: list[Pair] = []
    dev: list[Pair] = []
    tests: dict[str, list[Pair]] = {}
    if spec.tatoeba:
        pairs = deduplicate(load_corpus({"tatoeba": spec.tatoeba}, spec.data_dir))
        t_train, t_dev, t_test = split_by_source(pairs, spec.dev_fraction, spec.test_fraction)
        train += t_train
        dev += t_dev
        tests["tatoeba"] = t_test
    if spec.multi30k:

        def part(split: str) -> list[Pair]:
            corpus = {"multi30k": spec.multi30k, "multi30k_split": split}
            return deduplicate(load_corpus(corpus, spec.data_dir))

        train += part("train")
        dev += part("val")
        tests["multi30k"] = part("test_2016_flickr")
    held_out = {source_key(p.source) for p in dev} | {
        source_key(p.source) for test in tests.values() for p in test
    }
    train = [p for p in train if source_key(p.source) not in held_out]
    if spec.reverse:
        return _swapped(train), _swapped(dev), {k: _swapped(v) for k, v in tests.items()}
    return train, dev, tests


def _swapped(pairs: list[Pair]) -> list[Pair]:
    return [Pair(p.target, p.source) for p in pairs]


def target_language(recipe: Recipe) -> str | None:
    """The language the recipe translates into ("fr", "de"), from its corpora."""
    if recipe.data.reverse:
        return "en"
    if recipe.data.multi30k:
        return recipe.data.multi30k[1]
    if recipe.data.tatoeba in TATOEBA_LANGUAGES:
        return TATOEBA_LANGUAGES[recipe.data.tatoeba][1]
    return None


def recipe_tokenizer(recipe: Recipe, train: list[Pair]) -> SentencePieceTokenizer:
    """The recipe's shared tokenizer, or a joint one trained on both sides of the pairs."""
    if recipe.tokenizer.model:
        return SentencePieceTokenizer.from_file(recipe.root / recipe.tokenizer.model)
    texts = [p.source for p in train] + [p.target for p in train]
    spec = recipe.tokenizer
    return train_tokenizer(texts, spec.vocab_size, model_type=spec.model_type)


def prepare_data(recipe: Recipe, tokenizer: Tokenizer) -> PreparedData:
    """Read, split, filter and encode the recipe's corpora; with guidance, read the links of
    the training pairs (InputError when they are missing or do not fit the pairs)."""
    unfiltered, dev, tests = split_corpora(recipe)
    spec = recipe.data
    word_links = None
    if recipe.guidance.enabled:
        word_links = read_word_links(recipe.output, unfiltered)
    train = filter_length(unfiltered, tokenizer, spec.max_pieces, spec.max_ratio)
    dev = filter_length(dev, tokenizer, spec.max_pieces)
    rng = random.Random(recipe.seed)
    dev_pairs = rng.sample(dev, min(spec.bleu_sentences, len(dev)))
    sizes = {"train": len(train), "dev": len(dev)}
    sizes.update({f"test_{name}": len(pairs) for name, pairs in tests.items()})
    encoded = encode_pairs(train, tokenizer)
    train_links = None
    if word_links is not None:
        kept = [word_links[i] for i in kept_indices(unfiltered, train)]
        train_links = training_piece_links(kept, encoded, tokenizer)
    return PreparedData(
        tokenizer,
        encoded,
        encode_pairs(dev, tokenizer),
        dev_pairs,
        tests,
        sizes,
        train_links,
    )


def kept_indices(pairs: Sequence[Pair], kept: Sequence[Pair]) -> list[int]:
    """The index in ``pairs`` of each pair of ``kept``, an in-order selection of them (what
    ``filter_length`` keeps). Equal pairs are kept or dropped together, so matching each kept
    pair with the next equal one finds exactly the kept ones."""
    indices = []
    position = 0
    for pair in kept:
        while pairs[position] != pair:
            position += 1
        indices.append(position)
        position += 1
    return indices
