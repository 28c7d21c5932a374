"""Step through, explained: under the step figure, how this step's attention was computed
(raw scores, softmax, weights, context vector, with the scorer's formula and this sentence's
numbers) and whether attention explains the chosen token (saliency and knock-out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..analysis import Attribution, KnockOut, attribution, knock_out
from ..explain import SOFTMAX_LATEX, StepExplanation, context_latex, explain_step, softmax_latex
from ..figures.explain import saliency_figure, step_explanation_figure
from ..translator import Translation
from .downloads import download_row, file_stem, show_figure
from .messages import markdown_literal
from .models import BY_NAME, PickedModel
from .state import EXPLAIN, SALIENCY, STEP_THROUGH, flag, init_from_url, to_url

__all__ = ["evidence_cached", "render", "scores_table"]


def scores_table(explanation: StepExplanation) -> pd.DataFrame:
    """One row per source piece: position j (1-based), piece, e_j and α_j (per head)."""
    table = {"j": np.arange(1, len(explanation.source_pieces) + 1)}
    table["piece"] = explanation.source_pieces
    for h in range(explanation.heads):
        suffix = "" if explanation.heads == 1 else f" head {h + 1}"
        table[f"e_j{suffix}"] = explanation.energies[h]
        table[f"α_j{suffix}"] = explanation.weights[h]
    return pd.DataFrame(table)


def explain_section(explanation: StepExplanation, model: str) -> None:
    """The three stages of one step, each a sentence, a formula and this step's numbers."""
    formula = explanation.formula
    chosen = explanation.piece
    st.text(
        f"How step {explanation.index + 1} decided where to look before writing “{chosen}”. "
        f"The decoder's state s_(t-1) (what it has written so far) is compared with the "
        f"memory vector m_j of every source piece j. This model's scorer ({explanation.scorer}) "
        f"gives each a raw score e_j: {formula.words}."
    )
    st.latex(formula.score_latex)
    st.text(
        "The softmax turns the scores into weights α_j: raise e to each score and divide by the "
        "total, so the weights are positive and sum to 1. A score larger by 1 gets about 2.7 "
        "times the weight, so the largest score takes most of it. Only differences between "
        "scores matter: adding the same number to every score leaves the weights unchanged."
    )
    st.latex(SOFTMAX_LATEX)
    for head in range(explanation.heads):
        st.latex(softmax_latex(explanation, head))
    st.text(
        "The context vector c_t is the weights' average of the memory vectors: what the "
        "decoder reads from the source at this step, together with its own state, to choose "
        "the next token."
    )
    st.latex(formula.context_latex)
    st.latex(context_latex(explanation))
    with st.expander("Every source piece's score and weight"):
        st.dataframe(scores_table(explanation), hide_index=True)
    figure = step_explanation_figure(
        explanation, f"How {model} computed step {explanation.index + 1}"
    )
    show_figure(figure, key="explain-figure")
    st.caption(
        "Source pieces along the bottom of panels 1 and 2 (▁ marks the start of a word, </s> the "
        "end of the sentence). Panel 3: one row per source piece, its weight times its memory "
        "vector; the last row is the context vector, their sum. Colours show the sign and size "
        "of each of its numbers (scale on the right)."
    )
    download_row(
        file_stem(STEP_THROUGH, model, "explain", f"step-{explanation.index + 1}"),
        key="explain",
        figure=figure,
        numbers=lambda: explanation,
        table=scores_table(explanation),
    )


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=BY_NAME)
def evidence_cached(
    model: PickedModel, source: str, target: tuple[str, ...]
) -> tuple[Attribution, KnockOut]:
    """Saliency beside attention and the knock-out of every step of ``target`` (pieces) by
    forced decoding, cached by input: one backward pass per target piece."""
    translator = model.translator
    return attribution(translator, source, target), knock_out(translator, source, target)


def evidence_section(model: PickedModel, translation: Translation, index: int) -> None:
    """Attention beside gradient x input saliency for step ``index``, their rank correlation,
    and the chosen token's probability with its most attended source word knocked out."""
    st.text(
        "Attention shows where the model looked, not necessarily what the output depended on "
        "(Jain & Wallace 2019; Wiegreffe & Pinter 2019). Two checks for this step, by forced "
        "decoding of this translation: saliency (gradient × input: how much the chosen token's "
        "log-probability reacts to each source piece), ranked against the attention with "
        "Spearman's ρ (+1: same order, 0: unrelated); and knock-out: the most attended source "
        "word removed from this step's attention, the rest renormalised."
    )
    with st.spinner("Computing saliency (one backward pass per output piece)…"):
        attributed, knocked = evidence_cached(
            model, translation.source, tuple(translation.target_pieces)
        )
    piece = translation.target_pieces[index]
    if attributed.target_pieces[index] != piece:  # an unfinished output cut at the length limit
        st.info("This step cannot be checked: the forced decoding ends before it.")
        return
    figure = saliency_figure(
        attributed.source_pieces,
        attributed.attention[index],
        attributed.saliency[index],
        float(attributed.spearman[index]),
        f"Attention and saliency of “{piece}” (step {index + 1}), {model.name}",
    )
    show_figure(figure, key="saliency-figure")
    word = knocked.source_words[int(knocked.word[index])]
    before, after = float(knocked.prob[index]), float(knocked.knocked_prob[index])
    st.text(  # st.text: pieces and words are shown literally
        f"Knocking out “{word}”, the most attended source word at this step: "
        f"p(“{piece}”) goes from {before:.3f} to {after:.3f} ({after - before:+.3f})."
    )
    st.caption(knock_out_reading(before, after))
    download_row(
        file_stem(STEP_THROUGH, model.name, "saliency", f"step-{index + 1}"),
        key="saliency",
        figure=figure,
        numbers=lambda: {"attribution": attributed, "knock_out": knocked, "step": index + 1},
    )


def knock_out_reading(before: float, after: float) -> str:
    """A plain sentence on what a knock-out result says."""
    if after < before / 2:
        return "The probability fell by more than half: the model needed that word here."
    if after < before:
        return "The probability fell a little: that word helped, but was not all it used."
    return "The probability did not fall: this token did not depend on the word it looked at most."


def render(model: PickedModel, translation: Translation, index: int) -> None:
    """Two switches under the step figure (mirrored in the URL), each showing its explanation
    of step ``index`` (0-based) only when on, so the view stays fast while stepping."""
    init_from_url(EXPLAIN, False, flag)
    init_from_url(SALIENCY, False, flag)
    left, right = st.columns(2)
    explain = left.toggle(
        "Explain this step: scores → softmax → weights → context vector", key=EXPLAIN
    )
    evidence = right.toggle(
        "Does attention explain this output? Saliency and knock-out", key=SALIENCY
    )
    to_url(**{EXPLAIN: explain, SALIENCY: evidence})
    if explain:
        st.subheader(f"Explain step {index + 1}")
        unavailable = model.translator.model.missing("explain")
        if unavailable is None:
            explain_section(explain_step(model.translator, translation, index), model.name)
        else:
            st.info(markdown_literal(unavailable))
    if evidence:
        st.subheader(f"Does attention explain step {index + 1}?")
        unavailable = [model.translator.model.missing(f) for f in ("saliency", "knock_out")]
        if any(unavailable):
            st.info(markdown_literal(" ".join(reason for reason in unavailable if reason)))
        else:
            evidence_section(model, translation, index)
