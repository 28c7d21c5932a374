"""Which checkpoints the app offers, and loading them once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from ..adapter import load_factory
from ..checkpoint import CONFIG_FILE
from ..errors import InputError
from ..input_fit import input_fit
from ..locations import DEFAULT_MODEL, models_dir
from ..translator import Score, Translation, Translator, load
from .messages import warn

__all__ = [
    "ADAPTED_MODEL_ENV",
    "PickedModel",
    "adapted_model",
    "bundled_models",
    "model_names",
    "picked",
    "score_cached",
    "translate_cached",
    "translation_or_message",
    "warn_if_unfit",
]


@dataclass(frozen=True)
class PickedModel:
    """A model the app offers, loaded: ``name`` is its folder's name, or the adapted model's
    ``module:factory`` (what the pickers show and the caches key on), ``translator`` the one
    shared by every session."""

    name: str
    translator: Translator


# The ``module:factory`` of `attnviz app --model`: the user's own model, through an adapter.
# Only the command line sets it; nothing a visitor types or uploads names code to import.
ADAPTED_MODEL_ENV = "ATTNVIZ_APP_MODEL"

# Cached results are keyed by the model's folder name: one translator per name and process.
BY_NAME = {PickedModel: lambda model: model.name}


def bundled_models() -> list[str]:
    """Names of the checkpoint folders, the default model first."""
    folder = models_dir()
    names = sorted(p.parent.name for p in folder.glob(f"*/{CONFIG_FILE}"))
    return sorted(names, key=lambda n: n != DEFAULT_MODEL)


def adapted_model() -> str | None:
    """The ``module:factory`` the server was started with (``attnviz app --model``), if any."""
    return os.environ.get(ADAPTED_MODEL_ENV) or None


def model_names() -> list[str]:
    """What the model picker offers: the adapted model first (the one the user asked for),
    then the checkpoint folders."""
    adapted = adapted_model()
    return [adapted, *bundled_models()] if adapted else bundled_models()


@st.cache_resource(show_spinner="Loading the model…")
def get_translator(name: str) -> Translator:
    """One Translator per model and process, shared by every session (it is thread-safe).

    Sessions run in threads of one process; the translator decodes with one torch thread
    (``Translator.threads``), so concurrent sessions share the cores instead of
    oversubscribing them. The adapted model (``name`` is its ``module:factory``) is built by
    calling its factory.
    """
    if name == adapted_model():
        return load_factory(name)
    return load(models_dir() / name)


def picked(name: str) -> PickedModel:
    """The model named ``name``, a folder of the models folder or the adapted model
    (CheckpointError when it cannot be used)."""
    return PickedModel(name, get_translator(name))


@st.cache_data(max_entries=512, show_spinner=False, hash_funcs=BY_NAME)
def translate_cached(
    model: PickedModel,
    text: str,
    beam_size: int,
    n_best: int = 1,
    prefix: tuple[str, ...] | None = None,
) -> Translation:
    """Translations by input, shared by sessions: changing only how a result is shown (words
    or pieces, the overlay) redraws it without decoding again. ``prefix``: forced pieces."""
    return model.translator.translate(text, beam_size=beam_size, n_best=n_best, prefix=prefix)


@st.cache_data(max_entries=512, show_spinner=False, hash_funcs=BY_NAME)
def score_cached(model: PickedModel, source: str, target: str | tuple[str, ...]) -> Score:
    """Forced decoding of ``target`` (text, or a tuple of pieces), shared by sessions."""
    return model.translator.score(source, target)


def translation_or_message(
    model: PickedModel,
    text: str,
    beam_size: int,
    n_best: int = 1,
    prefix: tuple[str, ...] | None = None,
    spinner: str = "Translating…",
) -> Translation | None:
    """The cached translation with a spinner while it is made; None after saying in the page
    why there is none (empty text...). A source cut at the model's limit is said too, and
    (unless a prefix continues an earlier result) characters the model never saw."""
    try:
        with st.spinner(spinner):
            translation = translate_cached(model, text, beam_size, n_best, prefix)
    except InputError as exc:
        warn(str(exc))
        return None
    if translation.truncated:
        limit = model.translator.config.max_src_len - 1
        warn(
            f"The sentence is longer than this model reads ({limit} pieces); only its "
            "beginning was translated."
        )
    if prefix is None:
        warn_if_unfit(model.translator, text)
    return translation


def warn_if_unfit(translator: Translator, text: str) -> None:
    """A warning when ``text`` holds characters ``translator`` never saw in training."""
    problem = input_fit(translator.source_tokenizer, text).warning()
    if problem is not None:
        warn(problem)
