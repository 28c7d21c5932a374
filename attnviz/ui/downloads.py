"""Download buttons under a view: each file is built only when its button is clicked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..export import as_json, figure_html, table_csv
from ..figures.captions import token_legend
from ..figures.style import FONT_SIZE
from .messages import markdown_literal
from .state import PRESENT

__all__ = [
    "PLOTLY_CONFIG",
    "TextFile",
    "download_row",
    "file_stem",
    "inked",
    "magnified",
    "show_figure",
]

# Tick labels and text in near-black (near-white in the dark theme): Streamlit's chart
# theme draws them in a grey a projector washes out.
INK = {"light": "#111111", "dark": "#f2f2f2"}
PRESENT_ZOOM = 1.25  # presentation mode: the sidebar is closed, figures take its width

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


# Pixel sizes of a figure (fonts, markers, margins, colour bars, shifts); everything else in
# Plotly's layout is a fraction of the plot or a data value, so it scales along.
PIXEL_KEYS = {"size", "width", "height", "l", "r", "t", "b", "thickness", "xshift", "yshift"}


def magnified(spec: Any, factor: float) -> Any:
    """A figure's dict (``Figure.to_dict()``) with every pixel size times ``factor``: the
    same figure, larger. A colour bar's length scales only when it is in pixels."""
    if isinstance(spec, list):
        return [magnified(item, factor) for item in spec]
    if not isinstance(spec, dict):
        return spec
    out = {}
    for name, value in spec.items():
        pixels = name in PIXEL_KEYS or (name == "len" and spec.get("lenmode") == "pixels")
        if pixels and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = value * factor
        else:
            out[name] = magnified(value, factor)
    return out


@contextmanager
def inked(figure: go.Figure, ink: str) -> Iterator[None]:
    """Within the block, ``figure``'s text is drawn in ``ink`` and tick labels a figure left
    unsized at :data:`FONT_SIZE`; afterwards the figure is as built again, for the exports."""
    built = figure.layout.to_plotly_json()
    figure.update_layout(font_color=ink, title_font_color=ink)
    for axis in [*figure.select_xaxes(), *figure.select_yaxes()]:
        axis.update(tickfont_color=ink, tickfont_size=axis.tickfont.size or FONT_SIZE)
    try:
        yield
    finally:
        figure.layout = built


def show_figure(
    figure: go.Figure, key: str, caption: str | None = None, tokens: Iterable[str] = ()
) -> None:
    """A figure at its own size (figures wrap long sentences to fit the screen; one still
    wider scrolls sideways in its box instead of being squashed to the page width), its
    text in the theme's darkest ink, larger in presentation mode.

    caption: what the figure shows (see :mod:`attnviz.figures.captions`), under it, with the
    notes on the special tokens among ``tokens`` (the tokens it draws).
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
        raise ValueError(f"figure key {key!r} must be usable as a CSS class name")
    ink = INK.get(st.context.theme.type or "light", INK["light"])
    present = st.session_state.get(PRESENT)
    with inked(figure, ink):  # a copy would cost more than the figure (130 ms for Step through)
        shown = go.Figure(magnified(figure.to_dict(), PRESENT_ZOOM)) if present else figure
        with st.container(key=f"scroll-{key}"):
            if shown.layout.width:
                # Our own CSS, built from a number and a checked key: nothing the user typed.
                st.html(
                    f"<style>.st-key-scroll-{key} {{overflow-x: auto;}} "
                    f".st-key-scroll-{key} .st-key-{key} {{width: {int(shown.layout.width)}px "
                    "!important; max-width: none !important;}</style>"
                )
            st.plotly_chart(shown, width="content", key=key, config=PLOTLY_CONFIG)
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
