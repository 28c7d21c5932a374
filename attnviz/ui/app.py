"""The app's frame: page set-up, model and view pickers, presentation mode; each view lives
in its own module."""

from __future__ import annotations

import importlib

import streamlit as st

from ..errors import CheckpointError
from ..locations import models_dir
from .messages import fail
from .models import model_names, picked
from .state import (
    ALIGN,
    BEAM_SEARCH,
    CHECKPOINT,
    COMPARE,
    MODEL,
    PRESENT,
    STEP_THROUGH,
    VIEW,
    WHAT_IF,
    flag,
    init_from_url,
    keep_in_url,
    one_of,
    to_url,
)

__all__ = ["VIEWS", "main"]

# URL value -> (label, module in attnviz.ui). Each module has render(model: PickedModel).
VIEWS = {
    ALIGN: ("Align", "align_view"),
    STEP_THROUGH: ("Step through", "step_view"),
    COMPARE: ("Compare scorers", "compare_view"),
    BEAM_SEARCH: ("Beam search", "beam_view"),
    WHAT_IF: ("What-if", "whatif_view"),
    CHECKPOINT: ("Checkpoint", "checkpoint_view"),
}

# Streamlit's wide layout pads the page by 5rem on each side: at 1024 px beside the sidebar
# that leaves 564 px for a figure. Figures are sized to fit the 676 px this padding leaves.
PAGE_CSS = (
    "[data-testid='stMainBlockContainer'] {padding: 2.5rem 1.5rem 4rem 1.5rem;}"
    "[data-testid='stMainBlockContainer'] h1 {font-size: 2rem; padding-top: 0;}"
)
# Presentation mode: text a back row reads (Streamlit sizes its text in rem), and room above
# the folded controls for the button that opens the sidebar.
PRESENT_CSS = (
    "html {font-size: 19px;}"
    "[data-testid='stMainBlockContainer'] {padding-top: 3.5rem;}"
    "[data-testid='stMainBlockContainer'] h3 {font-size: 1.3rem; padding: 0.5rem 0 0 0;}"
)


def presentation_mode() -> bool:
    """Presentation mode from the URL (``present=1``) or the sidebar switch: bigger text and
    figures, the sidebar closed and each view's controls folded away."""
    init_from_url(PRESENT, False, flag)
    return bool(st.session_state[PRESENT])


def main() -> None:
    present = presentation_mode()
    st.set_page_config(
        page_title="attnviz",
        layout="wide",
        initial_sidebar_state="collapsed" if present else "auto",
    )
    st.html(f"<style>{PAGE_CSS}{PRESENT_CSS if present else ''}</style>")
    if not present:  # the figure, not the app's name, goes on the projector's first screen
        st.title("attnviz: what does the translator look at?")
    names = model_names()
    if not names:
        st.info(
            f"No checkpoint found in {models_dir()}. Point ATTNVIZ_MODELS at a folder of "
            "checkpoints, or train one with `attnviz train RECIPE --output FOLDER`."
        )
        return
    init_from_url(VIEW, ALIGN, one_of(list(VIEWS)))
    init_from_url(MODEL, names[0], one_of(names))
    view = st.sidebar.radio("View", list(VIEWS), format_func=lambda v: VIEWS[v][0], key=VIEW)
    name = st.sidebar.selectbox("Model", names, key=MODEL)
    st.sidebar.toggle(
        "Presentation mode",
        key=PRESENT,
        help="Bigger text and figures, the controls folded away; kept in the link.",
    )
    to_url(**{VIEW: view, MODEL: name})
    if present:
        to_url(**{PRESENT: True})
    else:
        st.query_params.pop(PRESENT, None)
    keep_in_url(view)
    try:
        model = picked(name)
    except CheckpointError as exc:
        fail(f"{name} cannot be used: {exc}")
        return
    module = importlib.import_module(f"{__package__}.{VIEWS[view][1]}")
    module.render(model)
