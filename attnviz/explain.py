"""One decoding step taken apart: the scorer's raw scores e_j, the softmax that turns them into
the weights α_j, and the context vector c_t = Σ_j α_j m_j.

The energies, weights and context are the ones the search recorded while it chose the token
(:attr:`attnviz.translator.Step.energies`, ``head_attention``, ``context``): nothing here
recomputes them. Only the values m_j the weights average are not kept in a result (one
(src_len, dim) matrix per sentence); :func:`explain_step` encodes the same source pieces again
with the same weights, which yields the values the search used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError
from .translator import Score, Translation, Translator

__all__ = [
    "ScorerFormula",
    "SCORER_FORMULAS",
    "SOFTMAX_LATEX",
    "StepExplanation",
    "context_latex",
    "explain_step",
    "softmax",
    "softmax_latex",
    "weighted_sum",
]


@dataclass(frozen=True)
class ScorerFormula:
    """How a scorer turns the decoder state s (the query) and the memory m_j into e_j, and
    how the weights make the context, as LaTeX and as plain text."""

    score_latex: str
    score_text: str
    context_latex: str
    context_text: str
    words: str  # what the score measures, for a student


_SUM = r"c_t = \sum_j \alpha_j \, m_j"
_SUM_TEXT = "c_t = Σ_j α_j · m_j"
_HEADS_SUM = (
    r"c_t = W_o \left[\sum_j \alpha^{(1)}_j (W_v m_j)^{(1)} ; \dots ; "
    r"\sum_j \alpha^{(H)}_j (W_v m_j)^{(H)}\right]"
)

SCORER_FORMULAS: dict[str, ScorerFormula] = {
    "dot": ScorerFormula(
        r"e_j = s_{t-1}^{\top} m_j",
        "e_j = s_{t-1} · m_j",
        _SUM,
        _SUM_TEXT,
        "the dot product of the decoder state with each source position's memory vector: "
        "large where the two point the same way",
    ),
    "general": ScorerFormula(
        r"e_j = s_{t-1}^{\top} W m_j",
        "e_j = s_{t-1} · (W m_j)",
        _SUM,
        _SUM_TEXT,
        "a dot product after a learned matrix W maps each memory vector into the decoder "
        "state's space",
    ),
    "additive": ScorerFormula(
        r"e_j = v^{\top} \tanh\left(W_q s_{t-1} + W_k m_j + b\right)",
        "e_j = v · tanh(W_q s_{t-1} + W_k m_j + b)",
        _SUM,
        _SUM_TEXT,
        "a small learned network (Bahdanau's concat MLP) that reads the decoder state and "
        "each memory vector together",
    ),
    "scaled_dot": ScorerFormula(
        r"e_j = \frac{s_{t-1}^{\top} m_j}{\sqrt{d}}",
        "e_j = (s_{t-1} · m_j) / √d",
        _SUM,
        _SUM_TEXT,
        "the dot product divided by √d (d = the vector size), which keeps the scores from "
        "growing with the size",
    ),
    "multihead": ScorerFormula(
        r"e^{(h)}_j = \frac{(W_q s_{t-1})^{(h)\top} (W_k m_j)^{(h)}}{\sqrt{d_h}}",
        "e_j^(h) = ((W_q s_{t-1})^(h) · (W_k m_j)^(h)) / √d_h, for each head h",
        _HEADS_SUM,
        "c_t = W_o [Σ_j α_j^(1) (W_v m_j)^(1); …; Σ_j α_j^(H) (W_v m_j)^(H)]",
        "a scaled dot product in each head's own slice of projected vectors; every head has "
        "its own softmax, and W_o mixes the heads' weighted sums into one context vector",
    ),
}

SOFTMAX_LATEX = r"\alpha_j = \frac{\exp(e_j)}{\sum_k \exp(e_k)}"


def softmax(energies: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, -inf (padding) giving exactly 0: (..., n) -> (..., n)."""
    e = np.asarray(energies, dtype=np.float64)
    shifted = np.exp(e - e.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass
class StepExplanation:
    """Step ``index`` of an output, from the scores to the context vector.

    Only real source positions are kept (padding, where the energy is -inf, is dropped).

    energies:     (heads, src_len) the scorer's raw scores e_j, as recorded
    weights:      (heads, src_len) α_j = softmax(e)_j, as recorded
    values:       (src_len, dim) the vectors m_j the weights average (multi-head: W_v m_j,
                  head h owning columns h*dim/heads .. (h+1)*dim/heads)
    weighted_sum: (dim,) Σ_j α_j m_j (multi-head: each head's sum over its own columns)
    context:      (dim,) the context vector c_t as recorded; equals ``weighted_sum`` except for
                  multi-head, where it is W_o times it
    decoder_order: "bahdanau": the query is the previous state s_{t-1}; "luong": it is the
                  new top-layer state h_t, computed before attending (Joey NMT, OpenNMT-py)
    """

    scorer: str
    index: int
    piece: str
    source_pieces: list[str]
    energies: np.ndarray
    weights: np.ndarray
    values: np.ndarray
    weighted_sum: np.ndarray
    context: np.ndarray
    decoder_order: str = "bahdanau"

    @property
    def heads(self) -> int:
        return self.energies.shape[0]

    @property
    def query(self) -> str:
        """The query's symbol (LaTeX): s_{t-1} in Bahdanau order, h_t in Luong order."""
        return "h_t" if self.decoder_order == "luong" else "s_{t-1}"

    @property
    def formula(self) -> ScorerFormula:
        """The scorer's formula, written with this model's query."""
        formula = SCORER_FORMULAS[self.scorer]
        if self.decoder_order != "luong":
            return formula
        return dataclasses.replace(
            formula,
            score_latex=formula.score_latex.replace("s_{t-1}", "h_t"),
            score_text=formula.score_text.replace("s_{t-1}", "h_t"),
        )

    @property
    def contributions(self) -> np.ndarray:
        """(src_len, dim) α_j m_j: row j is what source position j adds to the weighted sum."""
        head_dim = self.values.shape[1] // self.heads
        per_column = np.repeat(self.weights, head_dim, axis=0)  # (dim, src_len)
        return self.values * per_column.T


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ_j α_j m_j, each head over its own columns.

    weights: (heads, src_len); values: (src_len, dim) -> (dim,)
    """
    heads, dim = weights.shape[0], values.shape[1]
    split = values.reshape(values.shape[0], heads, dim // heads)  # (src_len, heads, head_dim)
    return np.einsum("hj,jhd->hd", weights, split).reshape(dim)


def _values(translator: Translator, source_ids: Sequence[int]) -> np.ndarray:
    """(src_len, dim) the values the scorer averages, from the same encoder as the search."""
    with torch.inference_mode():
        src = torch.tensor([list(source_ids)], dtype=torch.long)
        encoded = translator.model.encode(src, torch.tensor([len(source_ids)]))
    return encoded.keys.values[0].numpy().astype(np.float64)


def explain_step(
    translator: Translator, result: Translation | Score, index: int
) -> StepExplanation:
    """Step ``index`` (0-based) of ``result``, which ``translator`` made, taken apart."""
    unavailable = translator.model.missing("explain")
    if unavailable is not None:
        raise InputError(unavailable)
    if not 0 <= index < len(result.steps):
        raise InputError(f"step {index + 1} does not exist: the output has {len(result.steps)}")
    source_ids, _ = translator.source_ids(result.source)
    if [translator.source_tokenizer.id_to_piece(i) for i in source_ids] != result.source_pieces:
        raise InputError("this result was not made by this model: its source pieces differ")
    step = result.steps[index]
    energies = np.asarray(step.energies, dtype=np.float64)
    real = np.isfinite(energies).all(axis=0)  # (src_len,) False at padding
    weights = np.asarray(step.head_attention, dtype=np.float64)[:, real]
    values = _values(translator, source_ids)[real]
    return StepExplanation(
        scorer=translator.config.scorer,
        index=index,
        piece=step.piece,
        source_pieces=[p for p, keep in zip(result.source_pieces, real, strict=True) if keep],
        energies=energies[:, real],
        weights=weights,
        values=values,
        weighted_sum=weighted_sum(weights, values),
        context=np.asarray(step.context, dtype=np.float64),
        decoder_order=translator.config.decoder_order,
    )


def softmax_latex(explanation: StepExplanation, head: int = 0, shown: int = 4) -> str:
    """The softmax of ``head`` with this step's numbers, for its most attended position:
    e.g. ``\\alpha_{3} = \\frac{e^{2.10}}{e^{0.52} + e^{-1.30} + e^{2.10} + \\dots} = 0.83``.
    Positions are numbered from 1; the first ``shown`` terms of the sum are written out."""
    energies, weights = explanation.energies[head], explanation.weights[head]
    j = int(weights.argmax())
    terms = [f"e^{{{e:.2f}}}" for e in energies[:shown]]
    if len(energies) > shown:
        terms.append(rf"\dots\ ({len(energies)}\ \text{{terms}})")
    name = (
        rf"\alpha_{{{j + 1}}}"
        if explanation.heads == 1
        else rf"\alpha^{{({head + 1})}}_{{{j + 1}}}"
    )
    return rf"{name} = \frac{{e^{{{energies[j]:.2f}}}}}{{{' + '.join(terms)}}} = {weights[j]:.2f}"


def context_latex(explanation: StepExplanation, shown: int = 3) -> str:
    """The weighted sum with this step's largest weights and the norm of the context, e.g.
    ``c_t = 0.83\\,m_{3} + 0.10\\,m_{1} + \\dots``; multi-head: one line per head over
    that head's slice of the values v_j = W_v m_j."""
    norm = f"{float(np.linalg.norm(explanation.context)):.2f}"
    if explanation.heads == 1:
        terms = _largest_terms(explanation.weights[0], "m", shown)
        return rf"c_t = {terms}, \qquad \lVert c_t \rVert = {norm}"
    lines = [
        rf"\textstyle\sum_j \alpha^{{({h + 1})}}_j v^{{({h + 1})}}_j &= "
        + _largest_terms(weights, rf"v^{{({h + 1})}}", shown)
        for h, weights in enumerate(explanation.weights)
    ]
    return (
        r"\begin{aligned}"
        + r" \\ ".join([*lines, rf"\lVert c_t \rVert &= {norm}"])
        + r"\end{aligned}"
    )


def _largest_terms(weights: np.ndarray, vector: str, shown: int) -> str:
    """``0.83\\,m_{3} + 0.10\\,m_{1} + \\dots``: the ``shown`` largest weights (src_len,)."""
    order = np.argsort(-weights, kind="stable")[:shown]
    terms = [rf"{weights[j]:.2f}\,{vector}_{{{j + 1}}}" for j in order]
    if len(weights) > shown:
        terms.append(r"\dots")
    return " + ".join(terms)
