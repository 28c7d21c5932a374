"""The app's frame: page set-up, model picker, and the views."""

from __future__ import annotations

import streamlit as st

from ..errors import CheckpointError
from . import align_view
from .models import bundled_models, get_translator, models_dir
from .state import init_from_url, one_of


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
    init_from_url("model", names[0], one_of(names))
    model = st.sidebar.selectbox("Model", names, key="model")
    try:
        translator = get_translator(model)
    except CheckpointError as exc:
        st.error(f"{model} cannot be used: {exc}")
        return
    align_view.render(translator, model)
