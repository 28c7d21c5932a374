"""Which checkpoints the app offers, and loading them once per process."""

from __future__ import annotations

import streamlit as st
import torch

from ..errors import InputError
from ..locations import DEFAULT_MODEL, models_dir
from ..translator import Score, Translation, Translator, load
from .messages import warn


def bundled_models() -> list[str]:
    """Names of the checkpoint folders, the default model first."""
    folder = models_dir()
    names = sorted(p.parent.name for p in folder.glob("*/config.json"))
    return sorted(names, key=lambda n: n != DEFAULT_MODEL)


@st.cache_resource(show_spinner="Loading the model…")
def get_translator(name: str) -> Translator:
    """One Translator per model and process, shared by every session (it is thread-safe).

    Sessions run in threads of one process: each decoding uses one OpenMP thread, so
    concurrent sessions share the cores instead of oversubscribing them.
    """
    torch.set_num_threads(1)
    return load(models_dir() / name)


@st.cache_data(max_entries=512, show_spinner=False)
def translate_cached(
    name: str, text: str, beam_size: int, n_best: int = 1, prefix: tuple[str, ...] | None = None
) -> Translation:
    """Translations by input, shared by sessions: changing only how a result is shown (words
    or pieces, the overlay) redraws it without decoding again. ``prefix``: forced pieces."""
    translator = get_translator(name)
    return translator.translate(text, beam_size=beam_size, n_best=n_best, prefix=prefix)


@st.cache_data(max_entries=512, show_spinner=False)
def score_cached(name: str, source: str, target: str | tuple[str, ...]) -> Score:
    """Forced decoding of ``target`` (text, or a tuple of pieces), shared by sessions."""
    return get_translator(name).score(source, target)


def translation_or_message(
    model: str,
    text: str,
    beam_size: int,
    n_best: int = 1,
    prefix: tuple[str, ...] | None = None,
    spinner: str = "Translating…",
) -> Translation | None:
    """The cached translation with a spinner while it is made; None after saying in the page
    why there is none (empty text...). A source cut at the model's limit is said too."""
    try:
        with st.spinner(spinner):
            translation = translate_cached(model, text, beam_size, n_best, prefix)
    except InputError as exc:
        warn(str(exc))
        return None
    if translation.truncated:
        limit = get_translator(model).config.max_src_len - 1
        warn(
            f"The sentence is longer than this model reads ({limit} pieces); only its "
            "beginning was translated."
        )
    return translation
