"""Download buttons under a view: each file is built only when its button is clicked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..export import as_json, figure_html, table_csv
from ..figures.captions import token_legend
from .messages import markdown_literal

__all__ = ["PLOTLY_CONFIG", "TextFile", "download_row", "file_stem", "show_figure"]

# The in-app camera button saves PNG at twice the size (sharp on a projector); the
# standalone HTML's saves SVG.
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


@dataclass(frozen=True)
class TextFile:
    """A plain-text export beside the usual ones (links...): its button label, file name, and
    the text, made when the button is clicked."""

    label: str
    file_name: str
    text: Callable[[], str]


def file_stem(view: str, model: str, *details: str) -> str:
    """A safe file name that says which view, model and unit (or step...) an export shows, so
    that downloads from different views or settings do not overwrite each other."""
    parts = (view, model, *details)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)).strip("_")[:80] or "attnviz"


def show_figure(
    figure: go.Figure, key: str, caption: str | None = None, tokens: Iterable[str] = ()
) -> None:
    """A figure at its own size in a box that scrolls sideways: Streamlit would otherwise
    shrink a long sentence's heatmap to the page width and squash its cells.

    caption: what the figure shows (see :mod:`attnviz.figures.captions`), under it, with the
    notes on the special tokens among ``tokens`` (the tokens it draws).
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
        raise ValueError(f"figure key {key!r} must be usable as a CSS class name")
    with st.container(key=f"scroll-{key}"):
        if figure.layout.width:
            # Our own CSS, built from a number and a checked key: nothing the user typed.
            st.html(
                f"<style>.st-key-scroll-{key} {{overflow-x: auto;}} "
                f".st-key-scroll-{key} .st-key-{key} {{width: {int(figure.layout.width)}px "
                "!important; max-width: none !important;}</style>"
            )
        st.plotly_chart(figure, width="content", key=key, config=PLOTLY_CONFIG)
    legend = token_legend(tokens)
    if caption is not None or legend is not None:
        st.caption(" ".join(markdown_literal(t) for t in (caption, legend) if t))


def download_row(
    stem: str,
    key: str,
    figure: go.Figure | None = None,
    numbers: Callable[[], Any] | None = None,
    table: pd.DataFrame | None = None,
    files: Sequence[TextFile] = (),
) -> None:
    """Buttons for the exports a view offers (HTML of the figure, JSON, CSV, ``files``)."""
    buttons: list[tuple[str, Callable[[], str], str, str]] = []
    if figure is not None:
        buttons.append(("HTML", lambda: figure_html(figure, stem), f"{stem}.html", "text/html"))
    if numbers is not None:
        buttons.append(("JSON", lambda: as_json(numbers()), f"{stem}.json", "application/json"))
    if table is not None:
        buttons.append(("CSV", lambda: table_csv(table), f"{stem}.csv", "text/csv"))
    buttons += [(f.label, f.text, f.file_name, "text/plain") for f in files]
    for column, (label, data, name, mime) in zip(st.columns(len(buttons)), buttons, strict=True):
        column.download_button(
            label, data, file_name=name, mime=mime, key=f"{key}-{label}", on_click="ignore"
        )
