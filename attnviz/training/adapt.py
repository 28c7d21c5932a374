"""A copy of a model trained on for a few epochs on the very pairs it is about to align.

Word alignment is an unsupervised task over a given parallel text: a statistical aligner
(eflomal, fast_align) estimates its tables on the pairs it aligns, which is how it copes with
text unlike its training text. A translation model trained on other text has never seen
those words in those contexts, and its attention drifts on them (on the parliamentary gold
sets, far more than on held-out text like its training text). Training a copy on the pairs
themselves gives the attention the same chance. Two ways:

- the translation loss alone: nothing but the pairs is used;
- with ``links``, guided alignment training (:mod:`attnviz.training.guidance`) on the pairs:
  the translation loss plus the cross-entropy between the attention and a word aligner's
  links of the same pairs, as guided models learn from the aligner's links of their
  training text (the aligned pairs are then part of that text, as in the evaluations of
  Garg et al. 2019). The words the aligner leaves unaligned are taught to attend to the
  source "</s>" (null links, :func:`attnviz.training.guidance.piece_links`), and the copy's
  config says so, which makes every link reader leave such words unaligned.

No gold link is used either way. The model the caller holds is left as it was.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import replace

import torch

from ..align.gold import Link
from ..errors import InputError
from ..model import AttentionRNN
from ..tokenize import Tokenizer, word_of_piece
from ..translator import Translator, torch_threads
from .batching import make_batch
from .guidance import PieceLinks, link_targets, piece_links
from .step import adam, guided_train_step, train_step

__all__ = ["ADAPT_EPOCHS", "ADAPT_LR", "GUIDANCE_WEIGHT", "adapted", "adapted_both"]

# Epochs over the pairs that the model cards report. Chosen on the development gold sets
# (5 to 120 epochs tried; see the README), never on the held-out ones.
ADAPT_EPOCHS = 60
# The bundled recipes' learning rate; 3e-4 needed more epochs for less on both dev sets.
ADAPT_LR = 1e-3
GUIDANCE_WEIGHT = 1.0  # the guided models' recipes' weight
BATCH_PAIRS = 32  # pairs per step: a small set still takes several steps an epoch
LABEL_SMOOTHING = 0.1  # as in the bundled recipes
CLIP = 1.0


def adapted(
    translator: Translator,
    pairs: Sequence[tuple[str, str]],
    epochs: int,
    *,
    links: Sequence[Iterable[Link]] | None = None,
    lr: float = ADAPT_LR,
    seed: int = 0,
) -> Translator:
    """A translator whose model is a copy of ``translator``'s trained ``epochs`` times over
    ``pairs`` (source text, target text), in batches of :data:`BATCH_PAIRS` pairs shuffled
    by ``seed`` (dropout as in training, seeded too, so the same call gives the same copy).
    ``links``: (source word, target word) links of each pair (0-based whitespace words),
    which add the guidance loss at :data:`GUIDANCE_WEIGHT`. ``epochs=0`` returns
    ``translator`` itself.

    Raises InputError for a negative ``epochs``, no pairs, or links for other pairs.
    """
    if epochs < 0:
        raise InputError(f"epochs must be 0 or more, got {epochs}")
    if epochs == 0:
        return translator
    if not pairs:
        raise InputError("no sentence pairs to adapt the model to")
    if links is not None and len(links) != len(pairs):
        raise InputError(f"{len(links)} link lines for {len(pairs)} sentence pairs")
    ids = [_pair_ids(translator, source, target) for source, target in pairs]
    # Guided copies learn the aligner's unaligned words too, where the source has a "</s>"
    # to point them at: most of what guided attention adds that the aligner has not is links
    # of words it leaves unaligned (see the README).
    null = links is not None and translator.config.source_eos
    targets = None if links is None else _piece_links(translator, pairs, ids, links, null)
    model = _trainable_copy(translator.model, null)
    with torch_threads(translator.threads), torch.random.fork_rng():
        torch.manual_seed(seed)
        _train(model, ids, targets, epochs, lr, random.Random(seed))
    kind = "adapted, guided" if links is not None else "adapted"
    # No checkpoint: the copy's weights are in no folder, and the card describes the model.
    return Translator(
        model,
        translator.source_tokenizer,
        f"{translator.name} ({kind}, {epochs} epochs)",
        translator.threads,
        translator.target_tokenizer,
        translator.decoding,
    )


def adapted_both(
    translator: Translator,
    reverse: Translator | None,
    pairs: Sequence[tuple[str, str]],
    epochs: int,
    links: Sequence[Iterable[Link]] | None = None,
) -> tuple[Translator, Translator | None]:
    """:func:`adapted` copies of ``translator`` on ``pairs`` and of ``reverse`` (a target ->
    source model, or None) on the same pairs the other way round, ``links`` flipped with them.
    """
    there = adapted(translator, pairs, epochs, links=links)
    if reverse is None:
        return there, None
    back_links = None if links is None else [[(t, s) for s, t in found] for found in links]
    back = adapted(reverse, [(t, s) for s, t in pairs], epochs, links=back_links)
    return there, back


def _train(
    model: AttentionRNN,
    ids: list[tuple[list[int], list[int]]],
    links: list[PieceLinks] | None,
    epochs: int,
    lr: float,
    order: random.Random,
) -> None:
    """``epochs`` passes of Adam over the pairs, guided where ``links`` are given."""
    optimizer = adam(model.parameters(), lr)
    c = model.config
    options = dict(clip=CLIP, label_smoothing=LABEL_SMOOTHING, pad_id=c.pad_id)
    for _ in range(epochs):
        shuffled = order.sample(range(len(ids)), len(ids))
        for start in range(0, len(shuffled), BATCH_PAIRS):
            chunk = shuffled[start : start + BATCH_PAIRS]
            batch = make_batch([ids[i] for i in chunk], c.pad_id, c.bos_id, c.eos_id, c.source_eos)
            if links is None:
                train_step(model, optimizer, batch, **options)
                continue
            targets = link_targets([links[i] for i in chunk], batch[0].shape[1], batch[2].shape[1])
            guided_train_step(
                model, optimizer, batch, targets, weight=GUIDANCE_WEIGHT, heads="all", **options
            )


def _pair_ids(translator: Translator, source: str, target: str) -> tuple[list[int], list[int]]:
    """The ids a forced decode of the pair reads, without the EOS that ``make_batch`` adds."""
    source_ids, _ = translator.source_ids(source)
    if translator.config.source_eos:
        source_ids = source_ids[:-1]
    return source_ids, translator.target_ids(target, add_eos=False)


def _piece_links(
    translator: Translator,
    pairs: Sequence[tuple[str, str]],
    ids: list[tuple[list[int], list[int]]],
    links: Sequence[Iterable[Link]],
    null: bool,
) -> list[PieceLinks]:
    """Each pair's word links as guidance targets over its pieces (``null``: unaligned target
    words to the source "</s>", see :func:`piece_links`). Raises InputError where
    the pieces make more words than the text has (a tokenizer that splits words further
    than whitespace does, as a Moses pretokenizer): the links would land on other words."""
    found = []
    for (source, target), (source_ids, target_ids), pair_links in zip(
        pairs, ids, links, strict=True
    ):
        words = [
            _words(tokenizer, piece_ids, text)
            for tokenizer, piece_ids, text in (
                (translator.source_tokenizer, source_ids, source),
                (translator.target_tokenizer, target_ids, target),
            )
        ]
        found.append(piece_links(set(pair_links), *words, null=null))
    return found


def _words(tokenizer: Tokenizer, ids: list[int], text: str) -> list[int]:
    """The whitespace word of ``text`` that each piece of ``ids`` belongs to."""
    words = word_of_piece([tokenizer.id_to_piece(i) for i in ids])
    if words and words[-1] >= len(text.split()):
        raise InputError(
            f"the model's tokenizer makes {words[-1] + 1} words of {text!r}, which has "
            f"{len(text.split())}: word links cannot guide it"
        )
    return words


def _trainable_copy(model: AttentionRNN, null_attention: bool) -> AttentionRNN:
    """A float32 copy of ``model`` in training mode, sharing no tensor with it, whose config
    says whether it is taught null links (:attr:`ModelConfig.null_attention`)."""
    config = replace(model.config, null_attention=model.config.null_attention or null_attention)
    copy = AttentionRNN(config)
    copy.load_state_dict({k: v.detach().float() for k, v in model.state_dict().items()})
    return copy.train()
