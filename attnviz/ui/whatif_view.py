"""What-if: type a target (a reference, or another translation) and see how likely the model
finds each of its pieces and where it looked while forced to write it; then replace one piece
and let the model continue from there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..errors import InputError
from ..figures import attention_heatmap
from ..figures.captions import HEATMAP_AXES, WHATIF_BARS, WHATIF_HEATMAP
from ..figures.probability import SURPRISE, format_probability, token_probability_figure
from ..tokenize import WORD_START
from ..translator import Score, Translator
from .downloads import download_row, file_stem, show_figure
from .inputs import MAX_CHARS, beam_input, controls, sentence_input
from .messages import warn
from .models import PickedModel, score_cached, translation_or_message
from .state import EDIT, REPLACEMENT, TARGET, WHAT_IF, forget, init_from_url, to_url

__all__ = ["probability_table", "render", "replacement_pieces", "target_input"]

# Session keys (not widgets, never in the URL).
FOLLOWED = "target_followed"  # the model translation the target box last showed
SENTENCE = "target_sentence"  # the sentence the target, the edit and the replacement belong to


def target_input(sentence: str, default: str) -> str:
    """Target text box (in the URL). Until the person edits it, it follows ``default``, the
    model's own translation of the current sentence and model. A target belongs to its
    sentence: when the sentence changes, the target, the edited position and the replacement
    start afresh (a target of another sentence would be scored as if it were this one's)."""
    init_from_url(TARGET, default)
    st.session_state.setdefault(SENTENCE, sentence)  # a link's target belongs to its text
    if st.session_state[SENTENCE] != sentence:
        st.session_state[TARGET] = default
        forget(EDIT, REPLACEMENT)
    elif st.session_state.get(FOLLOWED) == st.session_state[TARGET]:
        st.session_state[TARGET] = default
    st.session_state[SENTENCE] = sentence
    st.session_state[FOLLOWED] = default
    target = st.text_area(
        "Target: a reference or another translation (the model's own by default)",
        max_chars=MAX_CHARS,
        key=TARGET,
        height=80,
    )
    to_url(**{TARGET: target})
    return target


def probability_table(score: Score) -> pd.DataFrame:
    """One row per target piece: position (1-based), piece, probability, log-prob."""
    logprobs = np.asarray(score.token_logprobs, dtype=float)
    return pd.DataFrame(
        {
            "position": np.arange(1, len(logprobs) + 1),
            "piece": score.target_pieces,
            "probability": np.exp(logprobs),
            "log-prob": logprobs,
        }
    )


def replacement_pieces(translator: Translator, typed: str) -> list[str]:
    """Pieces of what the person typed: exact pieces when it carries the "▁" word-start mark
    (as the lists show them), otherwise the tokenizer's pieces of the word(s)."""
    if WORD_START not in typed:
        return translator.target_tokenizer.pieces(typed)
    pieces = typed.split()
    piece_to_id = translator.target_tokenizer.piece_to_id
    unknown = [p for p in pieces if piece_to_id(p) == translator.config.unk_id]
    if unknown:
        raise InputError(
            f"{' '.join(unknown)}: not a piece of this model; type a plain word instead"
        )
    return pieces


def edit_inputs(score: Score) -> tuple[int, str]:
    """(1-based position to replace, what to put there), both mirrored in the URL."""
    pieces, probs = score.target_pieces, np.exp(score.token_logprobs)
    init_from_url(EDIT, 1, int)
    st.session_state[EDIT] = min(max(int(st.session_state[EDIT]), 1), len(pieces))
    init_from_url(REPLACEMENT, "")
    left, right = st.columns(2)
    position = left.selectbox(
        "Replace the piece at",
        range(1, len(pieces) + 1),
        key=EDIT,
        format_func=lambda i: f"{i}: {pieces[i - 1]} (p = {format_probability(probs[i - 1])})",
    )
    typed = right.text_input(
        "with (a word, or exact pieces with their ▁ mark)", max_chars=200, key=REPLACEMENT
    )
    to_url(**{EDIT: position, REPLACEMENT: typed})
    choices = score.steps[position - 1].candidates
    st.text(  # st.text: pieces are shown literally
        "The model's own top choices there: "
        + ", ".join(f"{c.piece} ({format_probability(c.prob)})" for c in choices)
    )
    return position, typed.strip()


def continuation(model: PickedModel, text: str, beam: int, score: Score) -> None:
    """Replace one piece of the target and show how the model goes on from there."""
    st.subheader("Edit a token and let the model continue")
    position, typed = edit_inputs(score)
    if not typed:
        st.info("Type a replacement to see how the model continues from it.")
        return
    try:
        prefix = score.target_pieces[: position - 1] + replacement_pieces(model.translator, typed)
    except InputError as exc:
        warn(str(exc))
        return
    continued = translation_or_message(
        model, text, beam, prefix=tuple(prefix), spinner="Continuing…"
    )
    if continued is None:
        return
    st.text(continued.text)
    st.caption(f"The first {len(prefix)} pieces were forced; the model wrote the rest.")
    figure = attention_heatmap(
        continued.source_pieces,
        continued.target_pieces,
        continued.attention,
        f"Attention of {model.name}, continuing after {len(prefix)} forced pieces",
    )
    tokens = [*continued.source_pieces, *continued.target_pieces]
    show_figure(figure, key="continued-heatmap", caption=HEATMAP_AXES, tokens=tokens)
    download_row(
        file_stem(WHAT_IF, model.name, f"continued-at-{position}"),
        key="continued",
        figure=figure,
        numbers=lambda: continued,
    )


def forced_decoding(model: str, score: Score) -> None:
    """Per-piece probabilities of the target and the attention while forced to write it."""
    table = probability_table(score)
    surprising = int((table["probability"] < SURPRISE).sum())
    st.subheader("How likely the model finds this target")
    st.text(
        f"log-probability {score.logprob:.2f}; {surprising} of {len(table)} pieces "
        f"below p = {SURPRISE:g}"
    )
    figure = token_probability_figure(
        score.target_pieces, score.token_logprobs, f"Probability of each target piece, {model}"
    )
    show_figure(figure, key="whatif-probabilities", caption=WHATIF_BARS, tokens=score.target_pieces)
    with st.expander("Per-piece table"):
        st.dataframe(table, hide_index=True)
    download_row(
        file_stem(WHAT_IF, model, "target"),
        key="whatif",
        figure=figure,
        numbers=lambda: score,
        table=table,
    )
    heatmap = attention_heatmap(
        score.source_pieces,
        score.target_pieces,
        score.attention,
        f"Attention of {model} while forced to write the target",
    )
    tokens = [*score.source_pieces, *score.target_pieces]
    show_figure(heatmap, key="whatif-heatmap", caption=WHATIF_HEATMAP, tokens=tokens)


def render(model: PickedModel) -> None:
    """The What-if view for the chosen model."""
    inputs = controls()  # entered twice: the target's default needs the translation
    with inputs:
        text = sentence_input(model.translator)
        beam = beam_input(st.columns(3)[0])
    own = translation_or_message(model, text, beam)
    if own is None:
        return
    with inputs:
        target = target_input(text, own.text)
    try:
        with st.spinner("Scoring the target…"):
            score = score_cached(model, text, target)
    except InputError as exc:
        warn(str(exc))
        return
    forced_decoding(model.name, score)
    continuation(model, text, beam, score)
