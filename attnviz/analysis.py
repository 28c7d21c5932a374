"""Attention statistics, and checks of whether attention explains the output.

- :func:`attention_entropy`: how sharp each step's attention is, and
  :func:`mean_attention_entropy`, the one "mean attention entropy" of a set of sentences;
- :func:`coverage`: the total attention each source word received (dropped, over-attended);
- :func:`agreement`: Jensen-Shannon divergence between two models' attention on one sentence;
- :func:`attribution`: gradient x input saliency of each chosen token over the source
  embeddings, beside its attention, with their Spearman rank correlation;
- :func:`knock_out`: the chosen token's probability when the most attended source word is
  removed from that step's attention (the rest renormalised).

The last two re-run :meth:`attnviz.model.AttentionRNN.decode_step`, which can impose a step's
attention in place of the scorer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .align import word_attention
from .errors import InputError
from .model import AttentionRNN, Encoded, State, cat_states
from .tokenize import group_words, without_eos
from .translator import Decoded, Score, Translator

__all__ = [
    "DROPPED",
    "OVER_ATTENDED",
    "Attribution",
    "Coverage",
    "KnockOut",
    "agreement",
    "attention_entropy",
    "attribution",
    "coverage",
    "js_divergence",
    "knock_out",
    "mean_attention_entropy",
    "spearman",
]

# Coverage limits: a source word with less total attention than DROPPED was hardly looked at;
# with more than OVER_ATTENDED it was looked at for about two target words or more.
DROPPED = 0.5
OVER_ATTENDED = 2.0


# -- statistics of attention ----------------------------------------------------------------


def attention_entropy(attention: np.ndarray) -> np.ndarray:
    """Entropy in nats of each step's attention: (tgt_len, src_len) -> (tgt_len,).

    0 when a step looks at one source token only, log(src_len) when it looks at all equally.
    """
    p = np.asarray(attention, dtype=np.float64)
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=-1)


def mean_attention_entropy(attentions: Sequence[np.ndarray]) -> float:
    """The mean attention entropy (nats) of a set of sentences: the mean of
    :func:`attention_entropy` over every output step of every sentence together.

    attentions: one (tgt_len, src_len) matrix per sentence, every row included (the step that
    produced "</s>" too) and every column (the source "</s>" too), as the model computed them.
    A sentence weighs by its number of steps (not a mean of per-sentence means); for one
    sentence it is the mean over its steps. Model cards, the Checkpoint view's file runs and
    the Compare view all report this number.
    """
    steps = np.concatenate([attention_entropy(a) for a in attentions])
    return float(steps.mean())


@dataclass
class Coverage:
    """Total attention each source word received over the target steps.

    received: (src_words,) ("</s>" left out); a word that was translated once gets about 1
    """

    words: list[str]
    received: np.ndarray
    dropped: list[int]  # words with less than ``low``
    over_attended: list[int]  # words with more than ``high``


def coverage(result: Decoded, low: float = DROPPED, high: float = OVER_ATTENDED) -> Coverage:
    """Coverage of the source words by ``result``'s attention ("</s>" row and column left
    out: :attr:`~attnviz.translator.Score.text_attention`)."""
    attention = result.text_attention  # (text tgt_len, text src_len)
    words = result.source_text_words
    received = np.bincount(
        result.source_word_of_piece[: attention.shape[1]],
        weights=attention.sum(axis=0),
        minlength=len(words),
    )
    return Coverage(
        words=words,
        received=received,
        dropped=[int(i) for i in np.flatnonzero(received < low)],
        over_attended=[int(i) for i in np.flatnonzero(received > high)],
    )


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits of each pair of rows: (n, k), (n, k) -> (n,).

    0 for identical rows, 1 for rows with no weight in common.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.where(a > 0, a / np.where(m > 0, m, 1.0), 1.0)
        return (a * np.log2(ratio)).sum(axis=-1)

    return (kl(p) + kl(q)) / 2


def agreement(first: Score, second: Score) -> np.ndarray:
    """Jensen-Shannon divergence (bits) between two models' word attention on the same pair,
    one value per target word (the "</s>" step included): (tgt_words,).

    Compared by words, so the models may have different tokenizers; score both on the same
    source and target text (``Translator.score``).
    """
    shapes = {(len(r.source_words), len(r.target_words)) for r in (first, second)}
    if len(shapes) > 1:
        raise InputError(
            "the two results are not the same sentence pair: score both models on the same "
            "source and target text"
        )
    return js_divergence(*(_words(r) for r in (first, second)))


def _words(result: Decoded) -> np.ndarray:
    """(tgt_words, src_words) word attention, "</s>" row and column included."""
    return word_attention(
        result.attention, result.source_word_of_piece, result.target_word_of_piece
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two vectors (ties get their mean rank); nan when either
    is constant."""
    ra, rb = _ranks(np.asarray(a)), _ranks(np.asarray(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    """0-based ranks of ``x`` (n,), tied values sharing their mean rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (first + (counts - 1) / 2)[inverse]


# -- re-running the decoder -----------------------------------------------------------------


@dataclass
class _Forced:
    """A teacher-forced pass over one sentence pair (T target tokens, "</s>" included).

    logprobs: (T, vocab); state: the decoder state each step started from, T rows;
    prev: (T,) the token fed at each step; weights: (T, heads, src_len)
    """

    logprobs: Tensor
    state: State
    prev: Tensor
    weights: Tensor


def _forced(model: AttentionRNN, encoded: Encoded, tgt_ids: Sequence[int]) -> _Forced:
    """Teacher-forced pass over ``tgt_ids`` (ending with "</s>") for one encoded source."""
    prev = torch.tensor([model.config.bos_id, *tgt_ids[:-1]])
    state = encoded.state
    logprobs, states, weights = [], [], []
    for t in range(len(tgt_ids)):
        states.append(state)
        step = model.decode_step(prev[t : t + 1], state, encoded)
        state = step.state
        logprobs.append(step.logprobs)
        weights.append(step.attention)
    return _Forced(torch.cat(logprobs), cat_states(states), prev, torch.cat(weights))


def _ids(
    translator: Translator, source: str, target: str | Sequence[str]
) -> tuple[list[int], list[int]]:
    """Source ids (with "</s>", cut to the model's limit) and target ids (with "</s>")."""
    src_ids, _ = translator.source_ids(source)
    return src_ids, translator.target_ids(target)


# -- attribution ----------------------------------------------------------------------------


@dataclass
class Attribution:
    """Gradient x input beside attention, for each target step of a forced decode.

    gradient_x_input: (tgt_len, src_len) d log p(y_t) / d e_j . e_j, summed over the embedding
    saliency:         (tgt_len, src_len) its absolute value, each row normalised to sum to 1
    attention:        (tgt_len, src_len) the attention of the same step
    spearman:         (tgt_len,) rank correlation of saliency and attention at each step
                      (nan where either row is constant)
    """

    source_pieces: list[str]
    target_pieces: list[str]
    gradient_x_input: np.ndarray
    saliency: np.ndarray
    attention: np.ndarray
    spearman: np.ndarray


def attribution(translator: Translator, source: str, target: str | Sequence[str]) -> Attribution:
    """Gradient x input saliency of each target token (forced decoding of ``target``) over the
    source piece embeddings, beside the attention of the step that produced it."""
    model = translator.model
    src_ids, tgt_ids = _ids(translator, source, target)
    with torch.enable_grad():
        embedded = model.source_embedding(torch.tensor([src_ids])).detach().requires_grad_(True)
        encoded = model.encode_embedded(embedded, torch.tensor([len(src_ids)]))
        forced = _forced(model, encoded, tgt_ids)
        chosen = forced.logprobs[torch.arange(len(tgt_ids)), torch.tensor(tgt_ids)]
        rows = []
        for t in range(len(tgt_ids)):
            (grad,) = torch.autograd.grad(chosen[t], embedded, retain_graph=True)
            rows.append((grad[0] * embedded[0]).sum(dim=-1))
    gxi = torch.stack(rows).detach().numpy().astype(np.float64)  # (tgt_len, src_len)
    magnitude = np.abs(gxi)
    saliency = magnitude / np.maximum(magnitude.sum(axis=1, keepdims=True), 1e-30)
    attention = forced.weights.mean(dim=1).detach().numpy().astype(np.float64)
    return Attribution(
        source_pieces=[translator.source_tokenizer.id_to_piece(i) for i in src_ids],
        target_pieces=[translator.target_tokenizer.id_to_piece(i) for i in tgt_ids],
        gradient_x_input=gxi,
        saliency=saliency,
        attention=attention,
        spearman=np.array([spearman(s, a) for s, a in zip(saliency, attention, strict=True)]),
    )


# -- knock-out ------------------------------------------------------------------------------


@dataclass
class KnockOut:
    """The chosen token's probability at each step of a forced decode, before and after the
    most attended source word is zeroed in that step's attention (and the rest renormalised).

    word:         (tgt_len,) index into ``source_words`` of the word knocked out at each step
    prob:         (tgt_len,) probability of the chosen token
    knocked_prob: (tgt_len,) the same with the word knocked out (only that step changed)
    """

    source_words: list[str]
    target_pieces: list[str]
    word: np.ndarray
    prob: np.ndarray
    knocked_prob: np.ndarray

    @property
    def change(self) -> np.ndarray:
        """(tgt_len,) knocked_prob - prob: negative where the model needed that word."""
        return self.knocked_prob - self.prob


def knock_out(translator: Translator, source: str, target: str | Sequence[str]) -> KnockOut:
    """Knock the most attended source word (never "</s>") out of each step's attention and
    see how the chosen token's probability changes, all else as in the forced decode."""
    model = translator.model
    src_ids, tgt_ids = _ids(translator, source, target)
    source_pieces = [translator.source_tokenizer.id_to_piece(i) for i in src_ids]
    word_of_piece = translator.source_tokenizer.word_of_piece
    piece_word = torch.tensor(word_of_piece(source_pieces))  # the last word is "</s>"
    text_words = len(set(word_of_piece(without_eos(source_pieces))))
    steps = len(tgt_ids)
    with torch.inference_mode():
        encoded = model.encode(torch.tensor([src_ids]), torch.tensor([len(src_ids)]))
        forced = _forced(model, encoded, tgt_ids)
        by_word = torch.zeros(steps, int(piece_word[-1]) + 1)
        by_word.index_add_(1, piece_word, forced.weights.mean(dim=1))
        word = by_word[:, :text_words].argmax(dim=1)  # (steps,)
        keep = (piece_word[None, :] != word[:, None]).to(forced.weights.dtype)  # (steps, src)
        knocked = forced.weights * keep[:, None, :]
        knocked = knocked / knocked.sum(dim=-1, keepdim=True)
        repeated = encoded.select(torch.zeros(steps, dtype=torch.long))
        logprobs = model.decode_step(forced.prev, forced.state, repeated, knocked).logprobs
    chosen = torch.tensor(tgt_ids)
    rows = torch.arange(steps)
    return KnockOut(
        source_words=group_words(translator.source_tokenizer, source_pieces),
        target_pieces=[translator.target_tokenizer.id_to_piece(i) for i in tgt_ids],
        word=word.numpy(),
        prob=forced.logprobs[rows, chosen].exp().numpy().astype(np.float64),
        knocked_prob=logprobs[rows, chosen].exp().numpy().astype(np.float64),
    )
