"""Widget state mirrored in the URL, so a link reproduces exactly what was on screen, and the
names of that state: every URL parameter and every session key more than one module uses is
a constant here.

Each widget is created with a ``key`` only; its first value comes from the URL through
:func:`init_from_url` (a malformed parameter falls back to the default). A link carries the
shared parameters and those of the view it shows, never another view's (:func:`keep_in_url`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

__all__ = [
    "ALIGN",
    "BEAM",
    "BEAM_SEARCH",
    "CHECKPOINT",
    "CHECKPOINT_PATH",
    "CHECKPOINT_SOURCE",
    "COMPARE",
    "DIVERGE_FIRST",
    "DIVERGE_SECOND",
    "EDIT",
    "EXAMPLE",
    "EXPLAIN",
    "FAMILY",
    "HYPOTHESIS",
    "LINKS",
    "MODEL",
    "PRESENT",
    "REPLACEMENT",
    "SALIENCY",
    "SHARED_URL_KEYS",
    "SNAPSHOT",
    "STEP",
    "STEP_THROUGH",
    "TARGET",
    "TEXT",
    "UNIT",
    "VIEW",
    "VIEW_URL_KEYS",
    "WHAT_IF",
    "flag",
    "forget",
    "init_from_url",
    "int_in",
    "keep_in_url",
    "one_of",
    "to_url",
]

# The views, by their value in the URL (app.VIEWS gives each its label and module).
ALIGN, STEP_THROUGH, COMPARE = "align", "step", "compare"
BEAM_SEARCH, WHAT_IF, CHECKPOINT = "beam", "whatif", "checkpoint"

# URL parameters (and the keys of the widgets they fill) that every view shares.
VIEW, MODEL, TEXT, BEAM = "view", "model", "text", "beam"
PRESENT = "present"  # presentation mode: bigger figures, controls folded away
EXAMPLE = "example"  # the example picker: a widget only, never in the URL
SHARED_URL_KEYS = (VIEW, MODEL, TEXT, BEAM, PRESENT)

# URL parameters of one view each (the unit, words or pieces, of Align and Compare).
UNIT, LINKS = "unit", "links"
STEP, EXPLAIN, SALIENCY = "step", "explain", "saliency"
FAMILY = "family"
HYPOTHESIS, DIVERGE_FIRST, DIVERGE_SECOND = "hyp", "diva", "divb"
TARGET, EDIT, REPLACEMENT = "target", "edit", "replacement"
CHECKPOINT_SOURCE, SNAPSHOT = "ckpt", "snapshot"
# The server-folder box: a widget only. A path never goes into a link: a link would make
# every visitor's browser ask the server for that folder.
CHECKPOINT_PATH = "ckpt_path"
VIEW_URL_KEYS = {
    ALIGN: (UNIT, LINKS),
    STEP_THROUGH: (STEP, EXPLAIN, SALIENCY),
    COMPARE: (FAMILY, UNIT),
    BEAM_SEARCH: (HYPOTHESIS, DIVERGE_FIRST, DIVERGE_SECOND),
    WHAT_IF: (TARGET, EDIT, REPLACEMENT),
    CHECKPOINT: (CHECKPOINT_SOURCE, SNAPSHOT),
}


def init_from_url(key: str, default: Any, parse: Callable[[str], Any] = str) -> None:
    """Give widget ``key`` its URL value on the session's first run."""
    if key in st.session_state:
        return
    raw = st.query_params.get(key)
    try:
        value = default if raw is None else parse(raw)
    except ValueError:
        value = default
    st.session_state[key] = value


def int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        return min(max(int(raw), low), high)

    return parse


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw

    return parse


def flag(raw: str) -> bool:
    return raw == "1"


def to_url(**values: object) -> None:
    """Write the current widget values into the URL's query parameters."""
    encoded = {k: str(int(v)) if isinstance(v, bool) else str(v) for k, v in values.items()}
    st.query_params.update(encoded)


def keep_in_url(view: str) -> None:
    """Drop from the URL every parameter that is neither shared nor ``view``'s: a link to
    one view never carries another view's state (a What-if target into Align, say)."""
    kept = {*SHARED_URL_KEYS, *VIEW_URL_KEYS[view]}
    for key in [k for k in st.query_params if k not in kept]:
        del st.query_params[key]


def forget(*keys: str) -> None:
    """Drop widget values from the session and the URL: their widgets start from their
    defaults again (state that belonged to something that changed)."""
    for key in keys:
        st.session_state.pop(key, None)
        st.query_params.pop(key, None)
