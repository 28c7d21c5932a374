"""The app's frame: page set-up, model and view pickers; each view lives in its own module."""

from __future__ import annotations

import importlib

import streamlit as st

from ..errors import CheckpointError
from .messages import fail
from .models import bundled_models, get_translator, models_dir
from .state import init_from_url, one_of, to_url

# URL value -> (label, module in attnviz.ui). Each module has render(translator, model).
VIEWS = {
    "align": ("Align", "align_view"),
    "step": ("Step through", "step_view"),
    "compare": ("Compare scorers", "compare_view"),
    "beam": ("Beam search", "beam_view"),
    "whatif": ("What-if", "whatif_view"),
    "checkpoint": ("Checkpoint", "checkpoint_view"),
}


def main() -> None:
    st.set_page_config(page_title="attnviz", layout="wide")
    st.title("attnviz: what does the translator look at?")
    names = bundled_models()
    if not names:
        st.info(
            f"No checkpoint found in {models_dir()}. Train one with "
            "`attnviz train pretrained/en-fr-additive/recipe.toml`."
        )
        return
    init_from_url("view", "align", one_of(list(VIEWS)))
    init_from_url("model", names[0], one_of(names))
    view = st.sidebar.radio("View", list(VIEWS), format_func=lambda v: VIEWS[v][0], key="view")
    model = st.sidebar.selectbox("Model", names, key="model")
    to_url(view=view, model=model)
    try:
        translator = get_translator(model)
    except CheckpointError as exc:
        fail(f"{model} cannot be used: {exc}")
        return
    module = importlib.import_module(f"{__package__}.{VIEWS[view][1]}")
    module.render(translator, model)
