"""Download buttons under a view: each file is built only when its button is clicked."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..export import as_json, figure_html, table_csv

# The in-app camera button saves PNG at twice the size (sharp on a projector); the
# standalone HTML's saves SVG.
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def file_stem(*parts: str) -> str:
    """A safe file name from model names and labels."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)).strip("_")[:80] or "attnviz"


def show_figure(figure: go.Figure, key: str) -> None:
    """A figure in its own horizontally scrolling box (wide sentences scroll, never squash)."""
    st.plotly_chart(figure, width="content", key=key, config=PLOTLY_CONFIG)


def download_row(
    stem: str,
    key: str,
    figure: go.Figure | None = None,
    numbers: Callable[[], Any] | None = None,
    table: pd.DataFrame | None = None,
    links: Callable[[], str] | None = None,
) -> None:
    """Buttons for the exports a view offers (HTML of the figure, JSON, CSV, Pharaoh)."""
    buttons: list[tuple[str, Callable[[], str], str, str]] = []
    if figure is not None:
        buttons.append(("HTML", lambda: figure_html(figure, stem), f"{stem}.html", "text/html"))
    if numbers is not None:
        buttons.append(("JSON", lambda: as_json(numbers()), f"{stem}.json", "application/json"))
    if table is not None:
        buttons.append(("CSV", lambda: table_csv(table), f"{stem}.csv", "text/csv"))
    if links is not None:
        buttons.append(("Pharaoh links", links, f"{stem}.align", "text/plain"))
    for column, (label, data, name, mime) in zip(st.columns(len(buttons)), buttons, strict=True):
        column.download_button(
            label, data, file_name=name, mime=mime, key=f"{key}-{label}", on_click="ignore"
        )
