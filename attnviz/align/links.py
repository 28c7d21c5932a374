"""Attention as alignment: word-level aggregation of soft attention and hard links read off it.

A link is a pair ``(source word, target word)`` of 0-based indices into the text split on
whitespace, source first, as in fast_align's Pharaoh output (:mod:`attnviz.align.gold` reads
and writes such files and scores links against gold ones). The "</s>" row and column of a
result take no part: :attr:`attnviz.translator.Score.text_attention` leaves them out.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..tokenize import without_eos
from ..translator import Decoded, Translator
from .gold import Link, sorted_links

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_SYMMETRIC_METHOD",
    "DIRECTIONAL_METHODS",
    "METHODS",
    "NULL_SHARE",
    "SYMMETRIC_METHODS",
    "THRESHOLD",
    "UNITS",
    "agreement_links",
    "align",
    "align_batch",
    "alignment_attention",
    "argmax_word_links",
    "attention_links",
    "directional_links",
    "grow_diag",
    "grow_diag_final_and",
    "null_links_of",
    "own_links",
    "symmetric_links",
    "symmetrize",
    "text_word_of_piece",
    "threshold_links",
    "word_attention",
]

DIRECTIONAL_METHODS = ("argmax", "shift", "threshold", "pieces")
SYMMETRIC_METHODS = ("intersect", "grow-diag", "agree")
METHODS = DIRECTIONAL_METHODS + SYMMETRIC_METHODS
# The single-model method with the lowest AER on the dev gold sets (Hansards trial en-fr,
# Europarl de-en) for the shipped models; the symmetric methods combine its links from the two
# directions. Unlike a per-word argmax it lets one target word link several source words.
DEFAULT_METHOD = "pieces"
# With a reverse model: the lowest AER of the symmetric methods on both dev gold sets.
DEFAULT_SYMMETRIC_METHOD = "agree"
# Fixed before looking at any gold set: a link needs a third of the target word's attention.
THRESHOLD = 0.3
# A model taught null links (ModelConfig.null_attention) says "no link" by attending to the
# source "</s>": a word that gives it more than half of its attention is left unaligned.
NULL_SHARE = 0.5
UNITS = ("words", "pieces")  # what own_links links: words of the text, or their pieces


# -- soft attention -> word attention -------------------------------------------------------


def word_attention(
    attention: np.ndarray,
    source_word_of_piece: Sequence[int],
    target_word_of_piece: Sequence[int],
) -> np.ndarray:
    """Piece attention (tgt_pieces, src_pieces) -> word attention (tgt_words, src_words).

    A source word receives the sum of its pieces' weights (rows still sum to 1); a target
    word's row is the mean of its pieces' rows.
    """
    src = np.asarray(source_word_of_piece)
    tgt = np.asarray(target_word_of_piece)
    summed = np.zeros((attention.shape[0], src.max() + 1))
    np.add.at(summed.T, src, attention.T)
    words = np.zeros((tgt.max() + 1, summed.shape[1]))
    np.add.at(words, tgt, summed)
    return words / np.bincount(tgt)[:, None]


def text_word_of_piece(
    pieces: Sequence[str],
    word_of_piece: Sequence[int],
    text: str,
    words: Sequence[str] | None = None,
) -> list[int]:
    """Word of ``text.split()`` that each piece of the text belongs to (a final "</s>" piece
    is left out, see :func:`attnviz.tokenize.without_eos`). ``word_of_piece``: the word of
    each piece as the model's tokenizer groups them (``Decoded.source_word_of_piece``);
    ``words``: those words' text (``Decoded.source_words``).

    A model whose tokenizer splits words further than whitespace does (the Moses
    pretokenizer of Joey NMT models: "shirt," -> "shirt" ",") has more words than the text;
    ``words`` then finds, in order, the text word each of them was cut from.
    Raises InputError when the pieces cannot have been made from this text. Fewer words is
    fine: a source cut at the model's limit loses its end.
    """
    pieces = without_eos(pieces)
    mapping = list(word_of_piece[: len(pieces)])
    text_words = text.split()
    if mapping and mapping[-1] >= len(text_words):
        found = _words_in_text(without_eos(words or []), text_words)
        if found is None or mapping[-1] >= len(found):
            raise InputError(
                f"the pieces {' '.join(pieces)!r} make {mapping[-1] + 1} words "
                f"but the text has {len(text_words)}: {text!r}"
            )
        mapping = [found[word] for word in mapping]
    return mapping


def _words_in_text(words: Sequence[str], text_words: Sequence[str]) -> list[int] | None:
    """For each of ``words`` (a tokenizer's words, in order), the index of the text word it is
    part of, matching their characters left to right (case-insensitively, Moses' escapes
    undone); None when they do not spell the text."""
    found: list[int] = []
    index, rest = -1, ""
    for word in words:
        token = html.unescape(word.replace("@-@", "-")).casefold()
        while not rest and index + 1 < len(text_words):
            index += 1
            rest = text_words[index].casefold()
        if not token or not rest.startswith(token):
            return None
        found.append(index)
        rest = rest[len(token) :]
    return found


def _rows(result: Decoded, shift: bool) -> np.ndarray:
    """The attention rows that stand for the target pieces, over the source pieces.

    Without ``shift`` row i is the step that predicted target piece i; with ``shift`` it is the
    step right after piece i was fed to the decoder (for the last piece, the "</s>" step).
    Returns (tgt_pieces, src_pieces) without "</s>" (:attr:`Score.text_attention`); the weight
    left out on the source "</s>" means "no link".
    """
    if not shift:
        return result.text_attention
    if not result.finished:
        raise InputError("the shift method needs a translation that ends with </s>")
    return result.attention[1:, : result.text_attention.shape[1]]


def alignment_attention(
    result: Decoded, source: str, target: str, shift: bool = False
) -> np.ndarray:
    """Word attention (tgt_words, src_words) of a forced decode of ``target`` given ``source``,
    over the words of ``source.split()`` and ``target.split()`` (see :func:`_rows`)."""
    return word_attention(
        _rows(result, shift),
        text_word_of_piece(
            result.source_pieces, result.source_word_of_piece, source, result.source_words
        ),
        text_word_of_piece(
            result.target_pieces, result.target_word_of_piece, target, result.target_words
        ),
    )


# -- attention -> hard links ----------------------------------------------------------------


def argmax_word_links(matrix: np.ndarray, target_word_of_row: Sequence[int]) -> set[Link]:
    """Each row of ``matrix`` (rows, src_words) to its most attended source word, as a link
    of the target word ``target_word_of_row[row]``."""
    best = matrix.argmax(axis=1)
    return {(int(j), int(t)) for j, t in zip(best, target_word_of_row, strict=True)}


def threshold_links(matrix: np.ndarray, threshold: float = THRESHOLD) -> set[Link]:
    """Every (source, target) word pair whose weight in ``matrix`` (tgt_words, src_words) is at
    least ``threshold``."""
    targets, sources = np.nonzero(matrix >= threshold)
    return {(int(s), int(t)) for s, t in zip(sources, targets, strict=True)}


def attention_links(
    result: Decoded, source: str, target: str, method: str, null: bool = False
) -> set[Link]:
    """Links read off the attention of ``result``, a forced decode of ``target`` given
    ``source`` (or a translation of ``source`` into ``target``), by ``method``.

    ``argmax``: each target word (mean of its pieces' rows) to its most attended source word;
    ``shift``: the same on the rows after each piece was fed; ``threshold``: every word pair
    with at least :data:`THRESHOLD` of the target word's attention; ``pieces``: each target
    piece to its most attended source word, a word pair being linked when any of their pieces
    are (the subword convention of Jalili Sabet et al. 2020), which lets one target word take
    several source words. ``null`` (a model taught null links): a target word, or for
    ``pieces`` a target piece, that rests more than :data:`NULL_SHARE` of its attention on
    the source "</s>" links nothing (``shift`` reads as without).
    """
    if method == "pieces":
        rows = _rows(result, shift=False)
        by_source_word = word_attention(
            rows,
            text_word_of_piece(
                result.source_pieces, result.source_word_of_piece, source, result.source_words
            ),
            range(rows.shape[0]),
        )
        target_words = text_word_of_piece(
            result.target_pieces, result.target_word_of_piece, target, result.target_words
        )
        dropped = _null_words(by_source_word, 1, null)
        piece_links = argmax_word_links(by_source_word, range(rows.shape[0]))
        return {(s, target_words[row]) for s, row in piece_links if row not in dropped}
    _check_directional(method)
    shift = method == "shift"
    matrix = alignment_attention(result, source, target, shift=shift)
    if method == "threshold":
        links = threshold_links(matrix)
    else:
        links = argmax_word_links(matrix, range(matrix.shape[0]))
    # A shifted row's weight on "</s>" speaks for the next word, not for its own.
    dropped = _null_words(matrix, 1, null and not shift)
    return {(s, t) for s, t in links if t not in dropped}


def _check_directional(method: str) -> None:
    if method not in DIRECTIONAL_METHODS:
        raise InputError(
            f"unknown single-model method {method!r}; use one of {', '.join(DIRECTIONAL_METHODS)}"
        )


def own_links(result: Decoded, method: str = DEFAULT_METHOD, unit: str = "words") -> set[Link]:
    """Links of a translation or score read off its own attention (what the app draws).

    ``unit="words"``: (source word, target word) over ``result.source_text_words`` and
    ``target_text_words`` by ``method`` (see :func:`attention_links`). ``unit="pieces"``:
    (source piece, target piece) over the pieces without "</s>", the pieces taking the place
    of words (``pieces`` and ``argmax`` both link each target piece to its most attended
    source piece). Either way a translation cut at the length limit keeps its last piece.
    """
    if unit == "words":
        source, target = " ".join(result.source_text_words), " ".join(result.target_text_words)
        return attention_links(result, source, target, method)
    if unit != "pieces":
        raise InputError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")
    _check_directional(method)
    matrix = _rows(result, shift=method == "shift")
    if method == "threshold":
        return threshold_links(matrix)
    return argmax_word_links(matrix, range(matrix.shape[0]))


def directional_links(
    translator: Translator, source: str, target: str, method: str = DEFAULT_METHOD
) -> set[Link]:
    """Links of one model, from its forced decode of ``target`` given ``source``."""
    result = translator.score(source, target)
    return attention_links(result, source, target, method, translator.config.null_attention)


def _neighbours(link: Link) -> list[Link]:
    s, t = link
    return [(s + ds, t + dt) for ds in (-1, 0, 1) for dt in (-1, 0, 1) if ds or dt]


def grow_diag(forward: set[Link], backward: set[Link]) -> set[Link]:
    """Koehn et al.'s grow-diag: start from the intersection and add union links next to
    (also diagonally) an alignment point while they align a still unaligned word."""
    union = forward | backward
    links = forward & backward
    grown = True
    while grown:
        grown = False
        for link in sorted(links):
            for s, t in _neighbours(link):
                if (s, t) not in union or (s, t) in links:
                    continue
                if all(a != s for a, _ in links) or all(b != t for _, b in links):
                    links.add((s, t))
                    grown = True
    return links


def final_and(links: set[Link], directions: Sequence[set[Link]]) -> set[Link]:
    """``links`` and each direction's other links, in order, that align two words
    ``links`` still leave unaligned (Koehn et al.'s "final-and")."""
    links = set(links)
    for direction in directions:
        for s, t in sorted(direction - links):
            if all(a != s for a, _ in links) and all(b != t for _, b in links):
                links.add((s, t))
    return links


def grow_diag_final_and(forward: set[Link], backward: set[Link]) -> set[Link]:
    """:func:`grow_diag`, then :func:`final_and` with the forward links first (Moses's
    default symmetrization)."""
    return final_and(grow_diag(forward, backward), (forward, backward))


def symmetrize(forward: set[Link], backward: set[Link], method: str) -> set[Link]:
    """Combine the links of a source->target and a target->source model (both as
    (source word, target word)) by ``intersect`` or ``grow-diag``."""
    if method == "intersect":
        return forward & backward
    if method == "grow-diag":
        return grow_diag(forward, backward)
    raise InputError(f"unknown symmetrization {method!r}; use one of intersect, grow-diag")


def agreement_links(
    forward: np.ndarray, backward: np.ndarray, null: tuple[bool, bool] = (False, False)
) -> set[Link]:
    """Links where both directions' word attention agree.

    forward:  (tgt_words, src_words) word attention of the source->target model
    backward: (tgt_words, src_words) the target->source model's word attention, transposed
    null:     whether each model was taught null links: a target word (forward) or source
              word (backward) that rests more than :data:`NULL_SHARE` of its attention on
              "</s>" is then left unaligned

    The product of the two (the agreement of Liang et al. 2006) is read both ways: each
    target word's best source word and each source word's best target word. The links that
    are both (the mutual argmax) are kept, then Koehn's "final-and" adds a one-way best link
    wherever both its words are still unaligned: sharp attention keeps its precise mutual
    links, diffuse attention gets the links it would otherwise lose. A side cut at a model's
    length limit keeps the words both models saw.
    """
    rows, cols = min(forward.shape[0], backward.shape[0]), min(forward.shape[1], backward.shape[1])
    forward, backward = forward[:rows, :cols], backward[:rows, :cols]
    product = forward * backward
    unaligned_targets = _null_words(forward, 1, null[0])
    unaligned_sources = _null_words(backward, 0, null[1])
    by_target = {(int(s), t) for t, s in enumerate(product.argmax(axis=1))}
    by_source = {(s, int(t)) for s, t in enumerate(product.argmax(axis=0))}
    by_target, by_source = (
        {(s, t) for s, t in links if s not in unaligned_sources and t not in unaligned_targets}
        for links in (by_target, by_source)
    )
    return final_and(by_target & by_source, (by_target, by_source))


def _null_words(attention: np.ndarray, axis: int, null: bool) -> set[int]:
    """The rows (``axis=1``) or columns (``axis=0``) of a word attention matrix whose weights,
    summed over ``axis``, leave more than :data:`NULL_SHARE` to "</s>", when their model was
    taught null links (``null``); for other models nothing is summed."""
    if not null:
        return set()
    return {int(w) for w in np.flatnonzero(attention.sum(axis=axis) < 1 - NULL_SHARE)}


def symmetric_links(
    there: Decoded,
    back: Decoded,
    source: str,
    target: str,
    method: str,
    null: tuple[bool, bool] = (False, False),
) -> set[Link]:
    """Links of ``source`` and ``target`` from both directions' forced decodes: ``there`` of
    ``target`` given ``source``, ``back`` of ``source`` given ``target``.

    ``intersect`` and ``grow-diag`` combine both models' :data:`DEFAULT_METHOD` links,
    ``agree`` their word attention (:func:`agreement_links`). ``null``: whether the model of
    ``there`` and that of ``back`` were taught null links (:func:`null_links_of`).
    """
    if method == "agree":
        return agreement_links(
            alignment_attention(there, source, target),
            alignment_attention(back, target, source).T,
            null,
        )
    forward = attention_links(there, source, target, DEFAULT_METHOD, null[0])
    backward = {(s, t) for t, s in attention_links(back, target, source, DEFAULT_METHOD, null[1])}
    return symmetrize(forward, backward, method)


def null_links_of(*translators: Translator | None) -> tuple[bool, ...]:
    """Whether each model was taught null links (:attr:`ModelConfig.null_attention`)."""
    return tuple(t is not None and t.config.null_attention for t in translators)


def align(
    translator: Translator,
    source: str,
    target: str,
    method: str = DEFAULT_METHOD,
    reverse: Translator | None = None,
) -> list[Link]:
    """Word links of ``source`` and ``target`` (words split on whitespace), sorted by target
    then source word like fast_align's output.

    The symmetric methods need ``reverse``, a model translating the target language into the
    source language (see :func:`symmetric_links`).
    """
    if method not in SYMMETRIC_METHODS:
        return sorted_links(directional_links(translator, source, target, method))
    if reverse is None:
        raise InputError(f"method {method!r} needs a reverse (target->source) model")
    there, back = translator.score(source, target), reverse.score(target, source)
    null = null_links_of(translator, reverse)
    return sorted_links(symmetric_links(there, back, source, target, method, null))


def align_batch(
    translator: Translator,
    pairs: Sequence[tuple[str, str]],
    method: str = DEFAULT_METHOD,
    reverse: Translator | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[list[Link]]:
    """:func:`align` of every (source, target) pair, in input order, the forced decodes of
    each direction done in batches (:meth:`Translator.score_batch`). ``progress`` gets the
    size of each batch done, of either direction."""
    symmetric = method in SYMMETRIC_METHODS
    if symmetric and reverse is None:
        raise InputError(f"method {method!r} needs a reverse (target->source) model")
    if not symmetric:
        _check_directional(method)
    there = translator.score_batch(pairs, progress=progress)
    null = null_links_of(translator, reverse)
    if not symmetric:
        return [
            sorted_links(attention_links(t, s, o, method, null[0]))
            for t, (s, o) in zip(there, pairs, strict=True)
        ]
    back = reverse.score_batch([(o, s) for s, o in pairs], progress=progress)
    return [
        sorted_links(symmetric_links(t, b, s, o, method, null))
        for t, b, (s, o) in zip(there, back, pairs, strict=True)
    ]
