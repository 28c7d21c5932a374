"""Widget state mirrored in the URL, so a link reproduces exactly what was on screen.

Each widget is created with a ``key`` only; its first value comes from the URL through
:func:`init_from_url` (a malformed parameter falls back to the default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st


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
