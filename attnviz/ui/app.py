"""The app's frame: page set-up, model and view pickers; each view lives in its own module."""

from __future__ import annotations

import importlib

import streamlit as st

from ..errors import CheckpointError
from ..locations import models_dir
from .messages import fail
from .models import bundled_models, picked
from .state import (
    ALIGN,
    BEAM_SEARCH,
    CHECKPOINT,
    COMPARE,
    MODEL,
    STEP_THROUGH,
    VIEW,
    WHAT_IF,
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


def main() -> None:
    st.set_page_config(page_title="attnviz", layout="wide")
    st.title("attnviz: what does the translator look at?")
    names = bundled_models()
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
    to_url(**{VIEW: view, MODEL: name})
    keep_in_url(view)
    try:
        model = picked(name)
    except CheckpointError as exc:
        fail(f"{name} cannot be used: {exc}")
        return
    module = importlib.import_module(f"{__package__}.{VIEWS[view][1]}")
    module.render(model)
