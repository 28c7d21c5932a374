"""Step through: one decoding step at a time — where the model looked, what it produced, what
it could have produced instead, and the context vector the attention made.

The play button lives inside the Plotly figure (one animation frame per step), not in a
``st.fragment(run_every=...)`` timer: the browser animates the frames with no server round
trip per step, so playback stays smooth on a busy server and costs no decoding or reruns; and
the slider, hence the URL, keeps the step a link should reproduce instead of being rewritten
by a timer several times a second.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ..figures.captions import STEP_THROUGH as STEP_THROUGH_CAPTION
from ..figures.steps import step_figure
from ..figures.style import search_label
from ..translator import Translation
from .downloads import download_row, file_stem, show_figure
from .explain_step import render as render_explanation
from .inputs import beam_input, controls, sentence_input
from .models import PickedModel, translation_or_message
from .state import STEP, STEP_THROUGH, init_from_url, to_url

__all__ = ["render", "step_numbers", "step_slider"]


def step_slider(n_steps: int) -> int:
    """The 1-based step shown, from a slider mirrored in the URL (clamped to the output)."""
    init_from_url(STEP, 1, int)  # garbage falls back to step 1
    # Clamped here, where the length is known: a link made for a longer translation (or a
    # hand-edited one) still opens on a real step.
    st.session_state[STEP] = min(max(int(st.session_state[STEP]), 1), n_steps)
    if n_steps > 1:  # a slider needs two distinct ends
        st.slider("Decoding step", 1, n_steps, key=STEP)
    to_url(**{STEP: st.session_state[STEP]})
    return st.session_state[STEP]


def step_numbers(translation: Translation, index: int) -> dict:
    """What the figure shows at step ``index`` (0-based), for the JSON export."""
    step = translation.steps[index]
    return {
        "model": translation.model,
        "source_pieces": translation.source_pieces,
        "output_so_far": translation.target_pieces[: index + 1],
        "context_norm": float(np.linalg.norm(step.context)),
        "step": step,
    }


def render(model: PickedModel) -> None:
    """The Step-through view for the chosen model."""
    with controls():
        text = sentence_input(model.translator)
        beam = beam_input(st.columns(3)[0])
    translation = translation_or_message(model, text, beam)
    if translation is None:
        return
    st.subheader("Translation")
    st.text(translation.text)  # st.text: what the model wrote is never read as Markdown/HTML
    step = step_slider(len(translation.steps))
    st.caption(
        "▶ Play (under the figure) runs through every step in the browser; the slider picks "
        "the step a link to this page opens on."
    )
    figure = step_figure(
        translation.source_pieces,
        translation.target_pieces,
        translation.steps,
        step - 1,
        f"{model.name} ({search_label(beam)})",
    )
    tokens = [*translation.source_pieces, *translation.target_pieces]
    show_figure(figure, key="step-figure", caption=STEP_THROUGH_CAPTION, tokens=tokens)
    download_row(
        file_stem(STEP_THROUGH, model.name, f"step-{step}"),
        key="step",
        figure=figure,
        numbers=lambda: step_numbers(translation, step - 1),
    )
    render_explanation(model, translation, step - 1)
